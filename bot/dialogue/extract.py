"""Reading values out of a customer's message: what it fills, and whether it answers at all.

A message is read once per turn (``Reading``): its e-mails, phones, country
and retired options are found the first time a rule asks and reused by every
other rule of that turn, so a long description is not scanned again for each
datum it might carry.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any, Mapping, Optional

from bot.catalog import Catalog, Country, RequestType, RetiredOption
from bot.contacts import Found, blank_contacts, find_emails, find_phones, words_besides_contacts
from bot.dialogue.slots import COUNTRY, DESCRIPTION, EMAIL, EMAIL_QUESTIONED, ITEM, ORIGINAL_TEXT, PHONE, PHONE_COUNTRY
from bot.dialogue.turn import Turn
from bot.dialogue.wording import leaning, names_only_the_type, side_question
from bot.text import normalize, word_count
from bot.validation import check_option, suggest_email

# Intents that are not answers to a question of the form: the form rejects the
# turn and a rule answers them (then the form resumes, or stops on cancel).
ESCAPE_INTENTS = frozenset(
    {
        "cancel",
        "help",
        "menu",
        "ask_request_type_info",
        "bot_challenge",
        "chitchat",
        "greet",
        "out_of_scope",
        "check_status",
        "choose_request_type",
        "choose_category",
        "human_handoff",  # «quiero hablar con una persona» (bot/dialogue/handoff.py); the form resumes after
        "rate",  # a CSAT button of an earlier ticket (bot/dialogue/survey.py): rated, then the form resumes
    }
)
# The subset that may interrupt a free-text description, when short and clear:
# a description naturally reads like chitchat or a greeting sometimes.
DESCRIPTION_ESCAPE_INTENTS = ESCAPE_INTENTS - {"chitchat", "greet", "out_of_scope"}
ESCAPE_CONFIDENCE = 0.8
ESCAPE_MAX_WORDS = 10
AFFIRM_CONFIDENCE = 0.5
RETIRED_INTENT_CONFIDENCE = 0.5
# An opening message this long is taken as the description (shown in the summary).
DESCRIPTION_PREFILL_MIN_WORDS = 8

# Keys of an answer that are not slots: validation reads them and never stores them.
UNPARSED = "_unparsed"  # names the asked slot the message did not answer
ITEM_OR_RETIRED = "_item_or_retired"  # (active ítem, retired option): validation asks which one
SIDE_QUESTION = "_side_question"  # a question about the process (wording.side_question): answered, then asked again

# How customers say the request they started is not the one they meant.
_SELF_CORRECTION = re.compile(r"\b(perdon|disculpa|en realidad|me equivoque|no es eso|mejor dicho|corrijo)\b")


class Reading:
    """What one message's words hold, each found the first time it is needed."""

    def __init__(self, text: str, catalog: Catalog) -> None:
        self.text = text
        self.catalog = catalog

    @cached_property
    def emails(self) -> list[Found]:
        return find_emails(self.text)

    @cached_property
    def phones(self) -> list[Found]:
        return find_phones(self.text, self.catalog.country_ids)

    @property
    def email(self) -> Optional[str]:
        return self.emails[0].value if self.emails else None

    @property
    def phone(self) -> Optional[str]:
        return self.phones[0].value if self.phones else None

    @cached_property
    def contacts(self) -> list[Found]:
        """Every e-mail and phone, in text order."""
        return sorted(self.emails + self.phones, key=lambda found: found.start)

    @cached_property
    def words_besides_contacts(self) -> list[str]:
        return words_besides_contacts(self.text, self.contacts)

    @cached_property
    def without_contacts(self) -> str:
        """The text with its e-mails and phones blanked out."""
        return blank_contacts(self.text, self.contacts)

    @cached_property
    def word_count(self) -> int:
        return word_count(self.text)

    @cached_property
    def countries(self) -> list[Country]:
        return self.catalog.match_countries(self.text)

    @cached_property
    def retired(self) -> list[RetiredOption]:
        return self.catalog.match_retired(self.text)


# ------------------------------------------------------------------ values
def country_in(turn: Turn, reading: Reading) -> Optional[str]:
    value = turn.entity(COUNTRY)
    if value and reading.catalog.country(str(value).upper()):
        return str(value).upper()
    if turn.is_payload:
        return None
    return reading.countries[0].id if len(reading.countries) == 1 else None


