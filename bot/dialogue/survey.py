"""The satisfaction survey in the chat: a rating from 1 to 5 for a resolved ticket, then an optional comment.

The follow-up worker asks the question (bot/dialogue/notices.py) and opens
``csat_form``; Rasa's form calls its validation action (actions/followup.py)
on every message, which calls ``csat_step``. The rating comes from the
question's buttons (``/rate{"ticket": …, "rating": N}``), a typed digit or
words («excelente», «mala»); the «¿por qué?» that follows is optional.
Each answer is stored in the CSAT book and copied to the agents as an
internal note. Anything that is clearly no rating leaves the survey, and the
normal flow answers it (``Step.release``, bot/dialogue/followup.py).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Mapping, Optional

from bot.catalog import Catalog
from bot.dialogue.extract import ESCAPE_CONFIDENCE
from bot.dialogue.followup import (
    CSAT_COMMENT,
    CSAT_COMMENT_TICKET,
    CSAT_REASKED,
    Step,
    asks_new_request,
    confident,
)
from bot.dialogue.notices import CSAT_RATING, CSAT_TICKET, RATE_INTENT, RATING_TITLES, REQUESTED_SLOT
from bot.dialogue.ports import HelpDeskThread, Unavailable
from bot.dialogue.status import ticket_keys_in
from bot.dialogue.turn import Button, Say, Turn, payload
from bot.privacy import mask_cards
from bot.text import contains_phrase, normalize, word_count

logger = logging.getLogger(__name__)

# In the comment step, these leave the survey for the normal flow.
LEAVE_INTENTS = frozenset({"menu", "check_status", "human_handoff", "choose_category", "choose_request_type"})
# Intents that never make a message clearly something other than a rating.
RATING_NEUTRAL_INTENTS = frozenset({"affirm", "deny", "thanks", "inform", "chitchat", "nlu_fallback", RATE_INTENT})
NO_COMMENT_BUTTON = "No, gracias"
COMMENT_CHARS = 2000
RATING_MAX_WORDS = 8
_NO_WORDS = frozenset(
    {"no", "no gracias", "nada", "ninguno", "ninguna", "omitir", "paso", "no quiero", "prefiero no", "nop",
     "asi esta bien", "eso es todo", "no nada", "no por ahora", "no hace falta", "no es necesario", "nel"}
)  # fmt: skip
_OUT_OF_FIVE = re.compile(r"(?<!\d)([1-5])\s*(?:/|de|sobre)\s*5(?!\d)")
_NEGATED = re.compile(
    r"\b(?:no|nada)\s+(?:(?:fue|estuvo|es|era|muy|tan|me|parecio|tuve|una|la|atencion|ayuda)\s+){0,3}"
    r"(?:buen[oa]s?|bien|excelente|genial)\b"
)
# Normalised phrases, a longer one before any it contains.
_RATING_WORDS: tuple[tuple[str, int], ...] = (
    ("muy mala", 1), ("muy malo", 1), ("pesima", 1), ("pesimo", 1), ("terrible", 1), ("horrible", 1),
    ("muy buena", 5), ("muy bueno", 5), ("muy bien", 5), ("excelente", 5), ("genial", 5), ("perfecta", 5),
    ("perfecto", 5), ("buenisima", 5), ("buenisimo", 5), ("de maravilla", 5),
    ("mala", 2), ("malo", 2), ("mal", 2), ("regular", 3), ("mas o menos", 3), ("normal", 3), ("aceptable", 3),
    ("buena", 4), ("bueno", 4), ("bien", 4),
    ("cinco", 5), ("cuatro", 4), ("tres", 3), ("dos", 2), ("uno", 1),
)  # fmt: skip


_CSAT_DONE = {CSAT_COMMENT_TICKET: None, CSAT_RATING: None, CSAT_REASKED: None}


def rating_in(text: str) -> Optional[int]:
    """A rating from 1 to 5 in a short answer: «4», «5/5», «⭐⭐⭐», «excelente», «no muy buena»…; None otherwise."""
    stars = text.count("⭐") + text.count("★")
    if stars and not normalize(text.replace("⭐", "").replace("★", "")):
        return stars if stars <= 5 else None
    plain = normalize(text)
    if not plain or word_count(plain) > RATING_MAX_WORDS:
        return None
    out_of_five = _OUT_OF_FIVE.search(text.lower())
    if out_of_five:
        return int(out_of_five.group(1))
    numbers = set(re.findall(r"\d+", plain))
    if numbers:
        only = numbers.pop() if len(numbers) == 1 else ""
        return int(only) if only.isdigit() and 1 <= int(only) <= 5 else None
    if _NEGATED.search(plain):
        return 2
    return next((rating for phrase, rating in _RATING_WORDS if contains_phrase(plain, phrase)), None)


def _rating_value(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 2:
        value = int(value.strip())
    return value if isinstance(value, int) and 1 <= value <= 5 else None


def _declines(turn: Turn) -> bool:
    return confident(turn, frozenset({"deny", "cancel"})) or normalize(turn.text) in _NO_WORDS


def _end(says: list[Say]) -> Step:
    return Step(dict(_CSAT_DONE), says, None)


def _release_csat() -> Step:
    return Step(dict(_CSAT_DONE), [], None, release=True)


def _csat_unavailable(requested: str) -> Step:
    return Step({}, [Say("utter_csat_unavailable")], requested)


def csat_step(turn: Turn, slots: Mapping[str, Any], thread: HelpDeskThread, catalog: Catalog) -> Step:
    """The customer answered the satisfaction question (a rating), or the «¿por qué?» after it (a comment).

    A button's ticket is whatever the payload says: the CSAT book stores a
    rating only for a question this conversation was asked and has not
    answered, so a forged payload rates nothing and learns nothing.
    """
    requested = slots.get(REQUESTED_SLOT)
    if turn.mode == "resume":
        return Step({}, [], requested if requested in (CSAT_RATING, CSAT_COMMENT) else None)
    if turn.intent == RATE_INTENT and turn.is_payload:
        return _rate_button(turn, thread, catalog, ask_why=True)
    if requested == CSAT_COMMENT and slots.get(CSAT_COMMENT_TICKET):
        return _comment(turn, str(slots.get(CSAT_COMMENT_TICKET)), thread)
    return _rating(turn, slots, thread, catalog)


def rate_in_form(turn: Turn, thread: HelpDeskThread, catalog: Catalog) -> Step:
    """A rating button of an earlier ticket pressed while a request is being filled.

    The rating is stored at once and no comment is asked: the ticket form
    takes the next message (its rule resumes it right after).
    """
    return _rate_button(turn, thread, catalog, ask_why=False)


def _rate_button(turn: Turn, thread: HelpDeskThread, catalog: Catalog, ask_why: bool) -> Step:
    value = turn.entity("ticket")
    keys = ticket_keys_in(value, catalog) if isinstance(value, str) and len(value) <= 40 else []
    rating = _rating_value(turn.entity("rating"))
    if len(keys) != 1 or rating is None:
        return _end([Say("utter_csat_not_pending")])
    return _rate(keys[0], rating, turn, thread, ask_why)


def _rating(turn: Turn, slots: Mapping[str, Any], thread: HelpDeskThread, catalog: Catalog) -> Step:
    if turn.is_payload:
        return _end([Say("utter_csat_skipped")]) if turn.intent == "deny" else _release_csat()
    rating = rating_in(turn.text)
    try:
        pending = thread.pending_csat(turn.sender_id)
    except Unavailable:
        return _csat_unavailable(CSAT_RATING)
    ticket = str(slots.get(CSAT_TICKET) or "") or (pending.key if pending else "")
    if rating is not None:
        return _rate(ticket, rating, turn, thread) if ticket else _end([Say("utter_csat_not_pending")])
    if _declines(turn):
        return _end([Say("utter_csat_skipped")])
    other = asks_new_request(turn) or (
        turn.intent not in RATING_NEUTRAL_INTENTS and turn.confidence >= ESCAPE_CONFIDENCE
    )
    if pending is None or other or word_count(turn.text) > RATING_MAX_WORDS or slots.get(CSAT_REASKED):
        return _release_csat()
    asked = ticket or pending.key
    title = pending.title if asked == pending.key else asked
    buttons = tuple(
        Button(label, payload(RATE_INTENT, ticket=asked, rating=number))
        for number, label in enumerate(RATING_TITLES, start=1)
    )
    return Step({CSAT_REASKED: True}, [Say("utter_csat_ask_again", {"title": title}, buttons)], CSAT_RATING)


def _note(thread: HelpDeskThread, ticket: str, conversation_id: str, body: str, source: str) -> None:
    """The answer for the agents too; the CSAT book already holds it, so a failure here is only logged."""
    try:
        if not thread.csat_note(ticket, conversation_id, body, source=source):
            logger.warning("CSAT note for %s not written: not this conversation's ticket", ticket)
    except Unavailable as exc:
        logger.error("no se pudo dejar la nota de la encuesta en %s: %s", ticket, exc)


def _rate(ticket: str, rating: int, turn: Turn, thread: HelpDeskThread, ask_why: bool = True) -> Step:
    try:
        stored = thread.rate(ticket, turn.sender_id, rating)
    except Unavailable:
        return _csat_unavailable(CSAT_RATING)
    if not stored:
        return _end([Say("utter_csat_not_pending")])
    label = RATING_TITLES[rating - 1].split(" · ")[-1].lower()
    body = f"Encuesta de satisfacción: el cliente calificó la atención con {rating} de 5 ({label})."
    _note(thread, ticket, turn.sender_id, body, f"csat-rating:{ticket}")
    if not ask_why:
        return Step({CSAT_TICKET: None}, [Say("utter_csat_rated", {"rating": rating})], None)
    updates = {CSAT_RATING: rating, CSAT_COMMENT_TICKET: ticket, CSAT_TICKET: None, CSAT_REASKED: None}
    ask = Say("utter_csat_ask_comment", {"rating": rating}, (Button(NO_COMMENT_BUTTON, payload("deny")),))
    return Step(updates, [ask], CSAT_COMMENT)


def _comment(turn: Turn, ticket: str, thread: HelpDeskThread) -> Step:
    if turn.is_payload:
        return _end([Say("utter_csat_thanks")]) if turn.intent == "deny" else _release_csat()
    if _declines(turn) or confident(turn, frozenset({"thanks", "goodbye"})):
        return _end([Say("utter_csat_thanks")])
    if asks_new_request(turn) or confident(turn, LEAVE_INTENTS):
        return _release_csat()
    text = mask_cards(turn.text.strip())[:COMMENT_CHARS]
    if not text:
        return Step({}, [], CSAT_COMMENT)  # a file alone: the comment is still awaited
    try:
        stored = thread.comment(ticket, turn.sender_id, text)
    except Unavailable:
        return _csat_unavailable(CSAT_COMMENT)
    if stored:
        body = f"Comentario del cliente en la encuesta de satisfacción: {text}"
        _note(thread, ticket, turn.sender_id, body, f"csat-comment:{ticket}")
    return _end([Say("utter_csat_comment_saved" if stored else "utter_csat_thanks")])
