"""What a ticket holds.

A ticket keeps the catalog names as they were when it was created, next to
their ids: a later catalog edit must not rewrite history.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Optional

# Status codes stored with a ticket, and how the customer reads them.
STATUS_LABELS = {
    "open": "Abierta, pendiente de revisión por el equipo de soporte",
}

# Delivery to the help desk (the outbox). LOCAL: the embedded store is the
# help desk, nothing to deliver (also every ticket from before the outbox).
LOCAL = "local"
PENDING = "pending"
SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"
DELIVERY_LABELS = {
    LOCAL: "solo local",
    PENDING: "pendiente",
    SENDING: "enviando",
    DELIVERED: "entregado",
    FAILED: "fallido",
}


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str = "application/octet-stream"
    size: int = 0
    url: Optional[str] = None
    path: Optional[str] = None
    # The attachment store's id: the delivery worker reads the file through
    # the store by this id, never by a path a slot could have been given.
    id: Optional[str] = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Attachment":
        return cls(
            name=str(raw.get("name") or "adjunto"),
            content_type=str(raw.get("content_type") or "application/octet-stream"),
            size=int(raw.get("size") or 0),
            url=raw.get("url"),
            path=raw.get("path"),
            id=str(raw["id"]) if raw.get("id") else None,
        )


@dataclass(frozen=True, kw_only=True)
class NewTicket:
    """A confirmed request, before it has a key."""

    category_id: str
    category: str
    request_type_id: str
    request_type: str
    email: str
    conversation_id: str
    channel: str
    item_id: Optional[str] = None
    item: Optional[str] = None
    phone: Optional[str] = None
    description: Optional[str] = None
    original_text: Optional[str] = None
    redirected_from: Optional[str] = None
    attachments: tuple[Attachment, ...] = ()
    # Knowledge-base articles the customer was shown before asking (titles and plain links), for the agent.
    articles_shown: Optional[str] = None


@dataclass(frozen=True, kw_only=True)
class Ticket(NewTicket):
    """A stored ticket: the request plus its key, status and times."""

    key: str
    created_at: datetime
    updated_at: datetime
    status: str
    # Delivery to Jira Service Management (see bot/tickets/delivery.py).
    delivery_status: str = LOCAL
    delivery_attempts: int = 0
    next_attempt_at: Optional[datetime] = None
    last_error: Optional[str] = None
    delivered_at: Optional[datetime] = None
    jsm_key: Optional[str] = None
    jsm_url: Optional[str] = None
    jsm_status: Optional[str] = None
    jsm_status_at: Optional[datetime] = None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def delivery_label(self) -> str:
        return DELIVERY_LABELS.get(self.delivery_status, self.delivery_status)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the `python -m bot tickets list --json` contract."""
        data = asdict(self)
        for name, value in data.items():
            if isinstance(value, datetime):
                data[name] = value.isoformat()
        data["attachments"] = [asdict(a) for a in self.attachments]
        return data
