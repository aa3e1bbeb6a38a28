"""Turning a confirmed form into a ticket, and telling the customer its key."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Any, Mapping, Optional
from zoneinfo import ZoneInfo

from bot.catalog import Catalog
from bot.contacts import find_emails
from bot.dialogue.form import CONFIRMATION, CONFIRMED, next_slot
from bot.dialogue.prompts import type_path
from bot.dialogue.requests import reset_request
from bot.dialogue.turn import Say, Turn
from bot.privacy import mask_cards
from bot.tickets import NewTicket, TicketStore, TicketStoreError
from bot.tickets.model import Attachment, Ticket

# The ticket whose requester e-mail the customer was asked for.
STATUS_KEY = "status_key"

logger = logging.getLogger(__name__)

Outcome = tuple[dict[str, Any], list[Say]]


def build_ticket(slots: Mapping[str, Any], turn: Turn, catalog: Catalog) -> Optional[NewTicket]:
    """The ticket the slots describe, or None when they are not a confirmed, complete request."""
    request_type = catalog.request_type(slots.get("request_type"))
    if request_type is None or slots.get(CONFIRMATION) != CONFIRMED:
        return None
    if next_slot({**slots, CONFIRMATION: CONFIRMED}, catalog) is not None:
        return None  # a required field is missing: never store an incomplete ticket
    item_spec = request_type.field("item")
    item = item_spec.option(slots.get("item")) if item_spec else None
    category = catalog.category_of(request_type)
    return NewTicket(
        category_id=category.id,
        category=category.name,
        request_type_id=request_type.id,
        request_type=request_type.name,
        item_id=item.id if item else None,
        item=item.name if item else None,
        email=str(slots.get("email")),
        phone=slots.get("phone") or None,
        # Card numbers never reach a ticket (nor JSM, nor an agent's screen).
        description=mask_cards(slots.get("description") or "") or None if request_type.field("description") else None,
        original_text=mask_cards(slots.get("original_text") or "") or None,
        redirected_from=slots.get("redirected_from"),
        attachments=tuple(Attachment.from_dict(a) for a in slots.get("attachment") or ()),
        channel=turn.channel or "desconocido",
        conversation_id=turn.sender_id,
    )


def idempotency_key(turn: Turn) -> str:
    """One key per confirming message: a retried action finds its own ticket."""
    marker = turn.message_id or (f"{turn.timestamp:.6f}" if turn.timestamp is not None else turn.text)
    return f"{turn.sender_id}:{marker}"


def submit(slots: Mapping[str, Any], turn: Turn, catalog: Catalog, store: TicketStore) -> Outcome:
    ticket = build_ticket(slots, turn, catalog)
    if ticket is None:
        if slots.get("request_type") is None:
            # No request in course: a "sí" after a created ticket, or a start
            # that already explained it did not recognise the option.
            return {}, ([Say("utter_anything_else")] if slots.get("ticket_key") else [])
        return {}, [Say("utter_nothing_to_submit")]
    try:
        stored, _created = store.create(ticket, idempotency_key(turn))
    except TicketStoreError:
        # Slots are kept: the customer can retry with "enviar" and lose nothing.
        return {}, [Say("utter_ticket_store_unavailable")]
    request_type = catalog.request_type(stored.request_type_id)
    path = type_path(request_type, catalog) if request_type else stored.request_type
    says = [Say("utter_ticket_created", {"key": stored.key, "request_type": path, "email": stored.email})]
    retired = catalog.retired_option(stored.redirected_from)
    if retired is not None:
        says.append(Say("utter_redirect_closing", {"closing": retired.redirect.closing}))
    updates = {**reset_request(), "original_text": None, "ticket_key": stored.key}
    return updates, says


def ticket_keys_in(text: str, catalog: Catalog) -> list[str]:
    """Ticket keys written in any case and spacing ("eco 123", "ECO-000123")."""
    prefix = re.escape(catalog.ticket_prefix)
    return [
        f"{catalog.ticket_prefix}-{int(number):06d}"
        for number in re.findall(rf"\b{prefix}\s*-?\s*(\d{{1,9}})\b", text, flags=re.IGNORECASE)
    ]


_FROM_ENV: Any = object()


def status(
    turn: Turn, slots: Mapping[str, Any], catalog: Catalog, store: TicketStore, live: Any = _FROM_ENV
) -> list[Say]:
    """A ticket's status, shown only to its conversation or its requester's e-mail.

    With JSM as the help desk (``live``: a ``JsmClient``, read from the
    environment by default) the status is JSM's, fetched now; the last one
    recorded locally answers when JSM cannot be reached.
    """
    if live is _FROM_ENV:
        from bot.tickets.jsm import live_status_client

        live = live_status_client()
    lookup = _Live(live, store)
    # An e-mail written now (with the key, or after being asked for it) counts.
    written = [f.value for f in find_emails(turn.text)] if not turn.is_payload else []
    email = written[0] if written else slots.get("email")
    zone = _zone(slots, catalog)
    try:
        keys = ticket_keys_in(turn.text, catalog) or ([slots[STATUS_KEY]] if slots.get(STATUS_KEY) else [])
        if not keys:
            own = store.list(limit=3, email=email, conversation_id=turn.sender_id)
            if not own:
                return [Say("utter_ask_ticket_key", {"example": f"{catalog.ticket_prefix}-000123"})]
            return [_status_say(t, lookup, zone) for t in own]
        says = []
        for key in keys:
            ticket = store.get(key)
            if ticket is None:
                says.append(Say("utter_ticket_not_found", {"key": key}))
            elif ticket.conversation_id != turn.sender_id and (not email or ticket.email != email):
                says.append(Say("utter_ticket_not_yours", {"key": key}))
            else:
                says.append(_status_say(ticket, lookup, zone))
        return says
    except TicketStoreError:
        return [Say("utter_ticket_store_unavailable_status")]


class _Live:
    """JSM status lookups for one answer: after one failure the rest use the local record."""

    def __init__(self, client: Any, store: TicketStore) -> None:
        self.client = client
        self.store = store

    def status_of(self, ticket: Ticket) -> tuple[Optional[str], Optional[datetime]]:
        if self.client is None or not ticket.jsm_key:
            return ticket.jsm_status, ticket.jsm_status_at
        from bot.tickets.jsm import JsmError

        try:
            name, at = self.client.current_status(ticket.jsm_key)
        except JsmError as exc:
            logger.warning("live JSM status of %s unavailable, using the local record: %s", ticket.key, exc)
            self.client = None
            return ticket.jsm_status, ticket.jsm_status_at
        if name and (name, at) != (ticket.jsm_status, ticket.jsm_status_at):
            try:
                self.store.update_jsm_status(ticket.key, name, at)
            except TicketStoreError:
                pass  # only a cache for the next outage
        return name or ticket.jsm_status, at or ticket.jsm_status_at


def status_lookup(turn: Turn, slots: Mapping[str, Any], catalog: Catalog, store: TicketStore) -> tuple[dict[str, Any], list[Say]]:
    """``status`` plus what to remember: the key of a ticket the customer must
    prove is theirs, so the e-mail they write next is checked against it."""
    says = status(turn, slots, catalog, store)
    refused = [str(s.kwargs["key"]) for s in says if s.response == "utter_ticket_not_yours"]
    return {STATUS_KEY: refused[0] if refused else None}, says


def awaits_status_email(turn: Turn, slots: Mapping[str, Any]) -> bool:
    """The customer was asked for the e-mail of a ticket and this message has one."""
    return bool(slots.get(STATUS_KEY)) and not turn.is_payload and bool(find_emails(turn.text))


def _zone(slots: Mapping[str, Any], catalog: Catalog) -> tuple[ZoneInfo, str]:
    """The customer's time zone and its name: their country's, else the first served country's."""
    country = catalog.country(slots.get("country")) or catalog.countries[0]
    return ZoneInfo(country.timezone), country.name


def _when(moment: datetime, zone: tuple[ZoneInfo, str]) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return f"{moment.astimezone(zone[0]).strftime('%d/%m/%Y %H:%M')} (hora de {zone[1]})"


def _status_say(ticket: Ticket, live: _Live, zone: tuple[ZoneInfo, str]) -> Say:
    if ticket.jsm_key:
        name, at = live.status_of(ticket)
        if name:
            return Say(
                "utter_ticket_status_jsm",
                {
                    "key": ticket.key,
                    "jsm_key": ticket.jsm_key,
                    "request_type": ticket.request_type,
                    "status": name,
                    "updated": _when(at or ticket.updated_at, zone),
                },
            )
    return Say(
        "utter_ticket_status",
        {
            "key": ticket.key,
            "request_type": ticket.request_type,
            "status": ticket.status_label,
            "updated": _when(ticket.updated_at, zone),
        },
    )
