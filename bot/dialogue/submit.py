"""Turning a confirmed form into a ticket, and telling the customer its key."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

from bot.catalog import Catalog, RequestType
from bot.dialogue.answers import resolved
from bot.dialogue.articles import HELPFUL, ticket_lines
from bot.dialogue.description import shown_description
from bot.dialogue.form import next_slot
from bot.dialogue.handoff import flag_created
from bot.dialogue.ports import AttachmentResolver, HandoffDesk, TicketRepository, Unavailable
from bot.dialogue.prompts import type_path
from bot.dialogue.requests import reset_request
from bot.dialogue.revalidate import Refused, revalidate
from bot.dialogue.slots import (
    ATTACHMENT,
    CONFIRMATION,
    CONFIRMATION_ID,
    CONFIRMED,
    DESCRIPTION,
    EMAIL,
    ITEM,
    KB_ANSWER,
    KB_ARTICLES,
    ORIGINAL_TEXT,
    PHONE,
    REDIRECTED_FROM,
    REQUEST_TYPE,
    TICKET_KEY,
)
from bot.dialogue.turn import Say, Turn
from bot.privacy import mask_cards
from bot.tickets.model import Attachment, NewTicket
from bot.validation import DESCRIPTION_MAX_CHARS

logger = logging.getLogger(__name__)

Outcome = tuple[dict[str, Any], list[Say]]


@dataclass(frozen=True)
class Refusal:
    """Why a confirmed request cannot become a ticket, and the slots that send it back to the form.

    ``refused`` is the first invalid value in asking order (the one the
    customer is told about); ``updates`` empties every invalid one and
    withdraws the confirmation, so the form asks them and shows a new summary.
    """

    refused: Refused
    updates: dict[str, Any]


def build_ticket(
    slots: Mapping[str, Any], turn: Turn, catalog: Catalog, attachments: Optional[AttachmentResolver] = None
) -> Union[NewTicket, Refusal, None]:
    """The ticket the slots describe; None when they are not a confirmed, complete request.

    The last line of defence: every value is checked again as the form checks
    a typed one (``revalidate``), whatever filled the slots, and any
    invalid one refuses the whole ticket. Attachments are the store's own
    records of this conversation's files (``attachments``; with no store, no
    attachment record is vouched for), never what the slots claim.
    """
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    if request_type is None or slots.get(CONFIRMATION) != CONFIRMED:
        return None
    fixes, refused = revalidate(slots, catalog, attachments, turn.sender_id)
    if refused:
        return Refusal(refused[0], {**fixes, CONFIRMATION: None})
    values = {**slots, **fixes}
    if next_slot({**values, CONFIRMATION: CONFIRMED}, catalog) is not None:
        return None  # a required field is missing: never store an incomplete ticket
    item_spec = request_type.field(ITEM)
    item = item_spec.option(values.get(ITEM)) if item_spec else None
    category = catalog.category_of(request_type)
    return NewTicket(
        category_id=category.id,
        category=category.name,
        request_type_id=request_type.id,
        request_type=request_type.name,
        item_id=item.id if item else None,
        item=item.name if item else None,
        email=str(values.get(EMAIL)),
        phone=values.get(PHONE) or None,
        # Card numbers never reach a ticket (nor JSM, nor an agent's screen).
        description=mask_cards(_described(values, request_type, catalog)) or None
        if request_type.field(DESCRIPTION)
        else None,
        articles_shown=ticket_lines(values.get(KB_ARTICLES)),
        original_text=mask_cards(values.get(ORIGINAL_TEXT) or "") or None,
        redirected_from=values.get(REDIRECTED_FROM),
        attachments=tuple(Attachment.from_dict(a) for a in values.get(ATTACHMENT) or ()),
        channel=turn.channel or "desconocido",
        conversation_id=turn.sender_id,
    )


def _described(values: Mapping[str, Any], request_type: RequestType, catalog: Catalog) -> str:
    """The description as the summary showed it: the request's own e-mail and phone are fields, not text."""
    spec = request_type.field(DESCRIPTION)
    min_words = spec.min_words if spec else 1
    text = values.get(DESCRIPTION) or ""
    return shown_description(text, values.get(EMAIL), values.get(PHONE), catalog.country_ids, min_words) or ""


