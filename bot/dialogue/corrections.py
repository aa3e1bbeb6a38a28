"""Answers at the summary: «sí», «corregir», and which field to change, with or without its new value.

A field named without a new value is emptied, so the form asks it again and
then shows the summary again; a new value given in the same message
(«el correo está mal, es ana@x.co») replaces it at once.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from bot.catalog import RequestType
from bot.dialogue.extract import (
    AFFIRM_CONFIDENCE,
    ESCAPE_INTENTS,
    ESCAPE_MAX_WORDS,
    ITEM_OR_RETIRED,
    UNPARSED,
    Reading,
    is_escape,
    is_yes_or_no,
    item_in,
    item_or_retired,
)
from bot.dialogue.slots import (
    ATTACHMENT,
    AWAITING_CORRECTION,
    CONFIRMATION,
    CONFIRMED,
    CORRECTION_FIELD,
    DESCRIPTION,
    EMAIL,
    ITEM,
    PHONE,
    PHONE_CANDIDATES,
)
from bot.dialogue.turn import Turn
from bot.dialogue.wording import says_yes_or_no
from bot.text import word_count

# "la descripción está mal, es: ..." / "... debería decir ...": the new text
# follows the strongest marker (a colon, then "debería decir", then "es").
_NEW_VALUE_MARKERS = (
    re.compile(r":\s*(.+)$", re.DOTALL),
    re.compile(r"\bdeb(?:e|er[ií]a)\s+(?:decir|ser)\b\s*(.+)$", re.IGNORECASE | re.DOTALL),
    re.compile(r"\b(?:es|ser[ií]a)\b\s*(.+)$", re.IGNORECASE | re.DOTALL),
)


def _affirms(turn: Turn) -> bool:
    """A «sí» in words or the button; «sdfsdf» read as affirm must never send a ticket."""
    return is_yes_or_no(turn, "affirm")


def _nothing_to_change(turn: Turn) -> bool:
    """«así está bien», «nada, así está bien», the «Volver al resumen» button: yes or no, the summary again."""
    if turn.intent not in ("affirm", "deny"):
        return False
    return turn.is_payload or (turn.confidence >= AFFIRM_CONFIDENCE and says_yes_or_no(turn.text))


def answer_confirmation(turn: Turn, request_type: RequestType, reading: Reading) -> Optional[dict[str, Any]]:
    """The answer to the summary; None when it is no answer (a rule takes the turn)."""
    if _affirms(turn):
        return {CONFIRMATION: CONFIRMED}
    correction = read_correction(turn, request_type, reading)
    if correction:
        return correction
    if turn.intent in ("correct", "deny"):
        return {AWAITING_CORRECTION: True}
    if is_escape(turn, ESCAPE_INTENTS):
        return None
    return {CONFIRMATION: None, UNPARSED: CONFIRMATION}


def answer_correction_field(turn: Turn, request_type: RequestType, reading: Reading) -> Optional[dict[str, Any]]:
    """The answer to «¿qué quieres corregir?»; None when it is no answer."""
    correction = read_correction(turn, request_type, reading)
    if correction:
        return {**correction, CORRECTION_FIELD: None}
    if _nothing_to_change(turn):
        # "Volver al resumen" / "así está bien" / «nada, así está bien»: nothing to change, the summary again.
        return {AWAITING_CORRECTION: False, CORRECTION_FIELD: None}
    if is_escape(turn, ESCAPE_INTENTS):
        return None
    return {CORRECTION_FIELD: None, UNPARSED: CORRECTION_FIELD}


def new_value_in(text: str) -> Optional[str]:
    for marker in _NEW_VALUE_MARKERS:
        found = marker.search(text)
        if found:
            return found.group(1).strip()
    return None


def read_correction(turn: Turn, request_type: RequestType, reading: Reading) -> dict[str, Any]:
    """Fields the customer wants changed, with the new value when the turn has it; {} when none."""
    # A button's payload names a field; it carries no words to read values from.
    words = Reading("", reading.catalog) if turn.is_payload else reading
    text = words.text
    choice = item_or_retired(turn, words, request_type)
    if choice is not None:
        return {ITEM_OR_RETIRED: choice, AWAITING_CORRECTION: False}
    new_values: dict[str, Any] = {}
    if words.email and request_type.field(EMAIL):
        new_values[EMAIL] = words.email
    if words.phone and request_type.field(PHONE):
        new_values[PHONE] = words.phone
    item = item_in(turn, words, request_type) if text or turn.entity(ITEM) else None
    if item:
        new_values[ITEM] = item
    written = new_value_in(text)
    if written and request_type.field(DESCRIPTION) and word_count(written) >= ESCAPE_MAX_WORDS // 2:
        new_values[DESCRIPTION] = written

    named = [str(v) for v in turn.entity_values("field")] if turn.is_payload else []
    if not named and text:
        named = [f.id for f in reading.catalog.fields_mentioned(text)]
    named = [f for f in dict.fromkeys(named) if request_type.field(f) is not None]
    if not named:
        # "mi correo es otro: ana@x.co" names no field but carries its value.
        named = list(new_values)
    if not named:
        return {}
    updates: dict[str, Any] = {AWAITING_CORRECTION: False}
    for field_id in named:
        updates[field_id] = [] if field_id == ATTACHMENT else new_values.get(field_id)
        if field_id == PHONE:
            updates[PHONE_CANDIDATES] = None
    return updates
