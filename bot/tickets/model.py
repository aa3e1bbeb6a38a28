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


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str = "application/octet-stream"
    size: int = 0
    url: Optional[str] = None
    path: Optional[str] = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Attachment":
        return cls(
            name=str(raw.get("name") or "adjunto"),
            content_type=str(raw.get("content_type") or "application/octet-stream"),
            size=int(raw.get("size") or 0),
            url=raw.get("url"),
            path=raw.get("path"),
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


@dataclass(frozen=True, kw_only=True)
class Ticket(NewTicket):
    """A stored ticket: the request plus its key, status and times."""

    key: str
    created_at: datetime
    updated_at: datetime
    status: str

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the `python -m bot tickets list --json` contract."""
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["updated_at"] = self.updated_at.isoformat()
        data["attachments"] = [asdict(a) for a in self.attachments]
        return data
