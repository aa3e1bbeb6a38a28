"""Files customers attach (the portal's «Adjunto»), on every channel.

Channels save what they receive here and pass only the attachment's id in
the message metadata (``metadata["attachments"] = [{"id": ...}]``); the form
resolves ids back to stored records, so a client can never point a ticket at
an arbitrary server path. Limits (size, count, types) come from the catalog's
attachment field.
"""

from __future__ import annotations

import json
import mimetypes
import re
import secrets
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from bot.catalog import Catalog, FieldSpec, get_catalog
from bot.settings import Settings

_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


class AttachmentRefused(ValueError):
    """A file the help desk does not accept; ``message`` is Spanish for the customer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class StoredAttachment:
    id: str
    name: str
    content_type: str
    size: int
    path: str

    def as_metadata(self) -> dict[str, Any]:
        return asdict(self)


def safe_filename(name: str, fallback: str = "adjunto") -> str:
    """A file name safe to store and show: no directories, no control characters."""
    base = Path(str(name or "").replace("\\", "/")).name
    base = unicodedata.normalize("NFC", base)
    base = _UNSAFE.sub("_", base).strip(" ._")
    return (base or fallback)[:120]


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")
    if size >= 1024:
        return f"{size // 1024} KB"
    return f"{size} B"


class AttachmentPolicy:
    """The catalog's limits for attachments, and the Spanish reason for a refusal."""

    def __init__(self, spec: FieldSpec) -> None:
        self.max_bytes = spec.max_bytes
        self.max_files = spec.max_files
        self.allowed_types = spec.allowed_types

    @property
    def extensions(self) -> list[str]:
        return sorted({e for exts in self.allowed_types.values() for e in exts})

    def describe(self) -> str:
        kinds = ", ".join(e.lstrip(".").upper() for e in self.extensions)
        return f"{kinds}; máximo {human_size(self.max_bytes)} por archivo"

    def content_type_for(self, name: str, declared: Optional[str]) -> str:
        """The accepted content type of a file, judged by its extension first.

        Browsers and phones declare types inconsistently (CSV as
        application/vnd.ms-excel, octet-stream...), so the extension decides
        and the declared type only has to not contradict it.
        """
        extension = Path(name).suffix.lower()
        by_extension = next((t for t, exts in self.allowed_types.items() if extension in exts), None)
        declared = (declared or "").split(";")[0].strip().lower()
        if by_extension is None:
            # No usable extension (e.g. WhatsApp media): trust an allowed declared type.
            if not extension and declared in self.allowed_types:
                return declared
            raise AttachmentRefused(
                "type_not_allowed",
                f"No puedo recibir archivos de tipo «{extension or declared or 'desconocido'}». "
                f"Tipos permitidos: {self.describe()}.",
            )
        return by_extension

    def check(self, name: str, declared_type: Optional[str], size: int) -> str:
        content_type = self.content_type_for(name, declared_type)
        if size <= 0:
            raise AttachmentRefused("empty", f"El archivo «{name}» está vacío.")
        if size > self.max_bytes:
            raise AttachmentRefused(
                "too_large",
                f"El archivo «{name}» pesa {human_size(size)}; el máximo es {human_size(self.max_bytes)}.",
            )
        return content_type


class AttachmentStore:
    """Attachments on disk under ``<data dir>/adjuntos/<id>/``, with a JSON record."""

    def __init__(self, root: Path, policy: AttachmentPolicy) -> None:
        self.root = root
        self.policy = policy

    @classmethod
    def from_settings(cls, catalog: Optional[Catalog] = None) -> "AttachmentStore":
        catalog = catalog or get_catalog()
        return cls(Settings.from_env().data_dir / "adjuntos", AttachmentPolicy(catalog.attachment_field))

    def save(self, name: str, declared_type: Optional[str], data: bytes) -> StoredAttachment:
        """Validate and store a file; raises ``AttachmentRefused`` with the reason."""
        name = safe_filename(name)
        if not Path(name).suffix:
            guessed = mimetypes.guess_extension((declared_type or "").split(";")[0].strip()) or ""
            name += guessed
        content_type = self.policy.check(name, declared_type, len(data))
        attachment_id = secrets.token_urlsafe(18)
        folder = self.root / attachment_id
        folder.mkdir(parents=True, exist_ok=False)
        path = folder / name
        path.write_bytes(data)
        stored = StoredAttachment(attachment_id, name, content_type, len(data), str(path))
        (folder / "attachment.json").write_text(json.dumps(stored.as_metadata(), ensure_ascii=False), encoding="utf-8")
        return stored

    def get(self, attachment_id: str) -> Optional[StoredAttachment]:
        if not isinstance(attachment_id, str) or not _ID.match(attachment_id):
            return None
        record = self.root / attachment_id / "attachment.json"
        if not record.exists():
            return None
        return StoredAttachment(**json.loads(record.read_text(encoding="utf-8")))

    def resolve(self, references: Iterable[Any]) -> list[dict[str, Any]]:
        """Metadata references -> verified records; unknown or forged ids are dropped."""
        found: list[dict[str, Any]] = []
        for reference in references or ():
            if isinstance(reference, Mapping):
                stored = self.get(str(reference.get("id") or ""))
                if stored is not None:
                    found.append(stored.as_metadata())
        return found[: self.policy.max_files]
