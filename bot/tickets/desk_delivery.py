"""Delivering what the customer (and the dialogue) says after the ticket to the JSM request: once, in order.

The thread keeps each message for the help desk first (bot/thread/store.py;
PENDING only when JSM is the help desk); this module claims them and posts:
the customer's reply as a public comment on the request, with its files
uploaded; a handoff as an internal note plus the ``contacto-humano`` label;
a CSAT answer as an internal note. Each body ends with a marker naming the
message, so a retry after a lost answer finds the comment it already
posted instead of posting it twice. JSM unavailable (timeouts, 5xx, 429)
is retried later with backoff; a request JSM refuses is marked failed with
JSM's reason, for an operator to read in ``python -m bot tickets thread``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Optional

from bot.attachments import AttachmentStore, attachment_id_of
from bot.privacy import mask_cards
from bot.settings.tickets import OutboxSettings
from bot.thread import ThreadError, ThreadMessage, TicketThread
from bot.thread.model import COMMENT, CSAT, HANDOFF, TO_DESK
from bot.tickets.delivery import retry_delay
from bot.tickets.delivery_text import COMMENT_MAX
from bot.tickets.errors import JsmAuthError, JsmError, JsmRejected, JsmUnavailable, TicketStoreError
from bot.tickets.jsm_client import JsmClient
from bot.tickets.jsm_news import REPLY_PREFIX
from bot.tickets.store import TicketStore

logger = logging.getLogger(__name__)

HUMAN_CONTACT_LABEL = "contacto-humano"
VIA = "jsm"
VIA_WITHOUT_LABEL = "jsm (sin etiqueta)"
CHANNEL_NAMES = {"socketio": "web", "whatsapp": "WhatsApp", "teams": "Microsoft Teams", "rest": "API REST"}
UNAVAILABLE = "unavailable"
NOT_DELIVERED_YET = "el ticket aún no se entregó a JSM: el mensaje espera a que exista la solicitud"


def marker_of(message: ThreadMessage) -> str:
    """The end of every comment this module posts: how a retry recognises its own comment."""
    return f"[{message.ticket_key} · mensaje {message.id}]"


def reply_body(message: ThreadMessage, notes: list[str]) -> str:
    """The customer's reply as the agents read it in JSM (card numbers masked)."""
    channel = CHANNEL_NAMES.get(message.channel, message.channel)
    marker = marker_of(message)
    parts = [f"{REPLY_PREFIX} ({channel}): {mask_cards(message.body.strip())}", *notes, marker]
    return _fit("\n\n".join(parts), marker)


def note_body(message: ThreadMessage) -> str:
    marker = marker_of(message)
    return _fit(f"{mask_cards(message.body.strip())}\n\n{marker}", marker)


def _fit(body: str, marker: str) -> str:
    """JSM comments hold 32 767 characters: cut the middle, keep the marker."""
    if len(body) <= COMMENT_MAX:
        return body
    return body[: COMMENT_MAX - len(marker) - 20] + "\n[…]\n\n" + marker


