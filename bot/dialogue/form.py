"""The ticket form: which slots it needs, how it reads answers, how it validates.

Rasa runs one form, ``ticket_form``; this module makes it behave like the
catalog's form for whichever request type the conversation is about. For each
customer turn it decides:

- which slots the current request type requires (from the catalog),
- what the message fills (every datum of the opening message, the asked slot
  on an answer, corrections on the summary),
- whether the message is not an answer at all (cancel, a side question), so
  Rasa hands it to a rule and comes back,
- what is wrong with a refused value, as a response the customer reads.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from bot.attachments import AttachmentStore
from bot.catalog import Catalog, RequestType, RetiredOption
from bot.contacts import find_contacts, find_emails, find_phones, words_besides_contacts
from bot.dialogue.turn import Button, Say, Turn, payload
from bot.text import normalize, word_count
from bot.validation import (
    DESCRIPTION_MAX_CHARS,
    Check,
    PhoneCheck,
    check_description,
    check_email,
    check_option,
    check_phone,
    shown_value,
    suggest_email,
)

logger = logging.getLogger(__name__)

# Auxiliary slots of the form, besides the catalog's field ids.
PHONE_COUNTRY = "phone_country"
PHONE_CANDIDATES = "phone_candidates"
CORRECTION_FIELD = "correction_field"
AWAITING_CORRECTION = "awaiting_correction"
CONFIRMATION = "confirmation"
CONFIRMED = "send"
# Names one showing of the summary: set each time it is shown, it makes the
# ticket's idempotency key, so every «sí» to that summary (a retry after a
# lost reply included) finds the one ticket it created.
CONFIRMATION_ID = "confirmation_id"
ATTACH_INTENT = "attach"  # sent by channels with a file and no words
_UNPARSED = "_unparsed"
ITEM_OR_RETIRED = "_item_or_retired"  # not a slot: makes validation ask which one
EMAIL_QUESTIONED = "email_questioned"  # an address shown back as a likely typo

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
    }
)
# The subset that may interrupt a free-text description, when short and clear:
# a description naturally reads like chitchat or a greeting sometimes.
DESCRIPTION_ESCAPE_INTENTS = ESCAPE_INTENTS - {"chitchat", "greet", "out_of_scope"}
ESCAPE_CONFIDENCE = 0.8
ESCAPE_MAX_WORDS = 10
AFFIRM_CONFIDENCE = 0.5
# An opening message this long is taken as the description (shown in the summary).
DESCRIPTION_PREFILL_MIN_WORDS = 8

# Slots reset when a new request starts; contact data is kept for the next one.
REQUEST_SLOTS = (
    "item",
    "description",
    "attachment",
    PHONE_COUNTRY,
    PHONE_CANDIDATES,
    CORRECTION_FIELD,
    AWAITING_CORRECTION,
    CONFIRMATION,
    "redirected_from",
    EMAIL_QUESTIONED,
    CONFIRMATION_ID,
)


@dataclass
class Step:
    """Result of one form turn: slot updates, messages, and what to ask next."""

    updates: dict[str, Any] = field(default_factory=dict)
    says: list[Say] = field(default_factory=list)
    next_slot: Optional[str] = None
    reject: bool = False


# --------------------------------------------------------------- requirements
def required_slots(slots: Mapping[str, Any], catalog: Catalog) -> list[str]:
    """Slots the current request type needs, in asking order."""
    request_type = catalog.request_type(slots.get("request_type"))
    if request_type is None:
        return []
    required: list[str] = []
    for spec in request_type.fields:
        if not spec.required:
            continue
        if spec.id == "phone" and slots.get(PHONE_CANDIDATES) and _empty(slots.get("phone")):
            required.append(PHONE_COUNTRY)
        required.append(spec.id)
    if slots.get(AWAITING_CORRECTION):
        required.append(CORRECTION_FIELD)
    required.append(CONFIRMATION)
    return required


def next_slot(slots: Mapping[str, Any], catalog: Catalog) -> Optional[str]:
    return next((s for s in required_slots(slots, catalog) if _empty(slots.get(s))), None)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


# ----------------------------------------------------------------- extraction
def _emails(text: str) -> list[str]:
    return [f.value for f in find_emails(text)]


def _phones(text: str, catalog: Catalog) -> list[str]:
    return [f.value for f in find_phones(text, catalog.country_ids)]


def _country_in(turn: Turn, text: str, catalog: Catalog) -> Optional[str]:
    value = turn.entity("country")
    if value and catalog.country(str(value).upper()):
        return str(value).upper()
    if turn.is_payload:
        return None
    matches = catalog.match_countries(text)
    return matches[0].id if len(matches) == 1 else None


def _retired_in(turn: Turn, text: str, request_type: RequestType, catalog: Catalog) -> Optional[RetiredOption]:
    """A retired option of this request type asked for in this turn, if any."""
    for retired in catalog.retired:
        if retired.request_type_id != request_type.id:
            continue
        if turn.intent == retired.intent and (turn.is_payload or turn.confidence >= 0.5):
            return retired
        if retired.id in map(str, turn.entity_values(retired.field_id)):
            return retired
        if not turn.is_payload and retired in catalog.match_retired(text):
            return retired
    return None


def _item_in(turn: Turn, text: str, request_type: RequestType, catalog: Catalog) -> Optional[str]:
    """The ítem named in this turn: an option id, a retired option id, or None."""
    spec = request_type.field("item")
    if spec is None:
        return None
    retired = _retired_in(turn, text, request_type, catalog)
    if retired is not None:
        return retired.id
    values = {str(v) for v in turn.entity_values("item")}
    if len(values) == 1:
        return values.pop()
    if turn.is_payload:
        return None
    check = check_option(text, spec)
    return check.value if check.ok else None


def item_or_retired(turn: Turn, text: str, request_type: RequestType, catalog: Catalog) -> Optional[tuple[str, RetiredOption]]:
    """An active ítem and a retired option both read into one message.

    The NLU may take "es el de cartera" for the retired cartera request while
    the words name the active cartera upload-failure ítem; the two
    lead to different teams, so the customer is asked rather than guessed for.
    Only when the retired option comes from the intent alone: a button, the
    retired option's own words or its entity are unambiguous.
    """
    if turn.is_payload or not text:
        return None
    retired = _retired_in(turn, text, request_type, catalog)
    if retired is None or retired in catalog.match_retired(text) or retired.id in map(str, turn.entity_values(retired.field_id)):
        return None
    spec = request_type.field(retired.field_id)
    if spec is None:
        return None
    named = {str(v) for v in turn.entity_values(retired.field_id)} or {check_option(text, spec).value}
    active = [value for value in named if value and spec.option(value) is not None]
    return (active[0], retired) if len(active) == 1 else None


def extract_start(turn: Turn, slots: Mapping[str, Any], catalog: Catalog, text: str) -> dict[str, Any]:
    """Everything the opening message already says, so it is never asked."""
    request_type = catalog.request_type(slots.get("request_type"))
    if request_type is None or not text:
        return {}
    found: dict[str, Any] = {}
    country = _country_in(turn, text, catalog)
    if country and not slots.get("country"):
        found["country"] = country
    emails = _emails(text)
    if emails and not slots.get("email"):
        found["email"] = emails[0]
    phones = _phones(text, catalog)
    if phones and not slots.get("phone"):
        found["phone"] = phones[0]
    item = _item_in(turn, text, request_type, catalog)
    if item:
        found["item"] = item
    if request_type.field("description") and word_count(text) >= DESCRIPTION_PREFILL_MIN_WORDS:
        found["description"] = text
    return found


def _is_escape(turn: Turn, intents: frozenset[str]) -> bool:
    if turn.intent not in intents:
        return False
    return turn.is_payload or turn.confidence >= ESCAPE_CONFIDENCE


def extract_answer(turn: Turn, slots: Mapping[str, Any], catalog: Catalog) -> Optional[dict[str, Any]]:
    """What an answer to the requested slot fills; None when it is no answer."""
    requested = slots.get("requested_slot")
    request_type = catalog.request_type(slots.get("request_type"))
    if request_type is None or not requested:
        return {}
    text = turn.text.strip()

    if requested == CONFIRMATION:
        return _answer_confirmation(turn, request_type, catalog)
    if requested == CORRECTION_FIELD:
        return _answer_correction_field(turn, request_type, catalog)
    if requested == "description":
        return _answer_description(turn, slots, request_type, catalog)

    value: Any = None
    if requested == "email":
        value = turn.entity("email") or next(iter(_emails(text)), None)
        questioned = slots.get(EMAIL_QUESTIONED)
        if value is None and questioned and turn.intent in ("affirm", "deny") and turn.confidence >= AFFIRM_CONFIDENCE:
            # Typed answers to «¿Quisiste decir …?»: sí takes the suggestion, no keeps what was written.
            value = (suggest_email(questioned) or questioned) if turn.intent == "affirm" else questioned
    elif requested == "phone":
        value = turn.entity("phone") or next(iter(_phones(text, catalog)), None)
    elif requested == PHONE_COUNTRY:
        value = _country_in(turn, text, catalog)
    elif requested == "item":
        choice = item_or_retired(turn, text, request_type, catalog)
        if choice is not None:
            return {ITEM_OR_RETIRED: choice}
        value = _item_in(turn, text, request_type, catalog)
    # Contact data the customer volunteers out of turn is kept, never asked again.
    volunteered = {} if turn.is_payload else _volunteered(text, slots, request_type, catalog, requested)
    if value is not None:
        return {**volunteered, requested: value}
    if volunteered:
        return {**volunteered, requested: None, _UNPARSED: requested}
    if _is_escape(turn, ESCAPE_INTENTS) or _other_request_type(turn, request_type, catalog):
        return None
    if not turn.is_payload and word_count(text) >= DESCRIPTION_PREFILL_MIN_WORDS:
        # The customer explains the problem instead of answering: kept (as the
        # description, or added to it, or to their words when the type has no
        # description field) and the question is asked again.
        if request_type.field("description"):
            known = slots.get("description")
            return {"description": f"{known}\n{text}" if known else text, requested: None, _UNPARSED: requested}
        known = slots.get("original_text")
        return {"original_text": f"{known}\n{text}" if known else text, requested: None, _UNPARSED: requested}
    # Not understood as an answer: validation refuses it with the reason and
    # the form asks again. A button payload carries no text to judge.
    return {requested: None if turn.is_payload else text, _UNPARSED: requested}


# How customers say the request they started is not the one they meant.
_SELF_CORRECTION = re.compile(r"\b(perdon|disculpa|en realidad|me equivoque|no es eso|mejor dicho|corrijo)\b")


def _other_request_type(turn: Turn, request_type: RequestType, catalog: Catalog) -> bool:
    """"perdón, en realidad no tengo acceso al SFTP" while the form asks for a
    datum: a clearly different request type, so the form lets it restart.
    Not for descriptions, which often read like a neighbouring type."""
    other = catalog.request_type_for_intent(turn.intent)
    return other is not None and other != request_type and not turn.is_payload and turn.confidence >= ESCAPE_CONFIDENCE


def _volunteered(
    text: str, slots: Mapping[str, Any], request_type: RequestType, catalog: Catalog, requested: str
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if requested != "email" and request_type.field("email") and not slots.get("email"):
        emails = _emails(text)
        if emails:
            found["email"] = emails[0]
    if requested != "phone" and request_type.field("phone") and not slots.get("phone"):
        phones = _phones(text, catalog)
        if phones:
            found["phone"] = phones[0]
    if not slots.get("country"):
        country = _country_in(Turn(text=text), text, catalog)
        if country:
            found["country"] = country
    return found


def _answer_description(
    turn: Turn, slots: Mapping[str, Any], request_type: RequestType, catalog: Catalog
) -> Optional[dict[str, Any]]:
    text = turn.text.strip()
    if _is_escape(turn, DESCRIPTION_ESCAPE_INTENTS) and (
        turn.is_payload or word_count(text) <= ESCAPE_MAX_WORDS
    ):
        return None
    if _other_request_type(turn, request_type, catalog) and _SELF_CORRECTION.search(normalize(text)):
        return None  # "perdón, en realidad es ...": the request restarts as the other type
    if turn.is_payload:
        return {"description": None, _UNPARSED: "description"}
    found: dict[str, Any] = {"description": text}
    # Contact data written inside the description is kept too.
    emails, phones = _emails(text), _phones(text, catalog)
    if emails and not slots.get("email"):
        found["email"] = emails[0]
    if phones and not slots.get("phone") and request_type.field("phone"):
        found["phone"] = phones[0]
    spans = find_contacts(text, catalog.country_ids)
    if spans and len(words_besides_contacts(text, spans)) < DESCRIPTION_PREFILL_MIN_WORDS // 2:
        # Only contact data: noted, and the description is asked again.
        return {**{k: v for k, v in found.items() if k != "description"}, "description": None, _UNPARSED: "description"}
    return found


def _answer_confirmation(turn: Turn, request_type: RequestType, catalog: Catalog) -> Optional[dict[str, Any]]:
    if turn.intent == "affirm" and (turn.is_payload or turn.confidence >= AFFIRM_CONFIDENCE):
        return {CONFIRMATION: CONFIRMED}
    correction = _correction(turn, request_type, catalog)
    if correction:
        return correction
    if turn.intent in ("correct", "deny"):
        return {AWAITING_CORRECTION: True}
    if _is_escape(turn, ESCAPE_INTENTS):
        return None
    return {CONFIRMATION: None, _UNPARSED: CONFIRMATION}


def _answer_correction_field(turn: Turn, request_type: RequestType, catalog: Catalog) -> Optional[dict[str, Any]]:
    correction = _correction(turn, request_type, catalog)
    if correction:
        return {**correction, CORRECTION_FIELD: None}
    if turn.intent == "affirm" and (turn.is_payload or turn.confidence >= AFFIRM_CONFIDENCE):
        # "Volver al resumen" / "así está bien": nothing to change, show the summary again.
        return {AWAITING_CORRECTION: False, CORRECTION_FIELD: None}
    if _is_escape(turn, ESCAPE_INTENTS):
        return None
    return {CORRECTION_FIELD: None, _UNPARSED: CORRECTION_FIELD}


# "la descripción está mal, es: ..." / "... debería decir ...": the new text
# follows the strongest marker (a colon, then "debería decir", then "es").
_NEW_VALUE_MARKERS = (
    re.compile(r":\s*(.+)$", re.DOTALL),
    re.compile(r"\bdeb(?:e|er[ií]a)\s+(?:decir|ser)\b\s*(.+)$", re.IGNORECASE | re.DOTALL),
    re.compile(r"\b(?:es|ser[ií]a)\b\s*(.+)$", re.IGNORECASE | re.DOTALL),
)


def _new_value_in(text: str) -> Optional[str]:
    for marker in _NEW_VALUE_MARKERS:
        found = marker.search(text)
        if found:
            return found.group(1).strip()
    return None


def _correction(turn: Turn, request_type: RequestType, catalog: Catalog) -> dict[str, Any]:
    """Fields the customer wants changed, with the new value when the turn has it.

    A field named without a new value is emptied, so the form asks it again and
    then shows the summary again.
    """
    text = "" if turn.is_payload else turn.text
    choice = item_or_retired(turn, text, request_type, catalog)
    if choice is not None:
        return {ITEM_OR_RETIRED: choice, AWAITING_CORRECTION: False}
    new_values: dict[str, Any] = {}
    emails, phones = _emails(text), _phones(text, catalog)
    if emails and request_type.field("email"):
        new_values["email"] = emails[0]
    if phones and request_type.field("phone"):
        new_values["phone"] = phones[0]
    item = _item_in(turn, text, request_type, catalog) if text or turn.entity("item") else None
    if item:
        new_values["item"] = item
    written = _new_value_in(text)
    if written and request_type.field("description") and word_count(written) >= ESCAPE_MAX_WORDS // 2:
        new_values["description"] = written

    named = [str(v) for v in turn.entity_values("field")] if turn.is_payload else []
    if not named and text:
        named = [f.id for f in catalog.fields_mentioned(text)]
    named = [f for f in dict.fromkeys(named) if request_type.field(f) is not None]
    if not named:
        # "mi correo es otro: ana@x.co" names no field but carries its value.
        named = list(new_values)
    if not named:
        return {}
    updates: dict[str, Any] = {AWAITING_CORRECTION: False}
    for field_id in named:
        updates[field_id] = [] if field_id == "attachment" else new_values.get(field_id)
        if field_id == "phone":
            updates[PHONE_CANDIDATES] = None
    return updates


def attachments_in(turn: Turn, slots: Mapping[str, Any], catalog: Catalog) -> tuple[Optional[list[dict[str, Any]]], list[Say]]:
    """Files delivered with this message, added to those already attached.

    ``metadata["attachments"]`` holds records the action layer has already
    resolved from the attachment store (never paths sent by a client).
    """
    new = [dict(a) for a in turn.metadata.get("attachments") or () if isinstance(a, Mapping) and a.get("id")]
    if not new:
        return None, []
    current = list(slots.get("attachment") or [])
    known = {a.get("id") for a in current}
    new = [a for a in new if a["id"] not in known]
    limit = catalog.attachment_field.max_files
    room = max(0, limit - len(current))
    says = [Say("utter_attachment_received", {"names": ", ".join(a["name"] for a in new[:room]), "count": len(current) + len(new[:room])})] if new[:room] else []
    if len(new) > room:
        says.append(Say("utter_attachment_limit", {"max_files": limit}))
    return current + new[:room], says


def channel_contacts(turn: Turn, slots: Mapping[str, Any]) -> dict[str, Any]:
    """Contact data the channel itself vouches for (the WhatsApp sender's number).

    It fills the phone instead of asking for it; the summary shows it, so the
    customer confirms or corrects it there.
    """
    phone = turn.metadata.get("sender_phone")
    if phone and not slots.get("phone"):
        return {"phone": str(phone)}
    return {}


# ----------------------------------------------------------------- validation
Validated = tuple[dict[str, Any], list[Say]]


def _validate_email(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    if value is None:
        return {"email": None}, []
    check = check_email(str(value))
    if check.ok:
        suggestion = suggest_email(check.value or "")
        if suggestion and check.value != slots.get(EMAIL_QUESTIONED):
            # Asked once: the same address again (typed or the button) is accepted as is.
            buttons = (
                Button(catalog.label("email_suggestion_yes").format(email=suggestion), payload("inform", email=suggestion)),
                Button(catalog.label("email_suggestion_no").format(email=check.value), payload("inform", email=check.value)),
            )
            return {"email": None, EMAIL_QUESTIONED: check.value}, [
                Say("utter_email_typo", {"value": check.value, "suggestion": suggestion}, buttons)
            ]
        cleared = {EMAIL_QUESTIONED: None} if slots.get(EMAIL_QUESTIONED) else {}
        return {"email": check.value, **cleared}, []
    return {"email": None}, [Say(f"utter_invalid_email_{check.problem}", {"value": str(value)})]


def _validate_phone(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    if value is None:
        return {"phone": None}, []
    check = check_phone(str(value), catalog.country_ids, slots.get("country"))
    if check.ok:
        updates: dict[str, Any] = {"phone": check.e164, PHONE_CANDIDATES: None}
        if not slots.get("country"):
            updates["country"] = check.country
        return updates, []
    if check.ambiguous:
        return {"phone": None, PHONE_CANDIDATES: check.candidates}, []
    return {"phone": None, PHONE_CANDIDATES: None}, [
        Say(f"utter_invalid_phone_{check.problem}", {"value": str(value)})
    ]


def _validate_phone_country(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    candidates = slots.get(PHONE_CANDIDATES) if _valid_candidates(slots.get(PHONE_CANDIDATES), catalog) else {}
    country = str(value).upper() if value else None
    if country and country in candidates:
        return {"phone": candidates[country], "country": country, PHONE_CANDIDATES: None, PHONE_COUNTRY: None}, []
    names = " o ".join(c.name for c in catalog.countries if c.id in candidates)
    return {PHONE_COUNTRY: None}, [Say("utter_invalid_phone_country", {"countries": names})]


def _validate_item(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    request_type = catalog.request_type(slots.get("request_type"))
    spec = request_type.field("item") if request_type else None
    if value is None or spec is None:
        return {"item": None}, []
    retired = catalog.retired_option(str(value))
    if retired is not None:
        return redirect_retired(retired, catalog)
    check = check_option(str(value), spec)
    if check.ok:
        return {"item": check.value}, []
    return {"item": None}, [Say("utter_invalid_item", {"value": str(value), "label": spec.label})]


def redirect_retired(retired: RetiredOption, catalog: Catalog) -> Validated:
    """Switch the request to the retired option's redirect target, saying why."""
    target = catalog.request_type(retired.redirect.request_type_id)
    assert target is not None  # guaranteed by the catalog's own validation
    category = catalog.category_of(target)
    return (
        {"item": None, "request_type": target.id, "redirected_from": retired.id},
        [
            Say("utter_retired_option", {"explanation": retired.explanation}),
            Say("utter_redirect_started", {"category": category.name, "request_type": target.name}),
        ],
    )


def _ask_item_or_retired(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    """Both buttons answer the ítem question: the active option, or the retired one (redirected)."""
    item_id, retired = value
    request_type = catalog.request_type(slots.get("request_type"))
    spec = request_type.field(retired.field_id) if request_type else None
    option = spec.option(item_id) if spec else None
    if option is None:
        return {}, []
    buttons = (
        Button(option.name, payload("inform", **{retired.field_id: option.id})),
        Button(catalog.label("retired_choice").format(name=retired.name), payload("inform", **{retired.field_id: retired.id})),
    )
    return {retired.field_id: None}, [Say("utter_item_or_retired", {"item": option.name, "retired": retired.name}, buttons)]


def _validate_description(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    request_type = catalog.request_type(slots.get("request_type"))
    spec = request_type.field("description") if request_type else None
    if value is None or spec is None:
        return {"description": None}, []
    check = check_description(str(value), spec)
    if check.ok:
        return {"description": check.value}, []
    return {"description": None}, [
        Say(f"utter_invalid_description_{check.problem}", {"min_words": spec.min_words, "max_chars": DESCRIPTION_MAX_CHARS})
    ]


def _validate_country(value: Any, slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    country = catalog.country(str(value).upper()) if value else None
    return ({"country": country.id}, []) if country else ({}, [])


_VALIDATORS: dict[str, Callable[[Any, Mapping[str, Any], Catalog], Validated]] = {
    # Order matters: the country decides ambiguous phones, the ítem may switch
    # the request type and so change which other fields apply.
    "country": _validate_country,
    ITEM_OR_RETIRED: _ask_item_or_retired,
    "item": _validate_item,
    PHONE_COUNTRY: _validate_phone_country,
    "phone": _validate_phone,
    "email": _validate_email,
    "description": _validate_description,
}

_UNPARSED_SAYS = {
    CONFIRMATION: "utter_confirmation_help",
    CORRECTION_FIELD: "utter_invalid_correction_field",
}


def validate(updates: Mapping[str, Any], slots: Mapping[str, Any], catalog: Catalog) -> Validated:
    """Validate candidate slot values; refused ones come back empty, with a reason."""
    pending = dict(updates)
    unparsed = pending.pop(_UNPARSED, None)
    merged = dict(slots)
    result: dict[str, Any] = {}
    says: list[Say] = []
    ordered = [k for k in _VALIDATORS if k in pending] + [k for k in pending if k not in _VALIDATORS]
    for key in ordered:
        validator = _VALIDATORS.get(key)
        if pending[key] is None and key == unparsed:
            changes = {key: None}
            noted = [k for k in pending if k not in (key, "country") and pending[k] is not None]
            if noted:
                messages = [Say("utter_noted_still_missing")]
            else:
                messages = [Say(_UNPARSED_SAYS.get(key, "utter_answer_not_understood"))]
        elif validator is None:
            changes, messages = {key: pending[key]}, []
        else:
            changes, messages = validator(pending[key], merged, catalog)
        result.update(changes)
        merged.update(changes)
        says.extend(messages)
    return result, says


# -------------------------------------------------------------- stored values
@dataclass(frozen=True)
class Refused:
    """A stored value that fails the checks a typed one passes: its slot, how it reads, why."""

    field: str
    value: str  # quoted for the customer (``shown_value``)
    problem: str


# Slots checked again on every turn, in the order their refusals are told
# when the request type does not order them (country: never asked itself).
_CHECKED = ("item", "description", "email", "phone", "attachment", "country")


def _valid_candidates(value: Any, catalog: Catalog) -> bool:
    """Country -> E.164 numbers as ``_validate_phone`` stores them: each valid in its country."""
    if not isinstance(value, Mapping) or len(value) < 2:
        return False
    return all(
        isinstance(country, str) and isinstance(number, str) and country in catalog.country_ids
        and check_phone(number, [country]).e164 == number
        for country, number in value.items()
    )


def revalidate(
    slots: Mapping[str, Any],
    catalog: Catalog,
    attachments: Optional[AttachmentStore],
    owner: str,
) -> tuple[dict[str, Any], list[Refused]]:
    """Every request value already in the slots, checked again as if just typed.

    Slots are filled by this form, but also before it (contact data given
    with no request open, a channel's metadata) and restored from the tracker
    store, which outlives any one version of these rules; none of it is
    trusted. A valid value comes back normalised when it was not; an invalid
    one comes back empty, with the reason. Attachment records are looked up
    again by id in ``attachments`` (the store, read from the environment when
    None): only the store's own records of ``owner``'s files stay.
    """
    request_type = catalog.request_type(slots.get("request_type"))
    fixes: dict[str, Any] = {}
    refused: list[Refused] = []

    def drop(slot: str, value: Any, problem: str, **also: Any) -> None:
        fixes.update({slot: None, **also})
        refused.append(Refused(slot, shown_value(value), problem))

    country = slots.get("country")
    if not _empty(country):
        known = catalog.country(country.upper()) if isinstance(country, str) else None
        if known is None:
            drop("country", country, "unknown")
        elif known.id != country:
            fixes["country"] = known.id

    email = slots.get("email")
    if not _empty(email):
        check = check_email(email) if isinstance(email, str) else Check(problem="invalid")
        if not check.ok:
            drop("email", email, check.problem or "invalid")
        elif check.value != email:
            fixes["email"] = check.value

    phone = slots.get("phone")
    if not _empty(phone):
        known_country = fixes.get("country", slots.get("country"))
        phone_check = (
            check_phone(phone, catalog.country_ids, known_country) if isinstance(phone, str) else PhoneCheck(problem="invalid")
        )
        if phone_check.ok:
            if phone_check.e164 != phone:
                fixes["phone"] = phone_check.e164
        elif phone_check.ambiguous:
            fixes.update({"phone": None, PHONE_CANDIDATES: phone_check.candidates})  # the country is asked
        else:
            drop("phone", phone, phone_check.problem or "invalid", **{PHONE_CANDIDATES: None})
    if PHONE_CANDIDATES not in fixes and slots.get(PHONE_CANDIDATES) is not None:
        if not _valid_candidates(slots.get(PHONE_CANDIDATES), catalog):
            fixes[PHONE_CANDIDATES] = None

    item = slots.get("item")
    item_spec = request_type.field("item") if request_type else None
    if not _empty(item):
        if item_spec is None:
            fixes["item"] = None  # left from another request type: never part of this ticket
        elif not isinstance(item, str) or item_spec.option(item) is None:
            drop("item", item, "unknown")

    description = slots.get("description")
    description_spec = request_type.field("description") if request_type else None
    if not _empty(description) and description_spec is not None:
        check = check_description(description, description_spec) if isinstance(description, str) else Check(problem="empty")
        if not check.ok:
            drop("description", description, check.problem or "empty")
        elif check.value != description:
            fixes["description"] = check.value

    records = slots.get("attachment")
    if not _empty(records):
        listed = list(records) if isinstance(records, (list, tuple)) else None
        store = attachments if attachments is not None else AttachmentStore.from_settings(catalog)
        resolved = store.resolve(listed, owner=owner) if listed else []
        if listed is None or resolved != listed:
            fixes["attachment"] = resolved or None
            kept = {r["id"] for r in resolved}
            lost = [r for r in (listed if listed is not None else [records]) if not (isinstance(r, Mapping) and r.get("id") in kept)]
            if lost:
                names = [str(r.get("name") or "adjunto") if isinstance(r, Mapping) else "adjunto" for r in lost]
                refused.append(Refused("attachment", shown_value(", ".join(names)), "not_found"))
                logger.warning("dropped %d attachment record(s) the store does not hold for this conversation", len(lost))

    redirected = slots.get("redirected_from")
    if redirected is not None:
        retired = catalog.retired_option(redirected) if isinstance(redirected, str) else None
        if retired is None or request_type is None or retired.redirect.request_type_id != request_type.id:
            fixes["redirected_from"] = None

    if slots.get(CONFIRMATION) not in (None, CONFIRMED):
        fixes[CONFIRMATION] = None
    # Read as text by the form: anything else was never written by it.
    for text_slot in ("original_text", EMAIL_QUESTIONED):
        if slots.get(text_slot) is not None and not isinstance(slots.get(text_slot), str):
            fixes[text_slot] = None

    order = [f.id for f in request_type.fields] if request_type else []
    order += [f for f in _CHECKED if f not in order]
    refused.sort(key=lambda r: order.index(r.field))
    return fixes, refused


def refusal_says(refused: Refused, slots: Mapping[str, Any], catalog: Catalog) -> list[Say]:
    """The form's usual refusal for a stored value, told again when its question comes."""
    request_type = catalog.request_type(slots.get("request_type"))
    spec = request_type.field(refused.field) if request_type else None
    if refused.field in ("email", "phone"):
        return [Say(f"utter_invalid_{refused.field}_{refused.problem}", {"value": refused.value})]
    if refused.field == "item" and spec is not None:
        return [Say("utter_invalid_item", {"value": refused.value, "label": spec.label})]
    if refused.field == "description" and spec is not None:
        return [Say(f"utter_invalid_description_{refused.problem}", {"min_words": spec.min_words, "max_chars": DESCRIPTION_MAX_CHARS})]
    return []


def new_confirmation_id() -> str:
    return secrets.token_urlsafe(12)


# ----------------------------------------------------------------------- turn
def step(
    turn: Turn,
    slots: Mapping[str, Any],
    catalog: Catalog,
    candidates: Optional[Mapping[str, Any]] = None,
    attachments: Optional[AttachmentStore] = None,
) -> Step:
    """Run the form for one turn.

    What the slots already hold is checked first (``revalidate``): a value
    refused now is dropped, so the form asks it again, and the reason is told
    right before that question.
    """
    request_type = catalog.request_type(slots.get("request_type"))
    if request_type is None:
        return Step(next_slot=None)
    received = slots
    fixes, refused = revalidate(slots, catalog, attachments, turn.sender_id)
    slots = {**slots, **fixes}
    if turn.mode == "start":
        text = slots.get("original_text") or ("" if turn.is_payload else turn.text)
        updates = extract_start(turn, slots, catalog, str(text or ""))
    elif turn.mode == "answer" and turn.intent == ATTACH_INTENT:
        updates = {}  # a file alone answers nothing; the pending question is asked again
    elif turn.mode == "answer":
        answer = extract_answer(turn, slots, catalog)
        if answer is None:
            return Step(reject=True)
        updates = answer
    else:
        updates = {}
    says: list[Say] = []
    if turn.mode != "resume":
        for key, value in channel_contacts(turn, slots).items():
            updates.setdefault(key, value)
        files, attachment_says = attachments_in(turn, slots, catalog)
        if files is not None:
            updates["attachment"] = files
        says.extend(attachment_says)
    # Values Rasa passes as candidates (prefilled before activation) are only
    # validated here when they differ from what the slot held: the slot's own
    # value was just checked by ``revalidate``.
    for key, value in (candidates or {}).items():
        if key not in updates and value != received.get(key):
            updates[key] = value
    validated, messages = validate(updates, slots, catalog)
    summarised = {spec.id for spec in request_type.fields}
    if any(r.field in summarised for r in refused) and {**slots, **validated}.get(CONFIRMATION) is not None:
        # A «sí» to a summary that showed a value refused now confirmed another
        # request: the summary is shown again once the value is asked.
        validated[CONFIRMATION] = None
    merged = {**slots, **validated}
    upcoming = next_slot(merged, catalog)
    stale = [say for r in refused if r.field == upcoming and r.field not in updates for say in refusal_says(r, merged, catalog)]
    result = {**fixes, **validated}
    if upcoming == CONFIRMATION:
        result[CONFIRMATION_ID] = new_confirmation_id()  # a new (or changed) summary: a new confirmation
    return Step(result, says + messages + stale, upcoming)
