"""The outbox: stored tickets delivered to Jira Service Management, never lost, never twice.

The customer's ticket is committed to the local store before anything talks
to JSM (bot/dialogue/submit.py); this worker, a separate process started by
``python -m bot run``, then claims due tickets and delivers them step by step:
the customer request (on the customer's behalf), its attachments, and the
masked conversation transcript as an internal comment. Each finished step is
recorded before the next starts, so a retry (after a timeout, a 5xx, a 429, a
crash or a restart) resumes where it stopped. The one ambiguous step,
creating the request, is guarded by the local key in the summary: before
creating again, the worker searches JSM for it and adopts what it finds.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from bot.attachments import AttachmentStore, StoredAttachment, attachment_id_of
from bot.catalog import Catalog, get_catalog
from bot.privacy import mask_cards
from bot.settings import Settings, env_seconds
from bot.tickets.jsm import (
    JsmAuthError, JsmClient, JsmConfig, JsmConfigError, JsmError, JsmRejected, MappingFile, TypeMapping,
    tickets_backend, when_of,
)
from bot.tickets.model import Ticket
from bot.tickets.store import Claim, TicketStore, TicketStoreError
from bot.transcripts import TrackerReader, TranscriptError, transcript_text

logger = logging.getLogger(__name__)

SUMMARY_MAX = 255
COMMENT_MAX = 30000  # JSM comments hold 32 767 characters
# Catalog field id -> the ticket attribute holding its value.
TICKET_VALUES = {"item": "item_id", "phone": "phone", "description": "description"}
TRANSCRIPT_TITLE = "Transcripción de la conversación con el asistente virtual"


@dataclass(frozen=True)
class OutboxSettings:
    poll_seconds: float = 2.0
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    lease_seconds: float = 300.0
    batch: int = 5

    @classmethod
    def from_env(cls) -> "OutboxSettings":
        return cls(
            poll_seconds=env_seconds("OUTBOX_POLL_SECONDS", cls.poll_seconds),
            retry_base_seconds=env_seconds("OUTBOX_RETRY_BASE_SECONDS", cls.retry_base_seconds),
            retry_max_seconds=env_seconds("OUTBOX_RETRY_MAX_SECONDS", cls.retry_max_seconds),
            lease_seconds=env_seconds("OUTBOX_LEASE_SECONDS", cls.lease_seconds),
        )


def retry_delay(attempts: int, settings: OutboxSettings, retry_after: Optional[float] = None) -> float:
    """Exponential backoff with jitter, never shorter than what JSM asked for (Retry-After)."""
    delay = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** max(0, attempts - 1))
    delay *= random.uniform(0.75, 1.0)  # spread retries of tickets that failed together
    if retry_after is not None:
        delay = max(delay, min(retry_after, 86400.0))
    return delay


# ------------------------------------------------------------------ ticket text
def summary_of(ticket: Ticket) -> str:
    """The JSM summary: starts with the local key, which is how a retry finds its own request."""
    title = ticket.request_type + (f": {ticket.item}" if ticket.item else "")
    return mask_cards(f"[{ticket.key}] {title}")[:SUMMARY_MAX]


def _label(catalog: Catalog, field_id: str, fallback: str) -> str:
    spec = catalog.field_defs.get(field_id)
    text = (spec.short_label or spec.label) if spec else fallback
    return text[:1].upper() + text[1:]


def details_of(ticket: Ticket, catalog: Catalog) -> str:
    """Everything the customer gave, for the request description (cards masked)."""
    retired = catalog.retired_option(ticket.redirected_from)
    rows = [
        ("Categoría", ticket.category),
        (catalog.label("request_type"), ticket.request_type),
        (_label(catalog, "item", "ítem"), ticket.item),
        (_label(catalog, "email", "correo"), ticket.email),
        (_label(catalog, "phone", "teléfono"), ticket.phone),
        ("Canal", ticket.channel),
        ("Conversación", ticket.conversation_id),
        ("Texto original del cliente", ticket.original_text),
        ("Pidió inicialmente", retired.name if retired else None),
        ("Adjuntos", ", ".join(a.name for a in ticket.attachments) or None),
    ]
    lines = [ticket.description, ""] if ticket.description else []
    lines.append(f"Solicitud registrada por el asistente virtual como {ticket.key}.")
    lines += [f"{label}: {value}" for label, value in rows if value]
    return mask_cards("\n".join(lines))


def transcript_of(ticket: Ticket, reader: TrackerReader) -> str:
    """The conversation up to the ticket's creation, cards masked before it leaves our systems."""
    cutoff = ticket.created_at + timedelta(minutes=2)
    utterances = [u for u in reader.conversation(ticket.conversation_id).utterances if u.at <= cutoff]
    return mask_cards(transcript_text(utterances)) if utterances else ""


