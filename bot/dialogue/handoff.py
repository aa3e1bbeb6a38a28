"""«Quiero hablar con una persona»: who answers, where and when, and the help desk told with the transcript.

At any point of the conversation the customer may ask for a person. The
assistant never pretends to be one: it passes the conversation to the help
desk's agents, in the tool they already use, and says who will answer (una
persona del equipo de soporte), where (aquí mismo, en este chat) and when
(the country's business hours, in the customer's local time; outside them,
it says so before anything is created).

What gets flagged, in this order:
- a request being filled (a form, or a confirmed one waiting for a retry):
  it is marked (``HANDOFF_REQUESTED``) and gets the note when it is created
  (``flag_created``, called by ``submit``); nothing typed so far is lost and
  the form asks again what it was asking;
- else the newest ticket of this conversation still open: the note now;
- else the catalog's handoff request type is opened, already marked, so the
  agents get a ticket to answer.
The note (an internal comment for the agents) carries the conversation's
recent messages, card numbers and contact data masked, bounded in length.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional, Sequence
from zoneinfo import ZoneInfo

from bot.catalog import Catalog, Country
from bot.dialogue.ports import HandoffDesk, Unavailable
from bot.dialogue.prompts import type_path
from bot.dialogue.received import channel_contacts
from bot.dialogue.requests import reset_request
from bot.dialogue.slots import COUNTRY, FALLBACK_COUNT, ORIGINAL_TEXT, PHONE, REQUEST_TYPE
from bot.dialogue.turn import Say, Turn
from bot.hours import availability, closed_notice, reply_time
from bot.privacy import mask_for_log
from bot.tickets.model import Ticket
from bot.validation import country_of_e164

logger = logging.getLogger(__name__)

Outcome = tuple[dict[str, Any], list[Say]]

# The slot that marks the request in course for a person (read by ``submit`` after it creates the ticket).
HANDOFF_REQUESTED = "handoff_requested"
INTENT = "human_handoff"
WHATSAPP_PREFIX = "whatsapp:"
# The transcript: the latest messages, each cut, the whole bounded (a JSM comment holds far more).
TRANSCRIPT_MESSAGES = 40
TRANSCRIPT_LINE_CHARS = 500
TRANSCRIPT_CHARS = 6000


# ---------------------------------------------------------------- the country
def customer_country(turn: Turn, slots: Mapping[str, Any], catalog: Catalog) -> Country:
    """Whose clock the customer reads: the country said, else their WhatsApp number's, else their phone's.

    The catalog's first country when nothing tells; the text always names
    the time zone, so a guess is never silent.
    """
    candidates: list[Optional[str]] = [str(slots.get(COUNTRY) or "").upper() or None]
    sender_phone = turn.metadata.get("sender_phone")
    if isinstance(sender_phone, str):
        candidates.append(country_of_e164(sender_phone))
    if turn.sender_id.startswith(WHATSAPP_PREFIX):
        candidates.append(country_of_e164(turn.sender_id[len(WHATSAPP_PREFIX) :].strip()))
    phone = slots.get(PHONE)
    if isinstance(phone, str):
        candidates.append(country_of_e164(phone))
    for candidate in candidates:
        country = catalog.country(candidate)
        if country is not None:
            return country
    return catalog.countries[0]


# ------------------------------------------------------------- the transcript
def _when(timestamp: Any, zone: ZoneInfo) -> str:
    if not isinstance(timestamp, (int, float)) or isinstance(timestamp, bool):
        return ""
    try:
        moment = datetime.fromtimestamp(float(timestamp), tz=timezone.utc).astimezone(zone)
    except (OverflowError, OSError, ValueError):
        return ""
    return f"[{moment.strftime('%d/%m %H:%M')}] "


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TRANSCRIPT_LINE_CHARS else text[: TRANSCRIPT_LINE_CHARS - 1] + "…"


def _button_titles(event: Mapping[str, Any]) -> dict[str, str]:
    """Payload -> title of the buttons an assistant message offered."""
    data = event.get("data")
    buttons = data.get("buttons") if isinstance(data, Mapping) else None
    return {
        str(b["payload"]): str(b.get("title") or "")
        for b in buttons or ()
        if isinstance(b, Mapping) and b.get("payload")
    }


def transcript(events: Iterable[Mapping[str, Any]], zone: ZoneInfo) -> str:
    """The conversation's customer and assistant messages, latest last, masked and bounded.

    A button the customer pressed shows as its title. Card numbers, e-mails
    and phone-like numbers are masked (``bot.privacy.mask_for_log``): the
    ticket already holds the contact data the customer confirmed.
    """
    lines: list[str] = []
    titles: dict[str, str] = {}
    for event in events:
        kind, text = event.get("event"), event.get("text")
        if kind == "bot":
            titles.update(_button_titles(event))
            if isinstance(text, str) and text.strip():
                lines.append(f"{_when(event.get('timestamp'), zone)}Asistente: {_cut(mask_for_log(text))}")
        elif kind == "user" and isinstance(text, str) and text.strip():
            shown = f"«{titles[text]}» (botón)" if text in titles else "(botón)" if text.startswith("/") else text
            lines.append(f"{_when(event.get('timestamp'), zone)}Cliente: {_cut(mask_for_log(shown))}")
    kept = lines[-TRANSCRIPT_MESSAGES:]
    while len(kept) > 1 and sum(len(line) + 1 for line in kept) > TRANSCRIPT_CHARS:
        kept = kept[1:]
    left_out = len(lines) - len(kept)
    header = f"(… {left_out} mensajes anteriores omitidos)\n" if left_out else ""
    return header + "\n".join(kept)


def note(
    reason: str, turn: Turn, country: Country, events: Iterable[Mapping[str, Any]], told: Optional[str] = None
) -> str:
    """The internal note the agents read (Spanish): why, where the customer is, what they were told, the transcript."""
    lines = [
        reason,
        f"Canal: {turn.channel or 'desconocido'} · País: {country.name} ({country.timezone})",
    ]
    if told:
        lines.append(f"Se le dijo: «{told}»")
    lines += [
        "",
        "Conversación (tarjetas y datos de contacto ocultos):",
        transcript(events, ZoneInfo(country.timezone)),
    ]
    return "\n".join(lines)


def _source(turn: Turn) -> str:
    """One note per customer message that asked: a retried action finds the note it wrote."""
    marker = turn.message_id or (f"{turn.timestamp:.6f}" if turn.timestamp is not None else turn.text[:100])
    return f"handoff:{marker}"


# ------------------------------------------------------------------ the ask
def ask_for_person(
    turn: Turn,
    slots: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    catalog: Catalog,
    desk: Optional[HandoffDesk],
    moment: datetime,
) -> Outcome:
    """The customer asked for a person: flag the request in course, the open ticket, or open one.

    Outside business hours the customer hears so first, before anything is
    created. Updates carrying ``REQUEST_TYPE`` mean the ticket form must run
    (``opens_form``): a new handoff request, or the one in course resumed.
    """
    country = customer_country(turn, slots, catalog)
    available = availability(country, moment)
    says: list[Say] = [] if available.open_now else [Say("utter_handoff_closed", {"notice": closed_notice(available)})]
    when = reply_time(available)
    in_course = catalog.request_type(slots.get(REQUEST_TYPE))
    if in_course is not None:
        updates = {HANDOFF_REQUESTED: True, REQUEST_TYPE: in_course.id}
        return updates, says + [Say("utter_handoff_in_request", {"when": when})]
    if desk is not None:
        try:
            ticket = desk.open_ticket(turn.sender_id)
            if ticket is not None:
                reason = f"El cliente pidió hablar con una persona sobre {ticket.title}."
                told = when if available.open_now else f"{closed_notice(available)} {when}"
                desk.flag(ticket.key, note(reason, turn, country, events, told), source=_source(turn))
                return {}, says + [Say("utter_handoff_flagged", {"ticket": ticket.title, "when": when})]
        except Unavailable as exc:
            logger.error("no se pudo pasar la conversación a una persona: %s", exc)
            return {}, says + [Say("utter_handoff_unavailable")]
    else:
        logger.warning("handoff without a help desk port: the request is opened without its note")
    request_type = catalog.handoff_request_type
    if request_type is None:
        return {}, says + [Say("utter_handoff_describe", {"when": when})]
    updates = {
        **reset_request(keep_attachments=True),
        REQUEST_TYPE: request_type.id,
        HANDOFF_REQUESTED: True,
        ORIGINAL_TEXT: None,
        FALLBACK_COUNT: 0,
        **channel_contacts(turn, slots),
    }
    opening = Say("utter_handoff_opening", {"request_type": type_path(request_type, catalog), "when": when})
    return updates, says + [opening]


def opens_form(updates: Mapping[str, Any]) -> bool:
    """``ask_for_person`` set a request to fill: the ticket form must run (again) now."""
    return updates.get(REQUEST_TYPE) is not None


# ------------------------------------------------------ after the ticket exists
def flag_created(
    ticket: Ticket,
    slots: Mapping[str, Any],
    turn: Turn,
    catalog: Catalog,
    desk: Optional[HandoffDesk],
    events: Sequence[Mapping[str, Any]],
) -> Outcome:
    """The request a customer asked a person for was just created: it gets its note now.

    Idempotent on the ticket (a retried create writes one note). A failure
    keeps nothing half-done from the customer: they are told to ask again,
    which finds the ticket open and flags it.
    """
    if not slots.get(HANDOFF_REQUESTED):
        return {}, []
    updates: dict[str, Any] = {HANDOFF_REQUESTED: None}
    if desk is None:
        logger.warning("ticket %s asked for a person, but no help desk port is configured", ticket.key)
        return updates, []
    country = customer_country(turn, slots, catalog)
    reason = f"El cliente pidió hablar con una persona mientras registraba esta solicitud ({ticket.key})."
    try:
        desk.flag(ticket.key, note(reason, turn, country, events), source=f"handoff:{ticket.key}")
    except Unavailable as exc:
        logger.error("la solicitud %s no se pudo marcar para una persona: %s", ticket.key, exc)
        return updates, [Say("utter_handoff_note_failed", {"key": ticket.key})]
    return updates, [Say("utter_handoff_noted", {"key": ticket.key})]