def retired_in(turn: Turn, reading: Reading, request_type: RequestType) -> Optional[RetiredOption]:
    """A retired option of this request type asked for in this turn, if any."""
    for retired in reading.catalog.retired:
        if retired.request_type_id != request_type.id:
            continue
        if turn.intent == retired.intent and (turn.is_payload or turn.confidence >= RETIRED_INTENT_CONFIDENCE):
            return retired
        if retired.id in map(str, turn.entity_values(retired.field_id)):
            return retired
        if not turn.is_payload and retired in reading.retired:
            return retired
    return None


def item_in(turn: Turn, reading: Reading, request_type: RequestType) -> Optional[str]:
    """The ítem named in this turn: an option id, a retired option id, or None."""
    spec = request_type.field(ITEM)
    if spec is None:
        return None
    retired = retired_in(turn, reading, request_type)
    if retired is not None:
        return retired.id
    values = {str(v) for v in turn.entity_values(ITEM)}
    if len(values) == 1:
        return values.pop()
    if turn.is_payload:
        return None
    check = check_option(reading.text, spec)
    return check.value if check.ok else None


def item_or_retired(turn: Turn, reading: Reading, request_type: RequestType) -> Optional[tuple[str, RetiredOption]]:
    """An active ítem and a retired option both read into one message.

    The NLU may take "es el de cartera" for the retired cartera request while
    the words name the active cartera upload-failure ítem; the two
    lead to different teams, so the customer is asked rather than guessed for.
    Only when the retired option comes from the intent alone: a button, the
    retired option's own words or its entity are unambiguous.
    """
    if turn.is_payload or not reading.text:
        return None
    retired = retired_in(turn, reading, request_type)
    if retired is None or retired in reading.retired or retired.id in map(str, turn.entity_values(retired.field_id)):
        return None
    spec = request_type.field(retired.field_id)
    if spec is None:
        return None
    named: set[Optional[str]] = {str(v) for v in turn.entity_values(retired.field_id)}
    named = named or {check_option(reading.text, spec).value}
    active = [value for value in named if value and spec.option(value) is not None]
    return (active[0], retired) if len(active) == 1 else None


def is_yes_or_no(turn: Turn, intent: Optional[str] = None) -> bool:
    """An affirm or deny (``intent`` only, when given) the words bear out.

    «xyz» read as affirm is none, and neither is «no no no» or «no, está bien,
    el correo es otro»: an affirm needs words that lean to yes (a ticket is
    sent on it), a deny words that lean to no.
    """
    if turn.intent not in ((intent,) if intent else ("affirm", "deny")):
        return False
    if turn.is_payload:
        return True
    return turn.confidence >= AFFIRM_CONFIDENCE and leaning(turn.text) is (turn.intent == "affirm")


def asks_aside(turn: Turn, requested: str, reading: Reading) -> Optional[dict[str, Any]]:
    """«¿cuánto tarda la respuesta?» while a datum is asked: answered, never taken as the datum.

    A message that also carries an e-mail or a phone («3001234567, ¿para qué
    lo necesitan?») answers too: the datum is taken.
    """
    if turn.is_payload or reading.emails or reading.phones:
        return None
    kind = side_question(turn.text)
    return {SIDE_QUESTION: kind, requested: None} if kind else None


def is_escape(turn: Turn, intents: frozenset[str]) -> bool:
    if turn.intent not in intents:
        return False
    return turn.is_payload or turn.confidence >= ESCAPE_CONFIDENCE


def other_request_type(turn: Turn, request_type: RequestType, catalog: Catalog) -> bool:
    """ "perdón, en realidad no tengo acceso al SFTP" while the form asks for a
    datum: a clearly different request type, so the form lets it restart.
    Not for descriptions, which often read like a neighbouring type."""
    other = catalog.request_type_for_intent(turn.intent)
    return other is not None and other != request_type and not turn.is_payload and turn.confidence >= ESCAPE_CONFIDENCE


# ------------------------------------------------------------- the opening
def extract_start(turn: Turn, slots: Mapping[str, Any], request_type: RequestType, reading: Reading) -> dict[str, Any]:
    """Everything the opening message already says, so it is never asked."""
    if not reading.text:
        return {}
    found: dict[str, Any] = {}
    country = country_in(turn, reading)
    if country and not slots.get(COUNTRY):
        found[COUNTRY] = country
    if reading.email and not slots.get(EMAIL):
        found[EMAIL] = reading.email
    if reading.phone and not slots.get(PHONE):
        found[PHONE] = reading.phone
    item = item_in(turn, reading, request_type)
    if item:
        found[ITEM] = item
    if request_type.field(DESCRIPTION) and reading.word_count >= DESCRIPTION_PREFILL_MIN_WORDS:
        # An opening that only names the type («tengo un inconveniente con el ERP») is no description: asked.
        if not names_only_the_type(reading.without_contacts, request_type, reading.catalog):
            found[DESCRIPTION] = reading.text
    return found


