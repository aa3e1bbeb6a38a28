"""What a stored attachment is, and the names and sizes shown to customers."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Optional

from bot.privacy import mask_cards

_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)
# A card number in a file name becomes this (itself a valid file name).
CARD_FILE_MASK = "tarjeta-oculta"


class AttachmentRefused(ValueError):
    """A file the help desk does not accept; ``message`` is Spanish for the customer."""

    def __init__(self, code: str, message: str, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class StoredAttachment:
    id: str
    name: str
    content_type: str
    size: int
    path: str
    # The conversation (Rasa sender id) that sent the file; None for files
    # stored before conversations owned their files: nobody can use those.
    owner: Optional[str] = None
    created_at: Optional[float] = None
    # Set by the sweep once a ticket is known to reference the file.
    attached: bool = False

    def as_metadata(self) -> dict[str, Any]:
        """What a conversation and its ticket carry: never the owner or bookkeeping."""
        return {
            "id": self.id,
            "name": self.name,
            "content_type": self.content_type,
            "size": self.size,
            "path": self.path,
        }

    @classmethod
    def from_record(cls, raw: Any) -> Optional["StoredAttachment"]:
        """A record read from disk, or None when it is not one this store wrote."""
        if not isinstance(raw, Mapping):
            return None
        known = {f.name for f in fields(cls)}
        try:
            stored = cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError:
            return None
        text_fields = (stored.id, stored.name, stored.content_type, stored.path)
        if not all(isinstance(v, str) for v in text_fields) or not isinstance(stored.size, int):
            return None
        return stored


def _without_cards(stem: str) -> str:
    """The stem with any card number replaced, also when written with «_» or «.» between groups."""
    masked = mask_cards(stem, CARD_FILE_MASK)
    if masked != stem:
        return masked
    loose = re.sub(r"[_.]", " ", stem)
    return mask_cards(loose, CARD_FILE_MASK) if mask_cards(loose) != loose else stem


def safe_filename(name: str, fallback: str = "adjunto") -> str:
    """A file name safe to store and show: no directories, no control characters, no card numbers.

    The card mask is applied here, to the stored name itself, so the path on
    disk, the name shown and every copy of the record agree and none holds a
    card number (masking a copy later would break its path).
    """
    base = Path(str(name or "").replace("\\", "/")).name
    base = _UNSAFE.sub("_", unicodedata.normalize("NFC", base))
    suffix = Path(base).suffix if len(Path(base).suffix) <= 10 else ""
    stem = base[: len(base) - len(suffix)] if suffix else base
    base = _without_cards(_without_cards(stem) + suffix).strip(" ._")  # whole too: «4111 1111 1111.1111»
    base = (base or fallback)[:120]
    return _without_cards(base).strip(" ._") or fallback  # the cut may leave a new digit run


def attachment_id_of(record: Any) -> Optional[str]:
    """The store id a ticket's attachment record refers to.

    Records carry ``id`` when the ticket model keeps it; older tickets only
    have the path, whose folder (``<root>/<id>/<name>``) names the id. The id
    is only a key to look up: the store decides which file it is.
    """
    if isinstance(record, Mapping):
        explicit, path = record.get("id"), record.get("path")
    else:
        explicit, path = getattr(record, "id", None), getattr(record, "path", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    if isinstance(path, str) and path:
        return Path(path).parent.name or None
    return None


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")
    if size >= 1024:
        return f"{size // 1024} KB"
    return f"{size} B"
