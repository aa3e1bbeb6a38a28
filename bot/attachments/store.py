"""Attachments on disk: one folder per file, with its record, its owner and the per-conversation quota."""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Container, Iterable, Mapping, Optional

from bot.attachments.policy import AttachmentPolicy
from bot.attachments.records import AttachmentRefused, StoredAttachment, attachment_id_of, human_size, safe_filename
from bot.catalog import Catalog
from bot.settings import Settings
from bot.settings.web import UploadLimits

logger = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
RECORD = "attachment.json"
# Per-conversation usage markers; the leading dot keeps it out of the id space.
OWNERS_DIR = ".propietarios"


class AttachmentStore:
    """Attachments on disk under ``<data dir>/adjuntos/<id>/``, with a JSON record."""

    def __init__(
        self,
        root: Path,
        policy: AttachmentPolicy,
        limits: Optional[UploadLimits] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``limits``: the per-conversation quota (None: no quota, as in channel unit tests)."""
        self.root = root
        self.policy = policy
        self.limits = limits
        self.clock = clock
        self._quota_lock = threading.Lock()

    @classmethod
    def from_settings(cls, catalog: Catalog, settings: Settings) -> "AttachmentStore":
        """The store under ``settings.data_dir`` with the catalog's policy and ``settings.web.uploads``' limits."""
        return cls(settings.data_dir / "adjuntos", AttachmentPolicy(catalog.attachment_field), settings.web.uploads)

    # ------------------------------------------------------------------ write
    def save(
        self, name: str, declared_type: Optional[str], data: bytes, owner: Optional[str] = None
    ) -> StoredAttachment:
        """Validate and store a file of conversation ``owner``; raises ``AttachmentRefused`` with the reason.

        Every channel should pass ``owner`` (the Rasa sender id): a file
        without one can never be put in a ticket.
        """
        name = safe_filename(name)
        if not Path(name).suffix:
            guessed = mimetypes.guess_extension((declared_type or "").split(";")[0].strip()) or ""
            name += guessed
        if name == RECORD:
            name = "adjunto.json"
        content_type = self.policy.check(name, declared_type, len(data))
        self._check_disk(len(data))
        with self._quota_lock:
            now = self.clock()
            if owner:
                self._check_quota(owner, len(data), now)
            attachment_id = secrets.token_urlsafe(18)
            folder = self.root / attachment_id
            folder.mkdir(parents=True, exist_ok=False)
            path = folder / name
            path.write_bytes(data)
            stored = StoredAttachment(attachment_id, name, content_type, len(data), str(path), owner or None, now)
            self._write_record(stored)
            if owner and self.limits:
                self._note_usage(owner, stored)
        return stored

    def _check_disk(self, size: int) -> None:
        """Refuse a file that would leave less free disk than ``min_free_bytes``: the store never fills it."""
        reserve = self.limits.min_free_bytes if self.limits else 0
        if not reserve:
            return
        probe = self.root if self.root.exists() else self.root.parent
        try:
            free = shutil.disk_usage(probe).free
        except OSError:
            return  # the write itself will say what is wrong
        if free - size < reserve:
            logger.error("attachments: refused a file, %d bytes free (reserve %d)", free, reserve)
            raise AttachmentRefused(
                "storage_full", "Ahora mismo no puedo recibir archivos. Inténtalo más tarde o descríbelo con palabras."
            )

    def _write_record(self, stored: StoredAttachment) -> None:
        """Written whole (temporary file, then rename): a reader never sees half a record."""
        folder = self.root / stored.id
        record = {f.name: getattr(stored, f.name) for f in fields(stored)}
        temporary = folder / f".{RECORD}.{secrets.token_hex(4)}"
        temporary.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        temporary.replace(folder / RECORD)

    # ------------------------------------------------------------------ quota
    def _owner_dir(self, owner: str) -> Path:
        return self.root / OWNERS_DIR / hashlib.sha256(owner.encode("utf-8")).hexdigest()[:40]

    def _usage(self, owner: str, now: float) -> list[tuple[float, int]]:
        return self._usage_in(self._owner_dir(owner), now)

    def _usage_in(self, folder: Path, now: float) -> list[tuple[float, int]]:
        """(stored at, size) of one owner's files within the quota window; older markers are dropped."""
        window = self.limits.window_seconds if self.limits else 0.0
        found: list[tuple[float, int]] = []
        try:
            markers = list(folder.iterdir())
        except OSError:
            return found
        for marker in markers:
            try:
                raw = json.loads(marker.read_text(encoding="utf-8"))
                at, size = float(raw["at"]), int(raw["size"])
            except (OSError, ValueError, KeyError, TypeError):
                marker.unlink(missing_ok=True)
                continue
            if at <= now - window:
                marker.unlink(missing_ok=True)
            else:
                found.append((at, size))
        return found

    def _check_quota(self, owner: str, size: int, now: float) -> None:
        limits = self.limits
        if limits is None or not limits.window_seconds:
            return
        usage = self._usage(owner, now)
        retry_after = (min(at for at, _ in usage) + limits.window_seconds - now) if usage else None
        if limits.max_files_per_conversation and len(usage) + 1 > limits.max_files_per_conversation:
            raise AttachmentRefused(
                "quota_files",
                f"Ya recibí {len(usage)} archivos en esta conversación, el máximo por ahora. "
                "Adjunta solo los necesarios o inténtalo más tarde.",
                retry_after,
            )
        used = sum(s for _, s in usage)
        if limits.max_bytes_per_conversation and used + size > limits.max_bytes_per_conversation:
            raise AttachmentRefused(
                "quota_bytes",
                f"Los archivos de esta conversación ya suman {human_size(used)} y el máximo es "
                f"{human_size(limits.max_bytes_per_conversation)}. Adjunta solo los necesarios o inténtalo más tarde.",
                retry_after,
            )

    def _note_usage(self, owner: str, stored: StoredAttachment) -> None:
        folder = self._owner_dir(owner)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / stored.id).write_text(json.dumps({"at": stored.created_at, "size": stored.size}), encoding="utf-8")

    # ------------------------------------------------------------------- read
    def get(self, attachment_id: str) -> Optional[StoredAttachment]:
        """The record of ``attachment_id``, only if its file lies in that id's folder under the root.

        The recorded path is resolved (symlinks, ``..``) before it is
        trusted: a record pointing anywhere else is no attachment.
        """
        if not isinstance(attachment_id, str) or not _ID.match(attachment_id):
            return None
        try:
            raw = json.loads((self.root / attachment_id / RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        stored = StoredAttachment.from_record(raw)
        if stored is None or stored.id != attachment_id or not self._inside(stored):
            return None
        return stored

    def _inside(self, stored: StoredAttachment) -> bool:
        try:
            real = Path(stored.path).resolve()
            return real.parent == self.root.resolve() / stored.id and real.name != RECORD
        except (OSError, RuntimeError, ValueError):
            return False

    def resolve(self, references: Iterable[Any], *, owner: str) -> list[dict[str, Any]]:
        """Metadata references -> records of conversation ``owner``.

        Unknown, forged, foreign or repeated ids are dropped.
        """
        found: list[dict[str, Any]] = []
        if not owner:
            return found
        for reference in references if isinstance(references, (list, tuple)) else ():
            if isinstance(reference, Mapping):
                stored = self.get(str(reference.get("id") or ""))
                if stored is not None and stored.owner == owner and all(f["id"] != stored.id for f in found):
                    found.append(stored.as_metadata())
        return found[: self.policy.max_files]

    def for_ticket(self, record: Any, conversation_id: str) -> Optional[StoredAttachment]:
        """The stored file a ticket's attachment record names, if it is really that conversation's.

        The record must name a stored id whose owner is the ticket's
        conversation and whose path is the one recorded; anything else (a
        forged path, another conversation's file, a file swapped for a link)
        is None.
        """
        stored = self.get(attachment_id_of(record) or "")
        claimed = record.get("path") if isinstance(record, Mapping) else getattr(record, "path", None)
        if stored is None or not conversation_id or stored.owner != conversation_id or not isinstance(claimed, str):
            return None
        try:
            if Path(claimed).resolve() != Path(stored.path).resolve() or not Path(stored.path).is_file():
                return None
        except (OSError, RuntimeError, ValueError):
            return None
        return stored

    def read(self, stored: StoredAttachment) -> bytes:
        """The file's bytes, refusing a final symlink put there after the checks."""
        descriptor = os.open(stored.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(descriptor, "rb") as handle:
            return handle.read()

    # ------------------------------------------------------------------ sweep
    def records(self) -> Iterable[StoredAttachment]:
        try:
            entries = list(self.root.iterdir())
        except OSError:
            return
        for entry in entries:
            if _ID.match(entry.name) and not entry.is_symlink() and entry.is_dir():
                stored = self.get(entry.name)
                # No usable record (a save in progress or crashed, a forged record): judged by its age alone.
                yield stored if stored is not None else StoredAttachment(entry.name, "", "", 0, "", None, _mtime(entry))

    def unattached_before(self, cutoff: float) -> list[StoredAttachment]:
        """Files stored before ``cutoff`` that no ticket is known to reference."""
        return [s for s in self.records() if not s.attached and (s.created_at or _mtime(self.root / s.id)) < cutoff]

    def mark_attached(self, ids: Iterable[str]) -> None:
        """Remember that tickets reference these files, so later sweeps skip them quickly."""
        for attachment_id in ids:
            stored = self.get(attachment_id)
            if stored is not None and not stored.attached:
                self._write_record(
                    StoredAttachment(**{**{f.name: getattr(stored, f.name) for f in fields(stored)}, "attached": True})
                )

    def sweep(self, older_than: float, keep_ids: Container[str]) -> list[str]:
        """Remove files stored before ``older_than`` (epoch seconds) that are neither attached nor in ``keep_ids``."""
        removed: list[str] = []
        for stored in self.unattached_before(older_than):
            if stored.id in keep_ids:
                continue
            folder = self.root / stored.id
            shutil.rmtree(folder, ignore_errors=True)
            if stored.owner:
                (self._owner_dir(stored.owner) / stored.id).unlink(missing_ok=True)
            removed.append(stored.id)
        self._prune_usage()
        return removed

    def _prune_usage(self) -> None:
        """Usage markers outside the quota window, and then empty owner folders, go too."""
        now = self.clock()
        try:
            owners = list((self.root / OWNERS_DIR).iterdir())
        except OSError:
            return
        for folder in owners:
            self._usage_in(folder, now)
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")  # gone or unreadable: never judged old