# ----------------------------------------------------- answers to a datum
def extract_answer(
    turn: Turn, slots: Mapping[str, Any], request_type: RequestType, reading: Reading, requested: str
) -> Optional[dict[str, Any]]:
    """What an answer to the ``requested`` datum (not the summary) fills; None when it is no answer."""
    aside = asks_aside(turn, requested, reading)
    if aside is not None:
        return aside
    if requested == DESCRIPTION:
        return _answer_description(turn, slots, request_type, reading)
    text = reading.text
    value: Any = None
    if requested == EMAIL:
        value = turn.entity(EMAIL) or reading.email
        questioned = slots.get(EMAIL_QUESTIONED)
        if value is None and questioned and is_yes_or_no(turn):
            # Typed answers to «¿Quisiste decir …?»: sí takes the suggestion, no keeps what was written.
            value = (suggest_email(questioned) or questioned) if turn.intent == "affirm" else questioned
    elif requested == PHONE:
        value = turn.entity(PHONE) or reading.phone
    elif requested == PHONE_COUNTRY:
        value = country_in(turn, reading)
    elif requested == ITEM:
        choice = item_or_retired(turn, reading, request_type)
        if choice is not None:
            return {ITEM_OR_RETIRED: choice}
        value = item_in(turn, reading, request_type)
    # Contact data the customer volunteers out of turn is kept, never asked again.
    volunteered = {} if turn.is_payload else _volunteered(slots, request_type, reading, requested)
    if value is not None:
        return {**volunteered, requested: value}
    if volunteered:
        return {**volunteered, requested: None, UNPARSED: requested}
    if is_escape(turn, ESCAPE_INTENTS) or other_request_type(turn, request_type, reading.catalog):
        return None
    if not turn.is_payload and reading.word_count >= DESCRIPTION_PREFILL_MIN_WORDS:
        # The customer explains the problem instead of answering: kept (as the
        # description, or added to it, or to their words when the type has no
        # description field) and the question is asked again.
        kept = DESCRIPTION if request_type.field(DESCRIPTION) else ORIGINAL_TEXT
        known = slots.get(kept)
        return {kept: f"{known}\n{text}" if known else text, requested: None, UNPARSED: requested}
    # Not understood as an answer: validation refuses it with the reason and
    # the form asks again. A button payload carries no text to judge.
    return {requested: None if turn.is_payload else text, UNPARSED: requested}


def _volunteered(
    slots: Mapping[str, Any], request_type: RequestType, reading: Reading, requested: str
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if requested != EMAIL and request_type.field(EMAIL) and not slots.get(EMAIL) and reading.email:
        found[EMAIL] = reading.email
    if requested != PHONE and request_type.field(PHONE) and not slots.get(PHONE) and reading.phone:
        found[PHONE] = reading.phone
    if not slots.get(COUNTRY):
        country = country_in(Turn(text=reading.text), reading)  # the words alone, not the turn's entities
        if country:
            found[COUNTRY] = country
    return found


def _answer_description(
    turn: Turn, slots: Mapping[str, Any], request_type: RequestType, reading: Reading
) -> Optional[dict[str, Any]]:
    text = reading.text
    if is_escape(turn, DESCRIPTION_ESCAPE_INTENTS) and (turn.is_payload or reading.word_count <= ESCAPE_MAX_WORDS):
        return None
    if other_request_type(turn, request_type, reading.catalog) and _SELF_CORRECTION.search(normalize(text)):
        return None  # "perdón, en realidad es ...": the request restarts as the other type
    if turn.is_payload:
        return {DESCRIPTION: None, UNPARSED: DESCRIPTION}
    found: dict[str, Any] = {DESCRIPTION: text}
    # Contact data written inside the description is kept too.
    if reading.email and not slots.get(EMAIL):
        found[EMAIL] = reading.email
    if reading.phone and not slots.get(PHONE) and request_type.field(PHONE):
        found[PHONE] = reading.phone
    if reading.contacts and len(reading.words_besides_contacts) < DESCRIPTION_PREFILL_MIN_WORDS // 2:
        # Only contact data: noted, and the description is asked again.
        return {**{k: v for k, v in found.items() if k != DESCRIPTION}, DESCRIPTION: None, UNPARSED: DESCRIPTION}
    return found