class DeskDelivery:
    """Claims the thread's messages for the help desk and posts them on their JSM requests."""

    def __init__(
        self,
        thread: TicketThread,
        client: JsmClient,
        attachments: AttachmentStore,
        *,
        tickets: TicketStore,
        settings: Optional[OutboxSettings] = None,
        batch: int = 10,
    ) -> None:
        """``tickets``: where each message's request key (the ticket's ``jsm_key``) is looked up."""
        self.thread = thread
        self.client = client
        self.attachments = attachments
        self.tickets = tickets
        self.settings = settings or OutboxSettings()
        self.batch = batch

    def run_once(self, worker_id: str) -> int:
        """One round: claim due messages for the help desk and deliver them; how many were handled."""
        try:
            claimed = self.thread.claim_due(
                TO_DESK, worker_id, limit=self.batch, lease_seconds=self.settings.lease_seconds
            )
        except ThreadError as exc:
            logger.error("desk delivery: %s", exc)
            return 0
        down = False
        for message in claimed:
            try:
                if down:  # JSM just failed: the rest of the round waits instead of timing out too
                    self._retry(message, worker_id, "no se intentó: JSM no estaba disponible en esta ronda")
                elif self.deliver(message, worker_id) == UNAVAILABLE:
                    down = True
            except (ThreadError, TicketStoreError) as exc:
                logger.error("desk delivery of message %s: %s (retried when its lease ends)", message.id, exc)
        return len(claimed)

    def deliver(self, message: ThreadMessage, worker_id: str) -> str:
        """Post one claimed message, then record the outcome: "delivered", "retry", "unavailable" or "failed".

        "unavailable": JSM did not answer, failed (5xx) or asked to wait (429); retried later, like "retry".
        """
        ticket = self.tickets.get(message.ticket_key)
        if ticket is None:
            self.thread.mark_failed(message, worker_id, f"el ticket {message.ticket_key} no existe en el almacén")
            return "failed"
        if not ticket.jsm_key:
            return self._retry(message, worker_id, NOT_DELIVERED_YET)
        try:
            via = self._send(message, ticket.jsm_key)
        except (JsmRejected, JsmAuthError) as exc:
            logger.error("desk delivery of %s (message %s) failed for good: %s", message.ticket_key, message.id, exc)
            self.thread.mark_failed(message, worker_id, str(exc))
            return "failed"
        except JsmUnavailable as exc:
            self._retry(message, worker_id, str(exc), exc.retry_after)
            return UNAVAILABLE
        except JsmError as exc:
            return self._retry(message, worker_id, str(exc), exc.retry_after)
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the customer's message either
            logger.exception("unexpected error delivering message %s to JSM", message.id)
            return self._retry(message, worker_id, f"error inesperado: {exc.__class__.__name__}: {exc}")
        self.thread.mark_delivered(message, worker_id, via)
        logger.info("delivered %s message %s of %s to %s", message.kind, message.id, message.ticket_key, ticket.jsm_key)
        return "delivered"

    def _retry(self, message: ThreadMessage, worker_id: str, error: str, retry_after: Optional[float] = None) -> str:
        delay = retry_delay(message.attempts, self.settings, retry_after)
        logger.warning("desk delivery of message %s retried in %.1fs: %s", message.id, delay, error)
        self.thread.mark_retry(message, worker_id, error, datetime.now(timezone.utc) + timedelta(seconds=delay))
        return "retry"

    def _send(self, message: ThreadMessage, jsm_key: str) -> str:
        """Post ``message`` on ``jsm_key``; how it went (``via``)."""
        public = message.kind == COMMENT
        posted = message.attempts > 1 and self._already_posted(jsm_key, marker_of(message), public)
        if message.kind == COMMENT:
            if not posted:
                self._post_reply(message, jsm_key)
            return VIA
        if message.kind not in (HANDOFF, CSAT):
            raise JsmRejected(f"tipo de mensaje desconocido para la mesa de ayuda: {message.kind}")
        if not posted:
            self.client.add_comment(jsm_key, note_body(message), public=False)
        if message.kind == HANDOFF:
            try:
                self.client.add_label(jsm_key, HUMAN_CONTACT_LABEL)
            except (JsmRejected, JsmAuthError) as exc:
                # The note is there, which is what agents need; the label is a filter.
                logger.warning("%s: label %s refused by JSM: %s", jsm_key, HUMAN_CONTACT_LABEL, exc)
                return VIA_WITHOUT_LABEL
        return VIA

    def _already_posted(self, jsm_key: str, marker: str, public: bool) -> bool:
        """Whether an earlier attempt, whose answer was lost, already posted this message."""
        comments = self.client.public_comments(jsm_key) if public else self.client.internal_comments(jsm_key)
        return any(marker in str(c.get("body") or "") for c in comments)

    def _post_reply(self, message: ThreadMessage, jsm_key: str) -> None:
        files: list[tuple[str, str, bytes]] = []
        notes: list[str] = []
        for attachment in message.attachments:
            stored = self.attachments.for_ticket(attachment, message.conversation_id)
            data: Optional[bytes] = None
            if stored is not None:
                try:
                    data = self.attachments.read(stored)
                except OSError as exc:
                    logger.warning("attachment %s unreadable: %s", stored.id, exc.__class__.__name__)
            else:
                logger.warning(
                    "%s: attachment %s is not a stored file of this conversation; skipped",
                    message.ticket_key,
                    attachment_id_of(attachment) or "(no id)",
                )
            if stored is None or data is None:
                notes.append(f"El adjunto «{attachment.name}» ya no estaba disponible en el asistente.")
                continue
            files.append((attachment.name, stored.content_type, data))
        body = reply_body(message, notes)
        if files:
            temporary = self.client.attach_temporary_files(files)
            self.client.comment_with_attachments(jsm_key, temporary, body, public=True)
        else:
            self.client.add_comment(jsm_key, body, public=True)