def comment_of(ticket: Ticket, transcript: str, details: Optional[str], notes: list[str]) -> str:
    head = f"{TRANSCRIPT_TITLE} — {ticket.key} (canal {ticket.channel}). Los números de tarjeta se ocultaron."
    parts = [head]
    if details:
        parts.append(details)  # the request type has no description field in JSM
    parts += notes
    body = transcript or "No hay transcripción disponible de esta conversación."
    room = COMMENT_MAX - sum(len(p) + 2 for p in parts) - 60
    if len(body) > room:
        body = "[… inicio de la conversación omitido por su longitud …]\n" + body[-room:]
    parts.append(body)
    return "\n\n".join(parts)


# --------------------------------------------------------------------- delivery
class Customers:
    """E-mail -> JSM accountId: an existing customer, or one created and added to the desk when allowed."""

    def __init__(self, client: JsmClient, create: bool) -> None:
        self.client = client
        self.create = create
        self._known: dict[str, str] = {}

    def account_for(self, email: str) -> Optional[str]:
        email = email.strip().lower()
        if email in self._known:
            return self._known[email]
        account = self.client.desk_customer(email)
        if account is None:
            try:
                account = self.client.site_user(email)
            except (JsmAuthError, JsmRejected) as exc:  # user search needs a global permission
                logger.info("site user search unavailable: %s", exc)
            if account is None and self.create:
                account = self.client.create_customer(email, email)
            if account is not None and self.create:
                self.client.add_customers([account])
        if account is None:
            logger.warning("no JSM account for a customer and JSM_CREATE_CUSTOMERS is off: raising as the agent")
        else:
            self._known[email] = account  # a customer may get an account later: only hits are kept
        return account