# The store's idempotency key column holds this many characters.
_KEY_MAX = 255


def idempotency_key(turn: Turn, confirmation_id: Optional[str] = None) -> str:
    """One key per confirmation: every «sí» to one summary finds the one ticket it created.

    The action retried by Rasa, or the customer's «sí» / «enviar» again after
    a lost reply (timeout, restart: the ticket committed, its slot events
    never applied), come with new messages but the same ``confirmation_id``
    (set when the summary was shown). Conversations from before that slot
    existed fall back to the confirming message, as keys used to be.
    """
    if confirmation_id:
        key = f"{turn.sender_id}:confirmacion:{confirmation_id}"
    else:
        marker = turn.message_id or (f"{turn.timestamp:.6f}" if turn.timestamp is not None else turn.text)
        key = f"{turn.sender_id}:{marker}"
    if len(key) <= _KEY_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()  # long channel conversation ids


def reopens_form(updates: Mapping[str, Any]) -> bool:
    """``submit`` refused the ticket: the confirmation is withdrawn and the request kept, so the form asks again."""
    return CONFIRMATION in updates and updates[CONFIRMATION] is None and REQUEST_TYPE not in updates


def _refusal_say(refused: Refused, slots: Mapping[str, Any], catalog: Catalog) -> Say:
    request_type = catalog.request_type(slots.get(REQUEST_TYPE))
    spec = request_type.field(refused.field) if request_type else None
    kwargs: dict[str, Any] = {"value": refused.value}
    if refused.field == ITEM:
        kwargs["label"] = spec.label if spec else refused.field
    if refused.field == DESCRIPTION:
        kwargs.update(min_words=spec.min_words if spec else 0, max_chars=DESCRIPTION_MAX_CHARS)
    return Say(f"utter_ticket_refused_{refused.field}", kwargs)


def submit(
    slots: Mapping[str, Any],
    turn: Turn,
    catalog: Catalog,
    store: TicketRepository,
    attachments: Optional[AttachmentResolver] = None,
    handoff: Optional[HandoffDesk] = None,
    events: Sequence[Mapping[str, Any]] = (),
) -> Outcome:
    """Create the confirmed request's ticket, or say why not.

    A refused value writes nothing: it is emptied, the customer is told
    which one and why, and the form (``reopens_form``) asks it again. A
    request the customer asked a person for gets its note for the agents
    once created (``handoff``, with the conversation's ``events`` as the
    transcript; bot/dialogue/handoff.py).
    """
    if slots.get(KB_ANSWER) == HELPFUL and slots.get(REQUEST_TYPE):
        return resolved()  # «Sí, esto me sirvió» to the articles the form offered: no ticket
    ticket = build_ticket(slots, turn, catalog, attachments)
    if isinstance(ticket, Refusal):
        logger.warning("ticket refused: invalid %s (%s)", ticket.refused.field, ticket.refused.problem)
        return ticket.updates, [_refusal_say(ticket.refused, slots, catalog)]
    if ticket is None:
        if slots.get(REQUEST_TYPE) is None:
            # No request in course: a "sí" after a created ticket, or a start
            # that already explained it did not recognise the option.
            return {}, ([Say("utter_anything_else")] if slots.get(TICKET_KEY) else [])
        return {}, [Say("utter_nothing_to_submit")]
    try:
        stored, _created = store.create(ticket, idempotency_key(turn, slots.get(CONFIRMATION_ID)))
    except Unavailable:
        # Slots are kept: the customer can retry with "enviar" and lose nothing.
        return {}, [Say("utter_ticket_store_unavailable")]
    request_type = catalog.request_type(stored.request_type_id)
    path = type_path(request_type, catalog) if request_type else stored.request_type
    says = [Say("utter_ticket_created", {"key": stored.key, "request_type": path, "email": stored.email})]
    retired = catalog.retired_option(stored.redirected_from)
    if retired is not None:
        says.append(Say("utter_redirect_closing", {"closing": retired.redirect.closing}))
    updates = {**reset_request(), ORIGINAL_TEXT: None, TICKET_KEY: stored.key}
    flagged, handoff_says = flag_created(stored, slots, turn, catalog, handoff, events)
    return {**updates, **flagged}, says + handoff_says
