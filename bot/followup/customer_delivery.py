"""Delivering the help desk's messages to WhatsApp and Teams customers: once, in order per ticket.

The thread (bot/thread) hands a worker only the oldest waiting message of
each ticket, and never one message to two workers; this module words it
(bot/dialogue/notices.py), sends it on the conversation's own channel,
records it in the Rasa conversation (so the transcript shows it and the
customer's next message is read as an answer), and only then marks it
delivered, which is what lets the ticket's next message be claimed: the
customer, and the conversation, see them in the agent's order.

A send that failed for now (429, 5xx, no network) is retried later with
backoff; one that cannot succeed (no template outside WhatsApp's window, no
Teams conversation kept, a channel that cannot be written to first) is
marked failed with the Spanish reason the operator reads in the thread.
While the Rasa server does not answer (a restart, a deploy, an outage) a
message waits the same way, unsent: delivered then, it could not be recorded
in the conversation, and the customer's answer to it (a rating, a reply for
the agent) would be read as a new request. Recording after the send is best
effort: its failure is logged, and the customer, who already has the
message, never gets it twice.

Web (socket.io) messages are not claimed here: the web relay in the Rasa
process delivers them to the open widget.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Optional

from bot.channels.push import PushFailed, Sender, Unconfigured
from bot.channels.rasa_conversation import ConversationError, RasaConversations, RasaUnavailable
from bot.dialogue.notices import Notice, render, tracker_events
from bot.privacy import mask_sender
from bot.settings.followup import FollowupSettings
from bot.thread import ThreadError, ThreadMessage, TicketThread
from bot.thread.model import TO_CUSTOMER

logger = logging.getLogger(__name__)

WEB_CHANNEL = "socketio"
# Channels whose customers can only be answered inside their own request:
# nothing can be sent to them later, so their messages are marked failed at once.
UNREACHABLE = {
    "rest": (
        "El canal REST solo responde a las peticiones del cliente: no permite enviarle mensajes después. "
        "El cliente verá las novedades al consultar el estado de su solicitud; si hace falta, contáctelo por "
        "otro medio."
    ),
    "callback": "El canal callback no permite enviar mensajes por iniciativa del asistente.",
    "cmdline": "La línea de comandos de Rasa no permite enviar mensajes por iniciativa del asistente.",
    "desconocido": "No se sabe por qué canal escribió el cliente: no hay dónde enviarle el mensaje.",
}
CONCURRENCY = 64  # tickets delivered at once in one round (each ticket's messages stay in order)
MARK_ATTEMPTS = 3
MARK_PAUSE_SECONDS = 1.0


def now() -> datetime:
    return datetime.now(timezone.utc)


def retry_delay(attempts: int, settings: FollowupSettings, retry_after: Optional[float] = None) -> float:
    """Exponential backoff with jitter, never shorter than what the provider asked for (Retry-After)."""
    delay = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** max(0, attempts - 1))
    delay *= random.uniform(0.75, 1.0)  # spread retries of messages that failed together
    if retry_after is not None:
        delay = max(delay, min(retry_after, 86400.0))
    return delay


class CustomerDelivery:
    """One follow-up worker's side of the thread: help-desk messages to WhatsApp and Teams customers."""

    def __init__(
        self,
        thread: TicketThread,
        senders: Mapping[str, Sender],
        conversations: RasaConversations,
        waiting_statuses: Iterable[str],
        *,
        settings: Optional[FollowupSettings] = None,
        concurrency: int = CONCURRENCY,
        clock: Callable[[], datetime] = now,
    ) -> None:
        if WEB_CHANNEL in senders:
            raise ValueError("web messages are delivered by the web relay in the Rasa process, not by this worker")
        self.thread = thread
        self.senders = dict(senders)
        self.conversations = conversations
        self.waiting_statuses = tuple(waiting_statuses)
        self.settings = settings or FollowupSettings()
        self.concurrency = max(1, concurrency)
        self.clock = clock
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels whose messages this worker claims: its senders', and those nobody can push to."""
        return tuple(dict.fromkeys([*self.senders, *UNREACHABLE]))

    def run_once(self, worker_id: str) -> int:
        """One round, for the worker's synchronous loop (bot/followup/worker.py): how many messages were handled.

        The round runs on this object's own event loop, kept between rounds
        so the providers' HTTP connections stay open; ``close`` ends it.
        """
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self.run_round(worker_id))

    def close(self) -> None:
        """Close the senders' and Rasa's HTTP sessions and the loop (the worker is stopping)."""
        if self._loop is None or self._loop.is_closed():
            return
        self._loop.run_until_complete(self.aclose())
        self._loop.close()

    async def run_round(self, worker_id: str) -> int:
        """One round: claim due messages and deliver them; how many were handled."""
        try:
            messages = await asyncio.to_thread(
                self.thread.claim_due,
                TO_CUSTOMER,
                worker_id,
                channels=self.channels,
                limit=self.settings.batch,
                lease_seconds=self.settings.lease_seconds,
            )
        except ThreadError as exc:
            logger.error("Follow-up: the thread is unavailable: %s", exc)
            return 0
        gate = asyncio.Semaphore(self.concurrency)
        # One customer's messages (of several tickets) one after the other: each reads the loop the last left.
        conversations: dict[str, asyncio.Lock] = {}

        async def one(message: ThreadMessage) -> None:
            async with conversations.setdefault(message.conversation_id, asyncio.Lock()), gate:
                await self.deliver(message, worker_id)

        await asyncio.gather(*(one(message) for message in messages))
        return len(messages)

    async def deliver(self, message: ThreadMessage, worker_id: str) -> None:
        """Send one claimed message and mark it; never raises (a failure is recorded on the message)."""
        if message.channel in UNREACHABLE or message.channel not in self.senders:
            reason = UNREACHABLE.get(message.channel, f"El canal «{message.channel}» no admite mensajes salientes.")
            await self._finish(self.thread.mark_failed, message, worker_id, reason)
            return
        try:
            notice = render(message, self.waiting_statuses)
        except ValueError:
            reason = f"Un mensaje de tipo «{message.kind}» no tiene aviso para el cliente."
            await self._finish(self.thread.mark_failed, message, worker_id, reason)
            return
        sender = self.senders[message.channel]
        # A channel without its secrets sends nothing: its own reason is the one the operator needs.
        if not isinstance(sender, Unconfigured) and not await self._rasa_answers(message, worker_id):
            return
        try:
            via = await sender.send(message.conversation_id, notice)
        except PushFailed as failure:
            await self._failed(message, worker_id, failure)
            return
        except Exception as exc:  # noqa: BLE001 - one message's bug must not stop the others
            logger.exception("Follow-up: unexpected error sending message %s", message.id)
            await self._failed(
                message, worker_id, PushFailed(f"Error inesperado: {type(exc).__name__}", temporary=True)
            )
            return
        await self._record(message, notice)
        await self._finish(self.thread.mark_delivered, message, worker_id, via)
        logger.info(
            "Follow-up: %s of %s delivered to %s by %s",
            message.kind,
            message.ticket_key,
            mask_sender(message.conversation_id),
            via,
        )

    async def _failed(self, message: ThreadMessage, worker_id: str, failure: PushFailed) -> None:
        if failure.temporary and message.attempts < self.settings.max_attempts:
            wait = retry_delay(message.attempts, self.settings, failure.retry_after)
            at = self.clock() + timedelta(seconds=wait)
            logger.warning(
                "Follow-up: message %s of %s not sent (%s); retry in %.0fs",
                message.id,
                message.ticket_key,
                failure.reason,
                wait,
            )
            await self._finish(self.thread.mark_retry, message, worker_id, failure.reason, at)
            return
        reason = failure.reason
        if failure.temporary:
            reason = f"{reason} (sin éxito tras {message.attempts} intentos)"
        logger.error("Follow-up: message %s of %s failed: %s", message.id, message.ticket_key, reason)
        await self._finish(self.thread.mark_failed, message, worker_id, reason)

    async def _rasa_answers(self, message: ThreadMessage, worker_id: str) -> bool:
        """Whether Rasa can record the message now; if not, it waits like a failed send (nothing goes out)."""
        try:
            await self.conversations.active_loop(message.conversation_id)
        except RasaUnavailable as exc:
            reason = f"{exc}. El mensaje espera a que Rasa responda, para que la conversación lo registre."
            await self._failed(message, worker_id, PushFailed(reason, temporary=True))
            return False
        except ConversationError:
            pass  # Rasa answers but refuses this conversation: the message goes; _record logs why it is not kept
        return True

    async def _record(self, message: ThreadMessage, notice: Notice) -> None:
        """Add the delivered notice (and the loop it opens) to the customer's Rasa conversation."""
        conversation_id = message.conversation_id
        try:
            loop = await self.conversations.active_loop(conversation_id)
            events = tracker_events(message, notice, loop, self.waiting_statuses)
            await self.conversations.append(conversation_id, events)
        except ConversationError as exc:
            logger.error("Follow-up: message %s delivered but not recorded in the conversation: %s", message.id, exc)
        except Exception:  # noqa: BLE001 - the customer has the message: never a reason to send it again
            logger.exception("Follow-up: message %s delivered but not recorded in the conversation", message.id)

    async def _finish(self, mark: Callable[..., bool], message: ThreadMessage, worker_id: str, *args: Any) -> None:
        """Mark the message; a few tries, since an unmarked sent message would be sent again after its lease."""
        for attempt in range(1, MARK_ATTEMPTS + 1):
            try:
                done = await asyncio.to_thread(mark, message, worker_id, *args)
                break
            except ThreadError as exc:
                logger.error("Follow-up: could not mark message %s (try %d): %s", message.id, attempt, exc)
                if attempt == MARK_ATTEMPTS:
                    return
                await asyncio.sleep(MARK_PAUSE_SECONDS)
        if not done:
            logger.warning("Follow-up: message %s was no longer ours to mark (lease expired?)", message.id)

    async def aclose(self) -> None:
        """Close the senders' and Rasa's HTTP sessions, from a running loop."""
        for sender in self.senders.values():
            await sender.close()
        await self.conversations.close()