class TicketDelivery:
    """Delivers one claimed ticket; every step is recorded so a retry resumes, never repeats."""

    def __init__(
        self,
        store: TicketStore,
        client: JsmClient,
        mapping: MappingFile,
        *,
        catalog: Optional[Catalog] = None,
        transcripts: Optional[Callable[[Ticket], str]] = None,
        settings: Optional[OutboxSettings] = None,
        attachments: Optional[AttachmentStore] = None,
    ) -> None:
        self.store = store
        self.client = client
        self.mapping = mapping
        self.catalog = catalog or get_catalog()
        self.settings = settings or OutboxSettings()
        self.attachments = attachments or AttachmentStore.from_settings(self.catalog)
        self.customers = Customers(client, client.config.create_customers)
        if transcripts is None:
            reader = TrackerReader.from_settings()
            transcripts = lambda ticket: transcript_of(ticket, reader)  # noqa: E731
        self.transcripts = transcripts

    def deliver(self, claim: Claim) -> str:
        """Deliver, then record the outcome: "delivered", "retry" or "failed"."""
        ticket = claim.ticket
        try:
            self._deliver(claim)
        except JsmError as exc:
            if exc.retryable:
                return self._retry(claim, str(exc), exc.retry_after)
            logger.error("delivery of %s failed for good: %s", ticket.key, exc)
            self.store.mark_failed(claim, str(exc))
            return "failed"
        except TranscriptError as exc:
            return self._retry(claim, f"no se pudo leer la conversación: {exc}")
        except TicketStoreError:
            raise  # the store is down: the lease runs out and the ticket is retried
        except Exception as exc:  # a bug must not lose the ticket either
            logger.exception("unexpected error delivering %s", ticket.key)
            return self._retry(claim, f"error inesperado: {exc.__class__.__name__}: {exc}")
        self.store.mark_delivered(claim)
        logger.info("delivered %s as %s", ticket.key, claim.ticket.jsm_key or claim.progress.get("jsm_key"))
        return "delivered"

    def _retry(self, claim: Claim, error: str, retry_after: Optional[float] = None) -> str:
        delay = retry_delay(claim.ticket.delivery_attempts, self.settings, retry_after)
        logger.warning("delivery of %s will be retried in %.1fs: %s", claim.ticket.key, delay, error)
        self.store.mark_retry(claim, error, datetime.now(timezone.utc) + timedelta(seconds=delay))
        return "retry"

    def _type_mapping(self, ticket: Ticket) -> TypeMapping:
        mapping = self.mapping.get()
        found = mapping.for_type(ticket.request_type_id)
        if found is None:
            raise JsmConfigError(
                f"el tipo de solicitud «{ticket.request_type}» no está en el mapa de JSM; "
                "créalo en JSM y ejecuta `python -m bot jsm sync`"
            )
        return found

    def _deliver(self, claim: Claim) -> None:
        ticket = claim.ticket
        type_mapping = self._type_mapping(ticket)
        jsm_key = ticket.jsm_key or claim.progress.get("jsm_key")
        if not jsm_key:
            jsm_key = self._create(claim, type_mapping)
        self._step_done(claim)
        notes: list[str] = []
        if ticket.attachments and not claim.progress.get("attachments_done"):
            notes = self._attach(claim, jsm_key)
            self._step_done(claim)
        if not claim.progress.get("comment_done"):
            self._comment(claim, jsm_key, type_mapping, notes)

    def _step_done(self, claim: Claim) -> None:
        if not self.store.renew(claim, self.settings.lease_seconds):
            raise JsmConfigError("otro proceso de entrega tomó este ticket")  # lease lost: let it finish

    def request_body(self, ticket: Ticket, type_mapping: TypeMapping, account: Optional[str]) -> dict[str, Any]:
        values: dict[str, Any] = {type_mapping.fields.get("summary", "summary"): summary_of(ticket)}
        if "description" in type_mapping.fields:
            values[type_mapping.fields["description"]] = details_of(ticket, self.catalog)
        for field_id, jsm_field in type_mapping.fields.items():
            if field_id in ("summary", "description"):
                continue
            value = getattr(ticket, TICKET_VALUES.get(field_id, ""), None)
            if value is None:
                continue
            if field_id in type_mapping.options:
                option = type_mapping.options[field_id].get(value)
                if option is None:
                    raise JsmConfigError(
                        f"la opción «{ticket.item or value}» no está en el mapa de JSM; ejecuta `python -m bot jsm sync`"
                    )
                values[jsm_field] = {"id": option}
            else:
                values[jsm_field] = value
        body: dict[str, Any] = {
            "serviceDeskId": self.client.config.service_desk_id,
            "requestTypeId": type_mapping.request_type_id,
            "requestFieldValues": values,
        }
        if account:
            body["raiseOnBehalfOf"] = account
        return body

    def _existing(self, ticket: Ticket) -> Optional[dict[str, Any]]:
        """A JSM request an earlier, unanswered attempt created for this ticket."""
        marker = f"[{ticket.key}]"
        for request in self.client.search_requests(ticket.key):
            summary = next(
                (str(v.get("value")) for v in request.get("requestFieldValues") or [] if v.get("fieldId") == "summary"), ""
            )
            if summary.startswith(marker):
                return request
        return None

    def _create(self, claim: Claim, type_mapping: TypeMapping) -> str:
        ticket = claim.ticket
        created = self._existing(ticket) if claim.progress.get("create_sent") else None
        if created is not None:
            logger.info("%s already exists in JSM as %s: adopted, not created again", ticket.key, created.get("issueKey"))
        else:
            body = self.request_body(ticket, type_mapping, self.customers.account_for(ticket.email))
            self.store.record_progress(claim, create_sent=True)  # from here on, a retry searches first
            created = self.client.create_request(body)
        key = str(created["issueKey"])
        current = created.get("currentStatus") or {}
        self.store.record_progress(
            claim,
            jsm_key=key,
            jsm_url=(created.get("_links") or {}).get("web"),
            jsm_status=current.get("status"),
            jsm_status_at=when_of(current.get("statusDate")),
        )
        claim.progress["jsm_key"] = key
        return key

    def _attach(self, claim: Claim, jsm_key: str) -> list[str]:
        """Upload the customer's files (temporary file, then attach); returns notes for missing ones.

        A ticket's attachment record is only a reference: the file is looked
        up by id in the attachment store and must be that conversation's,
        at the recorded place under the store's root. Whoever can set slots
        must not be able to send a server file (a token, /etc/passwd) to JSM.
        """
        ticket = claim.ticket
        already = set(self.client.attachment_names(jsm_key)) if claim.progress.get("attachments_sent") else set()
        files: list[tuple[str, str, bytes]] = []
        notes: list[str] = []
        for attachment in ticket.attachments:
            if attachment.name in already:
                continue
            stored = self.attachments.for_ticket(attachment, ticket.conversation_id)
            data = self._read(stored) if stored is not None else None
            if data is None:
                if stored is None:
                    logger.warning(
                        "%s: attachment %s is not a stored file of this conversation at its recorded path; skipped",
                        ticket.key, attachment_id_of(attachment) or "(no id)",
                    )
                notes.append(f"El adjunto «{attachment.name}» ya no estaba disponible en el asistente.")
                continue
            files.append((attachment.name, stored.content_type, data))
        if files:
            temporary = self.client.attach_temporary_files(files)
            self.store.record_progress(claim, attachments_sent=True)
            self.client.add_attachments(jsm_key, temporary, public=True)
        self.store.record_progress(claim, attachments_done=True, attachment_notes=notes)
        return notes

    def _read(self, stored: StoredAttachment) -> Optional[bytes]:
        try:
            return self.attachments.read(stored)
        except OSError as exc:
            logger.warning("attachment %s unreadable: %s", stored.id, exc.__class__.__name__)
            return None

    def _comment(self, claim: Claim, jsm_key: str, type_mapping: TypeMapping, notes: list[str]) -> None:
        """The transcript as an internal comment (public: false): agents only."""
        ticket = claim.ticket
        heading = f"{TRANSCRIPT_TITLE} — {ticket.key}"
        if claim.progress.get("comment_sent"):
            if any(str(c.get("body") or "").startswith(heading) for c in self.client.comments(jsm_key)):
                self.store.record_progress(claim, comment_done=True)
                return
        details = None if "description" in type_mapping.fields else details_of(ticket, self.catalog)
        notes = notes or list(claim.progress.get("attachment_notes") or [])
        body = comment_of(ticket, self.transcripts(ticket), details, notes)
        self.store.record_progress(claim, comment_sent=True)
        self.client.add_comment(jsm_key, body, public=False)
        self.store.record_progress(claim, comment_done=True)


