"""The catalog's limits for attachments (size, count, types), and the Spanish reason for a refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from bot.attachments.records import AttachmentRefused, human_size
from bot.catalog import FieldSpec


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
