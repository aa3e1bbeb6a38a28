"""Files customers attach (the portal's «Adjunto»), on every channel.

Channels save what they receive here and pass only the attachment's id in
the message metadata (``metadata["attachments"] = [{"id": ...}]``); the form
resolves ids back to stored records, so a client can never point a ticket at
an arbitrary server path. Limits (size, count, types) come from the catalog's
attachment field.

Every file belongs to the conversation that sent it (``owner``): only that
conversation can put it in a ticket, and the delivery worker re-reads it by
id from under the store's root, never from a path a record claims. Files
that no ticket took are removed after ``UPLOAD_UNATTACHED_HOURS``, and a
conversation may keep only so many recent files (``UPLOAD_MAX_*``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import mimetypes
import os
import re
import secrets
import shutil
import threading
import time
import unicodedata
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Container, Iterable, Mapping, Optional

from bot.catalog import Catalog, FieldSpec, get_catalog
from bot.privacy import mask_cards
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.tickets import TicketStore

logger = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)
RECORD = "attachment.json"
# Per-conversation usage markers; the leading dot keeps it out of the id space.
OWNERS_DIR = ".propietarios"
# A card number in a file name becomes this (itself a valid file name).
CARD_FILE_MASK = "tarjeta-oculta"
SWEEP_EVERY_SECONDS = 300.0


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
        return {"id": self.id, "name": self.name, "content_type": self.content_type, "size": self.size, "path": self.path}

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


def _env_count(name: str, default: float) -> float:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise SystemExit(f"{name} debe ser un número positivo (valor actual: {raw!r})")
    return value


@dataclass(frozen=True)
class UploadLimits:
    """Limits against floods of uploads; 0 turns one off.

    The per-conversation quota counts the files of the last
    ``unattached_hours``, the time a file no ticket took may stay: so the
    disk one conversation can fill with loose files is bounded, and a
    long-lived conversation (a WhatsApp number) can still send files later.
    """

    rate_per_minute: int = 10
    max_files_per_conversation: int = 20
    max_bytes_per_conversation: int = 50 * 1024 * 1024
    unattached_hours: float = 24.0

    @classmethod
    def from_env(cls) -> "UploadLimits":
        return cls(
            rate_per_minute=int(_env_count("UPLOAD_RATE_PER_MINUTE", cls.rate_per_minute)),
            max_files_per_conversation=int(_env_count("UPLOAD_MAX_FILES_PER_CONVERSATION", cls.max_files_per_conversation)),
            max_bytes_per_conversation=int(_env_count("UPLOAD_MAX_BYTES_PER_CONVERSATION", cls.max_bytes_per_conversation)),
            unattached_hours=_env_count("UPLOAD_UNATTACHED_HOURS", cls.unattached_hours),
        )

    @property
    def window_seconds(self) -> float:
        return self.unattached_hours * 3600.0


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
    def from_settings(cls, catalog: Optional[Catalog] = None) -> "AttachmentStore":
        catalog = catalog or get_catalog()
        return cls(
            Settings.from_env().data_dir / "adjuntos", AttachmentPolicy(catalog.attachment_field), UploadLimits.from_env()
        )

    # ------------------------------------------------------------------ write
    def save(self, name: str, declared_type: Optional[str], data: bytes, owner: Optional[str] = None) -> StoredAttachment:
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
        """Metadata references -> records of conversation ``owner``; unknown, forged, foreign or repeated ids are dropped."""
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
                self._write_record(StoredAttachment(**{**{f.name: getattr(stored, f.name) for f in fields(stored)}, "attached": True}))

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


def referenced_ids(tickets: "TicketStore", candidates: Iterable[StoredAttachment]) -> set[str]:
    """Ids among ``candidates`` that some ticket references.

    A file can only reach a ticket of the conversation that owns it, so only
    those conversations' tickets are read; files from before owners existed
    are checked against every ticket.
    """
    candidates = list(candidates)
    owners = {c.owner for c in candidates}
    if None in owners:
        tickets_read = tickets.list()
    else:
        tickets_read = [t for owner in sorted(o for o in owners if o) for t in tickets.list(conversation_id=owner)]
    referenced = {attachment_id_of(a) for t in tickets_read for a in t.attachments}
    return {c.id for c in candidates if c.id in referenced}


def sweep_unattached(store: AttachmentStore, tickets: "TicketStore", now: Optional[float] = None) -> list[str]:
    """Remove the files no ticket took within ``UPLOAD_UNATTACHED_HOURS``; returns their ids.

    Never removes a file younger than the limit or one a ticket references
    (a ticket store that cannot be read stops the sweep: TicketStoreError).
    """
    limits = store.limits or UploadLimits()
    if not limits.window_seconds:
        return []
    cutoff = (store.clock() if now is None else now) - limits.window_seconds
    candidates = store.unattached_before(cutoff)
    if not candidates:
        return []
    keep = referenced_ids(tickets, candidates)
    store.mark_attached(keep)
    return store.sweep(cutoff, keep)


async def sweep_periodically(store: AttachmentStore, every: float = SWEEP_EVERY_SECONDS) -> None:
    """The web server's background sweep: now, then every ``every`` seconds, until cancelled."""
    from bot.tickets import TicketStore

    tickets: Optional[TicketStore] = None
    while True:
        try:
            tickets = tickets or TicketStore.from_settings()
            removed = await asyncio.to_thread(sweep_unattached, store, tickets)
            if removed:
                logger.info("attachments: removed %d file(s) no ticket took", len(removed))
        except Exception:  # noqa: BLE001 - the next round tries again; the server keeps serving
            logger.exception("attachments: sweep failed")
        await asyncio.sleep(every)
