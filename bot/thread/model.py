"""What a ticket's thread holds: what the help desk said after the ticket, and what the customer answered.

A ticket's conversation goes on after its key: agents comment and change its
status in the help desk (JSM, or the CLI with the embedded store), and the
customer answers in the chat. Each of those is one ``ThreadMessage``, kept in
order per ticket and delivered once: help-desk messages to the customer's
channel, customer messages (and internal notes: a handoff, a CSAT answer) to
the help desk.

``Update`` is what a source of news (JSM's webhook, polling JSM, the CLI)
reports; the thread (bot/tickets/thread.py) turns each new one into a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from bot.tickets.model import Attachment

# Which way a message goes.
TO_CUSTOMER = "customer"  # from the help desk, delivered on the customer's channel
TO_DESK = "desk"  # from the customer (or about the conversation), delivered to the help desk

# What a message is.
COMMENT = "comment"  # an agent's public comment, or the customer's reply
STATUS = "status"  # the request changed status (body: the status name)
CSAT = "csat"  # to the customer: the satisfaction question; to the desk: the answer, as an internal note
HANDOFF = "handoff"  # to the desk: the customer asked for a person (internal note with the transcript)
KINDS = (COMMENT, STATUS, CSAT, HANDOFF)

# Status categories (JSM's statusCategory keys, lower case).
DONE = "done"

# Delivery states (the same words as the tickets outbox).
PENDING = "pending"
SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"
LOCAL = "local"  # to the desk with the embedded store: the thread itself is the help desk
DELIVERY_LABELS = {
    PENDING: "pendiente",
    SENDING: "enviando",
    DELIVERED: "entregado",
    FAILED: "fallido",
    LOCAL: "solo local",
}


@dataclass(frozen=True)
class TicketRef:
    """The ticket a thread message belongs to, as the thread needs it (the tickets room resolves it)."""

    key: str
    conversation_id: str
    channel: str
    request_type_id: str
    request_type: str
    jsm_key: Optional[str] = None

    @property
    def title(self) -> str:
        """How the customer sees the ticket named: its key and request type, «ECO-000123 · <tipo>»."""
        return f"{self.key} · {self.request_type}"


@dataclass(frozen=True)
class ReplyTarget:
    """The ticket whose agent waits for the customer: what they write next may be for it.

    ``since``: the id of the help-desk message that opened the wait; a
    customer who said «nueva solicitud» after it is not asked again until a
    newer one arrives.
    """

    ticket_key: str
    request_type: str
    since: int


@dataclass(frozen=True)
class Update:
    """One piece of news about a request, as a source reported it.

    ``ticket`` is our key (ECO-000123) or the help desk's (JSM's issue key);
    ``source`` identifies the news at its source (``jsm-comment:10042``,
    ``local:<uuid>``), so the same news reported twice (a webhook retried,
    a poll after the webhook) is recorded once. ``public`` False (an internal
    comment) is never recorded for the customer.
    """

    ticket: str
    source: str
    kind: str
    body: str
    author: Optional[str] = None
    happened_at: Optional[datetime] = None
    status_category: Optional[str] = None
    public: bool = True


@dataclass(frozen=True, kw_only=True)
class ThreadMessage:
    """One message of a ticket's thread, with its delivery state."""

    id: int
    ticket_key: str
    title: str
    direction: str
    kind: str
    source: str
    body: str
    conversation_id: str
    channel: str
    created_at: datetime
    author: Optional[str] = None
    happened_at: Optional[datetime] = None
    status_category: Optional[str] = None
    attachments: tuple[Attachment, ...] = ()
    delivery_status: str = PENDING
    attempts: int = 0
    next_attempt_at: Optional[datetime] = None
    delivered_at: Optional[datetime] = None
    via: Optional[str] = None  # how it went: "text", "template", "socket", "proactive", "jsm"...
    last_error: Optional[str] = None

    @property
    def delivery_label(self) -> str:
        return DELIVERY_LABELS.get(self.delivery_status, self.delivery_status)


@dataclass(frozen=True, kw_only=True)
class CsatAnswer:
    """A customer's rating of the help with one ticket (asked once, when it was resolved)."""

    ticket_key: str
    conversation_id: str
    channel: str
    request_type_id: str
    request_type: str
    asked_at: datetime
    rating: Optional[int] = None
    comment: Optional[str] = None
    answered_at: Optional[datetime] = None