# ----------------------------------------------------------------------- worker
def heartbeat_path(settings: Settings) -> Path:
    return settings.data_dir / "outbox-worker.json"


def heartbeat_ok(path: Path, pid: Optional[int]) -> bool:
    """The readiness signal: the worker process ``pid`` started its loop."""
    try:
        beat = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return pid is not None and beat.get("pid") == pid


class Worker:
    """Claims due tickets and delivers them, until stopped."""

    def __init__(
        self, store: TicketStore, delivery: TicketDelivery, settings: OutboxSettings, heartbeat: Optional[Path] = None
    ) -> None:
        self.store = store
        self.delivery = delivery
        self.settings = settings
        self.heartbeat = heartbeat
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def beat(self) -> None:
        if self.heartbeat is None:
            return
        data = {"pid": os.getpid(), "worker": self.id, "at": datetime.now(timezone.utc).isoformat()}
        tmp = self.heartbeat.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.heartbeat)

    def run_once(self) -> int:
        """One round: claim a batch of due tickets and deliver them. Returns how many were handled."""
        try:
            claims = self.store.claim_due(self.id, limit=self.settings.batch, lease_seconds=self.settings.lease_seconds)
            for claim in claims:
                self.delivery.deliver(claim)
            return len(claims)
        except TicketStoreError as exc:
            logger.error("ticket store unavailable: %s", exc)
            return 0

    def run(self, stop: threading.Event) -> None:
        logger.info("outbox worker %s started", self.id)
        self.beat()
        while not stop.is_set():
            handled = self.run_once()
            self.beat()
            if not handled:
                stop.wait(self.settings.poll_seconds)
        logger.info("outbox worker %s stopped", self.id)


def build_worker(settings: Settings, heartbeat: bool = True) -> Worker:
    config = JsmConfig.from_env()
    store = TicketStore.from_settings()
    outbox_settings = OutboxSettings.from_env()
    mapping = MappingFile(config.mapping_file)
    try:
        mapping.get()
    except JsmConfigError as exc:
        logger.warning("%s (tickets wait until it exists)", exc)
    delivery = TicketDelivery(store, JsmClient(config), mapping, settings=outbox_settings)
    return Worker(store, delivery, outbox_settings, heartbeat_path(settings) if heartbeat else None)


def serve(settings: Settings, once: bool = False) -> int:
    """``python -m bot outbox run``: the delivery worker, in the foreground."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s outbox: %(message)s")
    if tickets_backend() != "jsm":
        print("La entrega a JSM está desactivada: define TICKETS_BACKEND=jsm.", flush=True)
        return 2
    try:
        worker = build_worker(settings, heartbeat=not once)
    except (JsmConfigError, TicketStoreError) as exc:
        print(f"ERROR: {exc}", flush=True)
        return 2
    if once:
        while worker.run_once():
            pass
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.run(stop)
    return 0
