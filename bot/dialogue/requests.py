"""Starting, redirecting and cancelling a request.

A request starts from a request-type intent (free text), a menu or suggestion
button (payload), or a "sí" to an offer. A retired option never starts its own
request: the customer is told why and sent to the redirect target.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from bot.catalog import Catalog, RetiredOption
from bot.dialogue.articles import read_verdict
from bot.dialogue.extract import Reading
from bot.dialogue.navigation import OPENING_KEPT, categories_menu, greet, menu_button, suggestions
from bot.dialogue.prompts import type_path
from bot.dialogue.received import attachments_in
from bot.dialogue.slots import (
    ATTACHMENT,
    COUNTRY,
    EMAIL,
    FALLBACK_COUNT,
    KB_OFFERED,
    OFFERED_REDIRECT,
    OFFERED_TYPE,
    ORIGINAL_TEXT,
    PHONE,
    REDIRECTED_FROM,
    REQUEST_SLOTS,
    REQUEST_TYPE,
    REQUESTED_SLOT,
)
from bot.dialogue.turn import Button, Say, Turn, payload
from bot.dialogue.validate import redirect_retired
from bot.dialogue.wording import greeting_or_help_only, says_yes_or_no
from bot.validation import Check, PhoneCheck, check_email, check_option, check_phone, format_phone, shown_value

Outcome = tuple[dict[str, Any], list[Say]]


def reset_request(keep_attachments: bool = False) -> dict[str, Any]:
    """Empty every per-request slot; contact data (e-mail, phone, country) stays.

    Files sent before the request started belong to it, so starting a request
    keeps them; creating or cancelling one clears them.
    """
    updates: dict[str, Any] = {slot: None for slot in REQUEST_SLOTS if not (keep_attachments and slot == ATTACHMENT)}
    updates.update(
        {
            REQUEST_TYPE: None,
            REQUESTED_SLOT: None,
            OFFERED_TYPE: None,
            OFFERED_REDIRECT: None,
        }
    )
    return updates


def start_request(turn: Turn, slots: Mapping[str, Any], catalog: Catalog) -> Outcome:
    """Set the request type this turn asks for and clear the previous request.

    The type comes from a button payload, a "sí" to a pending offer, or the
    request-type intent of free text, in that order.
    """
    offered_type = catalog.request_type(slots.get(OFFERED_TYPE))
    offered_redirect = catalog.retired_option(slots.get(OFFERED_REDIRECT))
    # A request-type entity is a choice only when a button sent it.
    requested = turn.entity(REQUEST_TYPE) if turn.is_payload else None
    redirect_from: Optional[RetiredOption] = None
    keep_opening = False
    if requested is not None:
        retired = catalog.retired_option(requested)
        if retired is not None:
            # A retired option picked directly: explain, then open its target.
            updates = {**reset_request(keep_attachments=True), ORIGINAL_TEXT: None, FALLBACK_COUNT: 0}
            changes, says = redirect_retired(retired, catalog)
            return {**updates, **changes}, says
        request_type = catalog.request_type(requested)
        redirect_from = catalog.retired_option(turn.entity(REDIRECTED_FROM))
        keep_opening = turn.entity("opening") == OPENING_KEPT
    elif turn.intent == "affirm" and offered_type is not None:
        request_type, redirect_from = offered_type, offered_redirect
    else:
        request_type = catalog.request_type_for_intent(turn.intent)

    accepted_offer = request_type is not None and request_type == offered_type
    updates = reset_request(keep_attachments=True)
    updates[FALLBACK_COUNT] = 0
    if accepted_offer or (requested is not None and keep_opening):
        # The words that led to the offer are the request's opening message.
        updates[ORIGINAL_TEXT] = slots.get(ORIGINAL_TEXT)
    else:
        updates[ORIGINAL_TEXT] = None if turn.is_payload else turn.text
    if request_type is None:
        updates[ORIGINAL_TEXT] = None
        return updates, [Say("utter_unknown_request_type")] + categories_menu(catalog)

    updates[REQUEST_TYPE] = request_type.id
    if redirect_from is not None and redirect_from.redirect.request_type_id == request_type.id:
        updates[REDIRECTED_FROM] = redirect_from.id
        category = catalog.category_of(request_type)
        return updates, [Say("utter_redirect_started", {"category": category.name, "request_type": request_type.name})]
    return updates, [Say("utter_request_started", {"request_type": type_path(request_type, catalog)})]


def offer_redirect(turn: Turn, catalog: Catalog) -> Outcome:
    """A customer asked for a retired option in their own words: explain and offer."""
    reading = Reading(turn.text, catalog)
    retired: Optional[RetiredOption] = catalog.retired_for_intent(turn.intent)
    if retired is None:
        retired = reading.retired[0] if reading.retired else None
    if retired is None:
        return {}, [Say("utter_unknown_request_type")] + categories_menu(catalog)
    choice = _failure_or_retired(turn, retired, reading)
    if choice is not None:
        return choice
    target = catalog.request_type(retired.redirect.request_type_id)
    assert target is not None  # guaranteed by the catalog's own validation
    category = catalog.category_of(target)
    offer = retired.redirect.offer.format(category=category.name, request_type=target.name)
    buttons = (
        Button(
            catalog.label("redirect_accept"),
            payload("choose_request_type", request_type=target.id, redirected_from=retired.id),
        ),
        Button(catalog.label("redirect_decline"), payload("deny")),
    )
    updates = {
        OFFERED_TYPE: target.id,
        OFFERED_REDIRECT: retired.id,
        ORIGINAL_TEXT: None if turn.is_payload else turn.text,
    }
    return updates, [
        Say("utter_retired_option", {"explanation": retired.explanation}),
        Say("utter_redirect_offer", {"offer": offer}, buttons),
    ]


def _failure_or_retired(turn: Turn, retired: RetiredOption, reading: Reading) -> Optional[Outcome]:
    """The message also names an active option of the same field: ask which one.

    "el cargue de cartera falla, no actualiza los registros" reads like the
    retired edit request to the NLU but names the upload-failure ítem; sending
    an upload failure to the redirect is the costliest mistake, so a message
    that names both is asked about instead of guessed.
    """
    catalog = reading.catalog
    if turn.is_payload or retired in reading.retired:
        return None
    owner = catalog.request_type(retired.request_type_id)
    spec = owner.field(retired.field_id) if owner else None
    if owner is None or spec is None:
        return None
    named = [spec.option(str(v)) for v in turn.entity_values(retired.field_id)]
    if not named and reading.word_count <= SHORT_MESSAGE_WORDS and not retired.asked_for_in(turn.text):
        # "cartera", "error cartera": too short to tell an upload failure from an edit.
        typed = check_option(turn.text, spec)
        named = [spec.option(typed.value)] if typed.ok else []
    options = list(dict.fromkeys(o for o in named if o is not None))
    if len(options) != 1:
        return None
    option = options[0]
    buttons = (
        Button(
            option.name, payload("choose_request_type", request_type=owner.id, item=option.id, opening=OPENING_KEPT)
        ),
        Button(catalog.label("retired_choice").format(name=retired.name), payload(retired.intent)),
    )
    return {ORIGINAL_TEXT: turn.text}, [Say("utter_failure_or_retired", {}, buttons)]


def decline_offer(slots: Mapping[str, Any], catalog: Catalog) -> Outcome:
    retired = catalog.retired_option(slots.get(OFFERED_REDIRECT))
    # Articles answering a question are closed too: a later «sí» is no verdict on them.
    updates = {OFFERED_TYPE: None, OFFERED_REDIRECT: None, ORIGINAL_TEXT: None, KB_OFFERED: None}
    if retired is None:
        return updates, [Say("utter_anything_else")]
    return updates, [Say("utter_offer_declined", {"declined": retired.redirect.declined})]


def cancel(slots: Mapping[str, Any], form_active: bool, catalog: Catalog) -> Outcome:
    if not form_active and (slots.get(OFFERED_TYPE) or slots.get(OFFERED_REDIRECT)):
        return decline_offer(slots, catalog)  # "ya no" to an offer declines it
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    updates = reset_request()
    updates[ORIGINAL_TEXT] = None
    if form_active and request_type is not None:
        return updates, [Say("utter_request_cancelled", {"request_type": request_type.name})]
    return updates, [Say("utter_nothing_to_cancel")]


def receive_attachment(turn: Turn, slots: Mapping[str, Any], catalog: Catalog) -> Outcome:
    """A file sent outside a form: kept for the request the customer opens next.

    A voice note or a video sent alone is a message the assistant cannot
    read, not a document for a request: the customer is asked to write it
    instead (inside a form, the form keeps it as an attachment).
    """
    references = [a for a in turn.metadata.get("attachments") or () if isinstance(a, Mapping)]
    media = {_media_kind(a) for a in references}
    if references and media <= {"audio", "video"}:
        return {}, [Say("utter_audio_not_heard" if "audio" in media else "utter_video_not_seen")]
    attachments, says = attachments_in(turn, slots, catalog)
    if attachments is None:
        return {}, [Say("utter_attachment_missing")]
    return {ATTACHMENT: attachments}, says + [Say("utter_attachment_kept")]


def _media_kind(reference: Mapping[str, Any]) -> str:
    """ "audio", "video" or "" (a document or an image) by the stored content type."""
    kind = str(reference.get("content_type") or "").split("/", 1)[0].strip().lower()
    return kind if kind in ("audio", "video") else ""


# Up to this many words, a message naming a retired option's field is ambiguous.
SHORT_MESSAGE_WORDS = 6
# A message with this many other words is a problem told with contact data.
PROBLEM_MIN_WORDS = 2


def contact_outside_form(
    turn: Turn, slots: Mapping[str, Any], catalog: Catalog, reading: Optional[Reading] = None
) -> Outcome:
    """E-mail, phone or country given with no request open: kept, never asked again.

    When the message says more than the data ("el PSE no sirve, correo ...,
    tel ..."), the NLU read it as a bare datum but it tells a problem: the
    likeliest request types are offered, its words kept as the opening message.
    A value sent in a payload (``/inform{"email": ...}``) is checked like a
    typed one and, when refused, told why with the form's own refusal.
    ``reading``: the message's words, when the caller already read them.
    """
    reading = reading or Reading("" if turn.is_payload else turn.text, catalog)
    updates: dict[str, Any] = {}
    noted: list[str] = []
    refusals: list[Say] = []
    email = reading.email
    if email is None and turn.is_payload and turn.entity(EMAIL) is not None:
        email, refusal = _payload_email(turn.entity(EMAIL))
        refusals += refusal
    if email:
        updates[EMAIL] = email
        noted.append(f"tu correo {email}")
    raw_phone = reading.phone or (turn.entity(PHONE) if turn.is_payload else None)
    if raw_phone is not None:
        if isinstance(raw_phone, str):
            check = check_phone(raw_phone, catalog.country_ids, slots.get(COUNTRY))
        else:
            check = PhoneCheck(problem="invalid")
        if check.ok:
            updates[PHONE] = check.e164
            updates.setdefault(COUNTRY, check.country)
            noted.append(f"tu teléfono {format_phone(check.e164)}")
        elif not reading.phones and not check.ambiguous:
            refusals.append(Say(f"utter_invalid_phone_{check.problem}", {"value": shown_value(raw_phone)}))
    words = reading.words_besides_contacts
    says: list[Say] = refusals + ([Say("utter_contact_noted", {"noted": " y ".join(noted)})] if noted else [])
    if len(words) >= PROBLEM_MIN_WORDS:
        more, suggestion_says = suggestions(turn, slots, catalog)
        return {**updates, **more}, says + suggestion_says
    if not says:
        return updates, [Say("utter_help")]
    return updates, says + [Say("utter_ask_what_needed", {}, (menu_button(catalog),))]


def _payload_email(value: Any) -> tuple[Optional[str], list[Say]]:
    """An e-mail sent in a payload: the normalised address, or the form's refusal."""
    check = check_email(value) if isinstance(value, str) else Check(problem="invalid")
    if check.ok:
        return check.value, []
    return None, [Say(f"utter_invalid_email_{check.problem}", {"value": shown_value(value)})]


def low_confidence(turn: Turn, slots: Mapping[str, Any], catalog: Catalog) -> Outcome:
    """The NLU is unsure: contact data in the message is kept first, then the
    likeliest request types are offered (or the need is asked)."""
    reading = Reading("" if turn.is_payload else turn.text, catalog)
    if reading.emails or reading.phones:
        return contact_outside_form(turn, slots, catalog, reading)
    if not turn.is_payload and greeting_or_help_only(turn.text):
        return {FALLBACK_COUNT: 0}, greet(catalog)  # «hola, necesito ayuda»: the menu, not request types
    if not turn.is_payload and _best_guess(turn) in SMALL_TALK_INTENTS and not says_yes_or_no(turn.text):
        # «asdf qwer»: the NLU's nearest guess is small talk and no word of it is one; nothing to suggest.
        return {}, [Say("utter_default", {}, (menu_button(catalog),))]
    return suggestions(turn, slots, catalog)


# Nearest guesses that mean the words were not understood when no yes/no word bears them out.
SMALL_TALK_INTENTS = frozenset({"affirm", "deny", "chitchat", "goodbye", "thanks", "greet"})
FALLBACK_INTENT = "nlu_fallback"


def _best_guess(turn: Turn) -> Optional[str]:
    """The intent the NLU found likeliest, the fallback set aside."""
    if turn.intent != FALLBACK_INTENT:
        return turn.intent
    ranked = [str(e.get("name")) for e in turn.intent_ranking if e.get("name") != FALLBACK_INTENT]
    return ranked[0] if ranked else None


def not_a_yes_or_no(turn: Turn, slots: Mapping[str, Any], catalog: Catalog) -> Optional[Outcome]:
    """A «sí» or «no» with no question pending whose words hold none («xyz» read as affirm).

    Read as the unsure guess it is (``low_confidence``), never answered
    «De acuerdo. ¿Hay algo más…?» nor counted as a verdict on articles.
    None when the words (or a button) do say yes or no.
    """
    if turn.is_payload or says_yes_or_no(turn.text) or read_verdict(turn) is not None:
        return None
    return low_confidence(turn, slots, catalog)
