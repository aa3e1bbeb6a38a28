"""Files customers send through a channel: what Rasa is told of them, and how a refusal reads.

The contract with the form (``bot/dialogue``) is the same on every channel,
the web chat's widget included: a message made only of files reaches Rasa as
``/attach`` (the payload-only ``attach`` intent), and each stored file as an
id in ``metadata["attachments"]``; the form resolves the ids back through the
store, so a client can never point a ticket at a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from bot.attachments import AttachmentRefused, StoredAttachment, human_size

ATTACH_TEXT = "/attach"


def attachment_references(stored: Sequence[StoredAttachment]) -> list[dict[str, Any]]:
    """What a message carries of each file: the id the form resolves, and what it may show; never the path."""
    return [{"id": s.id, "name": s.name, "content_type": s.content_type, "size": s.size} for s in stored]


def message_text(text: str, stored: Sequence[StoredAttachment]) -> str:
    """What Rasa reads: the customer's words, else ``/attach`` when files came alone, else "" (nothing to say)."""
    if text.strip():
        return text
    return ATTACH_TEXT if stored else ""


def too_large(name: str, max_bytes: int, size: Optional[int] = None) -> AttachmentRefused:
    """The one Spanish refusal for a file over the size limit, on every channel.

    With the size the provider announced it reads as the store's own check
    (the web upload's); a download cut at the limit has no size to tell.
    """
    limit = human_size(max_bytes)
    if size is None:
        return AttachmentRefused("too_large", f"El archivo «{name}» supera el máximo de {limit}.")
    return AttachmentRefused("too_large", f"El archivo «{name}» pesa {human_size(size)}; el máximo es {limit}.")


@dataclass
class ReceivedFiles:
    """A message's files: those stored, and the Spanish reason for each one refused."""

    stored: list[StoredAttachment] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def metadata(self) -> list[dict[str, Any]]:
        return attachment_references(self.stored)

    def add_to(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """``metadata`` with the stored files' references, when there are any."""
        if self.stored:
            metadata["attachments"] = self.metadata()
        return metadata
