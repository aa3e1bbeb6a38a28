"""Delivering one stored ticket to Jira Service Management: never lost, never twice.

The customer's ticket is committed to the local store before anything talks
to JSM; the worker (bot/tickets/worker.py) then claims it from the outbox
queue and this module delivers it step by step: the customer request (on the
customer's behalf), its attachments, and the masked conversation transcript
as an internal comment. Each finished step is recorded before the next
starts, so a retry (after a timeout, a 5xx, a 429, a crash or a restart)
resumes where it stopped. The one ambiguous step, creating the request, is
guarded by the local key in the summary: before creating again, the worker
searches JSM for it and adopts what it finds.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from bot.attachments import AttachmentStore, StoredAttachment, attachment_id_of
from bot.catalog import Catalog
from bot.settings.tickets import OutboxSettings
from bot.tickets.delivery_text import TRANSCRIPT_TITLE, comment_of, details_of, summary_of
from bot.tickets.errors import JsmAuthError, JsmConfigError, JsmError, JsmRejected, TicketStoreError
from bot.tickets.jsm_client import JsmClient, when_of
from bot.tickets.jsm_mapping import MappingFile, TypeMapping
from bot.tickets.model import Ticket
from bot.tickets.outbox_queue import Claim, OutboxQueue
from bot.transcripts import TranscriptError

logger = logging.getLogger(__name__)

# Catalog field id -> the ticket attribute holding its value.
TICKET_VALUES = {"item": "item_id", "phone": "phone", "description": "description"}


def retry_delay(attempts: int, settings: OutboxSettings, retry_after: Optional[float] = None) -> float:
    """Exponential backoff with jitter, never shorter than what JSM asked for (Retry-After)."""
    delay = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** max(0, attempts - 1))
    delay *= random.uniform(0.75, 1.0)  # spread retries of tickets that failed together
    if retry_after is not None:
        delay = max(delay, min(retry_after, 86400.0))
    return delay


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
        queue: OutboxQueue,
        client: JsmClient,
        mapping: MappingFile,
        *,
        catalog: Catalog,
        attachments: AttachmentStore,
        transcripts: Callable[[Ticket], str],
        settings: Optional[OutboxSettings] = None,
    ) -> None:
        """``transcripts``: the masked conversation behind a ticket (``delivery_text.transcripts_from``)."""
        self.queue = queue
        self.client = client
        self.mapping = mapping
        self.catalog = catalog
        self.attachments = attachments
        self.transcripts = transcripts
        self.settings = settings or OutboxSettings()
        self.customers = Customers(client, client.settings.create_customers)

    def deliver(self, claim: Claim) -> str:
        """Deliver, then record the outcome: "delivered", "retry" or "failed"."""
        ticket = claim.ticket
        try:
            self._deliver(claim)
        except JsmError as exc:
            if exc.retryable:
                return self._retry(claim, str(exc), exc.retry_after)
            logger.error("delivery of %s failed for good: %s", ticket.key, exc)
            self.queue.mark_failed(claim, str(exc))
            return "failed"
        except TranscriptError as exc:
            return self._retry(claim, f"no se pudo leer la conversación: {exc}")
        except TicketStoreError:
            raise  # the store is down: the lease runs out and the ticket is retried
        except Exception as exc:  # a bug must not lose the ticket either
            logger.exception("unexpected error delivering %s", ticket.key)
            return self._retry(claim, f"error inesperado: {exc.__class__.__name__}: {exc}")
        self.queue.mark_delivered(claim)
        logger.info("delivered %s as %s", ticket.key, claim.ticket.jsm_key or claim.progress.get("jsm_key"))
        return "delivered"

    def _retry(self, claim: Claim, error: str, retry_after: Optional[float] = None) -> str:
        delay = retry_delay(claim.ticket.delivery_attempts, self.settings, retry_after)
        logger.warning("delivery of %s will be retried in %.1fs: %s", claim.ticket.key, delay, error)
        self.queue.mark_retry(claim, error, datetime.now(timezone.utc) + timedelta(seconds=delay))
        return "retry"

    def _type_mapping(self, ticket: Ticket) -> TypeMapping:
        found = self.mapping.get().for_type(ticket.request_type_id)
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
        if not self.queue.renew(claim, self.settings.lease_seconds):
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
                        f"la opción «{ticket.item or value}» no está en el mapa de JSM; "
                        "ejecuta `python -m bot jsm sync`"
                    )
                values[jsm_field] = {"id": option}
            else:
                values[jsm_field] = value
        body: dict[str, Any] = {
            "serviceDeskId": self.client.settings.service_desk_id,
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
            values = request.get("requestFieldValues") or []
            summary = next((str(v.get("value")) for v in values if v.get("fieldId") == "summary"), "")
            if summary.startswith(marker):
                return request
        return None

    def _create(self, claim: Claim, type_mapping: TypeMapping) -> str:
        ticket = claim.ticket
        created = self._existing(ticket) if claim.progress.get("create_sent") else None
        if created is not None:
            adopted = created.get("issueKey")
            logger.info("%s already exists in JSM as %s: adopted, not created again", ticket.key, adopted)
        else:
            body = self.request_body(ticket, type_mapping, self.customers.account_for(ticket.email))
            self.queue.record_progress(claim, create_sent=True)  # from here on, a retry searches first
            created = self.client.create_request(body)
        key = str(created["issueKey"])
        current = created.get("currentStatus") or {}
        self.queue.record_progress(
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
            if stored is None:
                logger.warning(
                    "%s: attachment %s is not a stored file of this conversation at its recorded path; skipped",
                    ticket.key,
                    attachment_id_of(attachment) or "(no id)",
                )
            data = self._read(stored) if stored is not None else None
            if stored is None or data is None:
                notes.append(f"El adjunto «{attachment.name}» ya no estaba disponible en el asistente.")
                continue
            files.append((attachment.name, stored.content_type, data))
        if files:
            temporary = self.client.attach_temporary_files(files)
            self.queue.record_progress(claim, attachments_sent=True)
            self.client.add_attachments(jsm_key, temporary, public=True)
        self.queue.record_progress(claim, attachments_done=True, attachment_notes=notes)
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
                self.queue.record_progress(claim, comment_done=True)
                return
        details = None if "description" in type_mapping.fields else details_of(ticket, self.catalog)
        notes = notes or list(claim.progress.get("attachment_notes") or [])
        body = comment_of(ticket, self.transcripts(ticket), details, notes)
        self.queue.record_progress(claim, comment_sent=True)
        self.client.add_comment(jsm_key, body, public=False)
        self.queue.record_progress(claim, comment_done=True)
