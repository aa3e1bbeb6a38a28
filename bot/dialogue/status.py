"""«¿Cómo va ECO-000123?»: a ticket's status, shown only to the conversation that created it.

Ticket keys are sequential and an e-mail typed in a chat proves nothing (it
is contact data), so the only identity the chat can trust is the
conversation itself: its id, which the channel verified (bot/channels/
identity.py), and the channel. Anyone else gets the same answer whether the
ticket exists or not; when mail is configured the status goes to the
ticket's own e-mail instead, composed and sent in the background (JSM call
included), so neither the answer nor its timing tells whether the key exists.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from functools import partial
from typing import Any, Mapping, Optional
from zoneinfo import ZoneInfo

import phonenumbers

from bot.catalog import Catalog
from bot.contacts import find_emails
from bot.dialogue.ports import Letter, LiveStatus, StatusMailer, TicketRepository, Unavailable
from bot.dialogue.slots import COUNTRY
from bot.dialogue.turn import Say, Turn
from bot.tickets.model import Ticket

logger = logging.getLogger(__name__)

BRAND = "Soporte ecollect"
# Keys answered per message: a message listing hundreds of keys must not
# queue hundreds of mails or lookups.
MAX_KEYS = 3
CHAT_LIST_LIMIT = 3
MAIL_LIST_LIMIT = 10
LIST_TOPIC = "lista"

Outcome = tuple[dict[str, Any], list[Say]]


def ticket_keys_in(text: str, catalog: Catalog) -> list[str]:
    """Ticket keys written in any case and spacing ("eco 123", "ECO-000123")."""
    prefix = re.escape(catalog.ticket_prefix)
    return [
        f"{catalog.ticket_prefix}-{int(number):06d}"
        for number in re.findall(rf"\b{prefix}\s*-?\s*(\d{{1,9}})\b", text, flags=re.IGNORECASE)
    ]


def owns(ticket: Ticket, turn: Turn) -> bool:
    """Whether this conversation created the ticket: same id, same channel (an unknown one never matches)."""
    return bool(turn.sender_id and turn.channel) and (ticket.conversation_id, ticket.channel) == (
        turn.sender_id,
        turn.channel,
    )


def status(
    turn: Turn,
    slots: Mapping[str, Any],
    catalog: Catalog,
    store: TicketRepository,
    live: Optional[LiveStatus] = None,
    postman: Optional[StatusMailer] = None,
) -> list[Say]:
    """The answer to a status question.

    ``live``: the help desk's live status when JSM is the help desk (fetched
    now; the last one recorded answers when JSM cannot be reached), None
    otherwise. ``postman``: where status mails go, None when mail is off.
    """
    lookup = _Live(live, store)
    zone = _zone(slots.get(COUNTRY), catalog)
    try:
        keys = list(dict.fromkeys(ticket_keys_in(turn.text, catalog)))[:MAX_KEYS]
        if not keys:
            return _list(turn, catalog, store, lookup, zone, live, postman)
        says = []
        for key in keys:
            ticket = store.get(key)
            if ticket is not None and owns(ticket, turn):
                says.append(_status_say(ticket, lookup, zone))
                continue
            # Someone else's ticket or none at all: one answer for both, and
            # the same work here (the mail job finds out which, later).
            if postman is None:
                says.append(Say("utter_ticket_status_private", {"key": key}))
            else:
                postman.post(partial(status_mail, key, store, catalog, live, postman), requester=turn.sender_id)
                says.append(Say("utter_ticket_status_mailed", {"key": key}))
        return says
    except Unavailable:
        return [Say("utter_ticket_store_unavailable_status")]


def status_lookup(
    turn: Turn,
    slots: Mapping[str, Any],
    catalog: Catalog,
    store: TicketRepository,
    live: Optional[LiveStatus] = None,
    postman: Optional[StatusMailer] = None,
) -> Outcome:
    """``status`` as an action outcome: nothing to remember between turns."""
    return {}, status(turn, slots, catalog, store, live, postman)


def _list(
    turn: Turn,
    catalog: Catalog,
    store: TicketRepository,
    lookup: "_Live",
    zone: tuple[ZoneInfo, str],
    live: Optional[LiveStatus],
    postman: Optional[StatusMailer],
) -> list[Say]:
    """«¿Cómo van mis solicitudes?»: this conversation's tickets; others' go by mail only.

    An e-mail written in the message asks for that address's tickets: they
    are mailed to it, never shown.
    """
    own: list[Ticket] = []
    if turn.sender_id and turn.channel:  # an empty id would list every ticket
        own = [t for t in store.list(limit=CHAT_LIST_LIMIT, conversation_id=turn.sender_id) if owns(t, turn)]
    says = [_status_say(t, lookup, zone) for t in own]
    written = find_emails(turn.text) if not turn.is_payload else []
    if written:
        email = written[0].value
        if postman is None:
            says.append(Say("utter_ticket_list_private"))
        else:
            postman.post(partial(list_mail, email, store, catalog, live, postman), requester=turn.sender_id)
            says.append(Say("utter_ticket_list_mailed", {"email": email}))
    elif not own:
        says.append(Say("utter_ask_ticket_key", {"example": f"{catalog.ticket_prefix}-000123"}))
    return says


# ----------------------------------------------------------------- the mails
def status_mail(
    key: str, store: TicketRepository, catalog: Catalog, live: Optional[LiveStatus], postman: StatusMailer
) -> Optional[Letter]:
    """The status of ``key`` for its own e-mail; None when there is no such ticket or the quota is spent."""
    ticket = store.get(key)
    if ticket is None or not postman.may_send(ticket.email, ticket.key):
        return None
    name, at, jsm_key = _current(ticket, _Live(live, store))
    zone = _zone(_ticket_country(ticket), catalog)
    lines = [
        "Hola:",
        "",
        f"Alguien pidió al asistente virtual de {BRAND} el estado de la solicitud {ticket.key}. "
        "Por seguridad no lo mostramos en el chat: lo enviamos solo al correo con el que se creó la solicitud, este.",
        "",
        f"Solicitud: {ticket.key}",
        f"Tipo de solicitud: {ticket.request_type}",
    ]
    if jsm_key:
        lines.append(f"Registrada en la mesa de ayuda como: {jsm_key}")
    lines += [
        f"Estado: {name}",
        f"Última actualización: {_when(at, zone)}",
        "",
        "Si no fuiste tú quien lo pidió, no tienes que hacer nada: nadie más recibió esta información.",
        "",
        BRAND,
    ]
    return Letter(
        to=ticket.email,
        subject=f"Estado de tu solicitud {ticket.key} · {BRAND}",
        text="\n".join(lines) + "\n",
        topic=ticket.key,
    )


def list_mail(
    email: str, store: TicketRepository, catalog: Catalog, live: Optional[LiveStatus], postman: StatusMailer
) -> Optional[Letter]:
    """The latest tickets created with ``email`` (key, type, status), for that address; None when it has none."""
    tickets = store.list(limit=MAIL_LIST_LIMIT, email=email)
    if not tickets or not postman.may_send(email, LIST_TOPIC):
        return None
    lookup = _Live(live, store)
    rows = []
    for ticket in tickets:
        name, _, _ = _current(ticket, lookup)
        rows.append(f"- {ticket.key} · {ticket.request_type} · {name}")
    lines = [
        "Hola:",
        "",
        f"Alguien pidió al asistente virtual de {BRAND} las solicitudes creadas con este correo. "
        "Por seguridad no las mostramos en el chat: las enviamos solo a este correo.",
        "",
        *rows,
        "",
        "Si no fuiste tú quien lo pidió, no tienes que hacer nada: nadie más recibió esta información.",
        "",
        BRAND,
    ]
    return Letter(to=email, subject=f"Tus solicitudes · {BRAND}", text="\n".join(lines) + "\n", topic=LIST_TOPIC)


# ------------------------------------------------------------------ statuses
class _Live:
    """JSM status lookups for one answer: after one failure the rest use the local record."""

    def __init__(self, client: Optional[LiveStatus], store: TicketRepository) -> None:
        self.client = client
        self.store = store

    def status_of(self, ticket: Ticket) -> tuple[Optional[str], Optional[datetime]]:
        if self.client is None or not ticket.jsm_key:
            return ticket.jsm_status, ticket.jsm_status_at
        try:
            name, at = self.client.current_status(ticket.jsm_key)
        except Unavailable as exc:
            logger.warning("live JSM status of %s unavailable, using the local record: %s", ticket.key, exc)
            self.client = None
            return ticket.jsm_status, ticket.jsm_status_at
        if name and (name, at) != (ticket.jsm_status, ticket.jsm_status_at):
            try:
                self.store.update_jsm_status(ticket.key, name, at)
            except Unavailable:
                pass  # only a cache for the next outage
        return name or ticket.jsm_status, at or ticket.jsm_status_at


def _current(ticket: Ticket, live: _Live) -> tuple[str, datetime, Optional[str]]:
    """Status name, when it last changed and the JSM key: JSM's when it has one, else the local record."""
    if ticket.jsm_key:
        name, at = live.status_of(ticket)
        if name:
            return name, at or ticket.updated_at, ticket.jsm_key
    return ticket.status_label, ticket.updated_at, None


def _zone(country_id: Optional[str], catalog: Catalog) -> tuple[ZoneInfo, str]:
    """A country's time zone and name; the first served country's when unknown."""
    country = catalog.country(country_id) or catalog.countries[0]
    return ZoneInfo(country.timezone), country.name


def _ticket_country(ticket: Ticket) -> Optional[str]:
    """The ticket's country, from its phone's (E.164) country code; tickets store no country."""
    if not ticket.phone:
        return None
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(ticket.phone, None))
    except phonenumbers.NumberParseException:
        return None


def _when(moment: datetime, zone: tuple[ZoneInfo, str]) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return f"{moment.astimezone(zone[0]).strftime('%d/%m/%Y %H:%M')} (hora de {zone[1]})"


def _status_say(ticket: Ticket, live: _Live, zone: tuple[ZoneInfo, str]) -> Say:
    name, at, jsm_key = _current(ticket, live)
    values = {"key": ticket.key, "request_type": ticket.request_type, "status": name, "updated": _when(at, zone)}
    if jsm_key:
        return Say("utter_ticket_status_jsm", {**values, "jsm_key": jsm_key})
    return Say("utter_ticket_status", values)
