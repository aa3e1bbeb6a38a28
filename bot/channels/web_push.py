"""The help desk's messages for web customers, pushed over the Socket.IO connections of this Rasa server.

A web customer's socket is held by one Rasa process (there may be several
sharing one database), so the messages of a web conversation (an agent's
comment, a status change, the CSAT question: thread messages ``TO_CUSTOMER``
on channel ``socketio``) leave from the process the customer is connected
to. The relay knows which conversations have a socket here, claims what
waits for each of them (the thread's claim hands each message to one
server, in order per ticket), sends it as the widget's usual ``bot_uttered``
event with ``metadata.followup`` so the widget shows it as the help desk's,
notes it in the conversation's tracker, and marks it delivered.

Delivered means acknowledged: the widget answers each relayed message once
it has stored it. A socket that went away, or a widget that does not answer
in time, leaves the message pending, and it is sent again later (the widget
skips an id it already shows). A customer connected nowhere simply finds
everything, in order, when the widget reconnects with its session: the
reconnection flushes at once. Database trouble is logged and retried at
the next tick; it never stops the server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional

from rasa.core.agent import Agent
from rasa.shared.core.events import BotUttered, Event
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, Sanic
from socketio import AsyncServer

from bot.dialogue import notices
from bot.dialogue.notices import Notice
from bot.thread import ThreadError, ThreadMessage, TicketThread

logger = logging.getLogger(__name__)

VIA = "socket"
# The widget answers as soon as it stored the message; past this, it is taken as not received.
ACK_SECONDS = 10.0
# Waiting for the conversation's lock (a turn of the customer's may be running) and writing the tracker.
RECORD_SECONDS = 15.0
# Longer than the acknowledgement and the tracker together: no other server takes a message being sent.
LEASE_SECONDS = 60.0
# Claims in a row for one conversation (each hands out the next message of every ticket).
MAX_ROUNDS = 50
MAX_RETRY_SECONDS = 300.0

NOT_CONNECTED = "El cliente ya no estaba conectado al chat web; se le enviará cuando vuelva."
NOT_ACKNOWLEDGED = "El chat web del cliente no confirmó la recepción del mensaje."
NOT_RECORDED = "El mensaje se mostró en el chat web, pero no se pudo anotar en la conversación: {error}"
NOT_RENDERED = "No se puede mostrar al cliente un mensaje de tipo «{kind}»."


def worker_name() -> str:
    """This process's name in the thread's claims: which server holds a message, for an operator."""
    return f"web-push:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"[-100:]


def payload_of(message: ThreadMessage, notice: Notice) -> dict[str, Any]:
    """The ``bot_uttered`` data: what Rasa's socket.io output sends, plus who speaks (``metadata.followup``)."""
    data: dict[str, Any] = {
        "text": notice.text,
        "metadata": {"followup": {"ticket": message.ticket_key, "kind": message.kind, "message_id": message.id}},
    }
    if notice.buttons:
        data["quick_replies"] = [
            {"content_type": "text", "title": b.title, "payload": b.payload} for b in notice.buttons
        ]
    return data


def recorded(tracker: DialogueStateTracker, message_id: int) -> bool:
    """Whether the conversation already notes this message (a retry after the tracker was written)."""
    for event in reversed(tracker.events):
        if isinstance(event, BotUttered):
            followup = (event.metadata or {}).get("followup")
            if isinstance(followup, dict) and followup.get("message_id") == message_id:
                return True
    return False


class TrackerLog:
    """Notes a relayed message in the customer's conversation, as Rasa's ``POST /conversations/{id}/tracker/events``.

    Same steps as that endpoint (the conversation's lock, the tracker with
    its initial session, the events applied, the tracker saved), inside this
    process, so the next thing the customer writes is read as an answer to
    the agent (``notices.tracker_events``). Idempotent per message id: a
    message sent again after a lost acknowledgement is noted once.
    """

    def __init__(self, agent: Callable[[], Optional[Agent]], waiting_statuses: Iterable[str]) -> None:
        """``agent``: the one the server has now (Rasa replaces it when a new model is loaded)."""
        self._agent = agent
        self.waiting_statuses = tuple(waiting_statuses)

    @classmethod
    def of_app(cls, app: Sanic, waiting_statuses: Iterable[str]) -> "TrackerLog":
        return cls(lambda: getattr(app.ctx, "agent", None), waiting_statuses)

    async def record(self, message: ThreadMessage, notice: Notice) -> bool:
        """True when the events were added, False when the conversation already had them."""
        agent = self._agent()
        if agent is None or not agent.is_ready() or agent.processor is None:
            raise RuntimeError("el asistente aún no cargó su modelo")
        conversation_id = message.conversation_id
        async with agent.lock_store.lock(conversation_id):
            tracker = await agent.processor.fetch_tracker_with_initial_session(conversation_id)
            if recorded(tracker, message.id):
                return False
            found = notices.tracker_events(message, notice, tracker.active_loop_name, self.waiting_statuses)
            for parameters in found:
                event = Event.from_parameters(parameters)
                if event is not None:
                    tracker.update(event, agent.domain)
            await agent.tracker_store.save(tracker)
        return True


class WebPushRelay:
    """Delivers the help desk's messages to the web customers connected to this server."""

    def __init__(
        self,
        thread: TicketThread,
        waiting_statuses: Iterable[str],
        *,
        interval: float = 1.0,
        ack_seconds: float = ACK_SECONDS,
        worker: Optional[str] = None,
    ) -> None:
        self.thread = thread
        self.waiting_statuses = tuple(waiting_statuses)
        self.interval = interval
        self.ack_seconds = ack_seconds
        self.worker = worker or worker_name()
        self._sio: Optional[AsyncServer] = None
        self._namespace = "/"
        self._event = "bot_uttered"
        self._log: Optional[TrackerLog] = None
        self._sockets: dict[str, set[str]] = {}  # conversation id -> its sockets here
        self._conversations: dict[str, str] = {}  # socket -> the conversation it opened last
        self._acks: dict[str, set[asyncio.Future[Optional[bool]]]] = {}  # socket -> acknowledgements awaited
        self._busy: dict[str, asyncio.Task[None]] = {}  # conversation id -> its delivery under way
        self._again: set[str] = set()
        self._ticker: Optional[asyncio.Task[None]] = None

    # ----------------------------------------------------------- connections
    def connected(self, sid: str, conversation_id: str, *, flush: bool = True) -> None:
        """A socket opened (or reopened) a verified conversation: what waits for it goes out at once.

        A socket counts for its latest conversation only (the widget opens
        one per socket), so what this server polls stays bounded by its
        sockets, whatever sessions a client collects.
        """
        if self._conversations.get(sid) != conversation_id:
            self._forget(sid)
            self._sockets.setdefault(conversation_id, set()).add(sid)
            self._conversations[sid] = conversation_id
        if flush:
            self.flush(conversation_id)

    def disconnected(self, sid: str) -> None:
        self._forget(sid)
        for waiting in self._acks.pop(sid, set()):
            if not waiting.done():
                waiting.set_result(None)  # gone: the message waits for the next connection

    def _forget(self, sid: str) -> None:
        conversation_id = self._conversations.pop(sid, None)
        if conversation_id is None:
            return
        sockets = self._sockets.get(conversation_id, set())
        sockets.discard(sid)
        if not sockets:
            self._sockets.pop(conversation_id, None)

    def connected_conversations(self) -> list[str]:
        return list(self._sockets)

    # -------------------------------------------------------------- lifecycle
    def attach(self, sio: AsyncServer, namespace: str, event: str, hook: Blueprint) -> None:
        """Send through this channel's server, and run while the Sanic server that serves ``hook`` runs."""
        self._sio, self._namespace, self._event = sio, namespace, event

        async def start(app: Sanic, _loop: Any) -> None:
            self.start(TrackerLog.of_app(app, self.waiting_statuses))

        async def stop(_app: Sanic, _loop: Any) -> None:
            await self.stop()

        hook.listener("after_server_start")(start)
        hook.listener("before_server_stop")(stop)

    def start(self, log: TrackerLog) -> None:
        self._log = log
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())
            logger.info("web push: delivering help-desk messages every %.1fs as %s", self.interval, self.worker)

    async def stop(self) -> None:
        tasks = [t for t in [self._ticker, *self._busy.values()] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._ticker = None
        self._busy.clear()
        self._again.clear()

    async def _tick_forever(self) -> None:
        while True:
            for conversation_id in self.connected_conversations():
                self.flush(conversation_id)
            await asyncio.sleep(self.interval)

    # --------------------------------------------------------------- delivery
    def flush(self, conversation_id: str) -> None:
        """Deliver what waits for a conversation, unless a delivery for it is under way (it goes on after)."""
        if self._log is None or self._sio is None:
            return  # not serving yet: the first tick does it
        running = self._busy.get(conversation_id)
        if running is not None and not running.done():
            self._again.add(conversation_id)
            return
        task = asyncio.get_running_loop().create_task(self._deliver_all(conversation_id))
        self._busy[conversation_id] = task
        task.add_done_callback(lambda _task: self._finished(conversation_id, _task))

    def _finished(self, conversation_id: str, task: asyncio.Task[None]) -> None:
        if self._busy.get(conversation_id) is task:
            del self._busy[conversation_id]
        if conversation_id in self._again and not task.cancelled():
            self._again.discard(conversation_id)
            if conversation_id in self._sockets:
                self.flush(conversation_id)

    async def _deliver_all(self, conversation_id: str) -> None:
        if self._log is None:
            return
        log = self._log
        try:
            for _ in range(MAX_ROUNDS):
                if conversation_id not in self._sockets:
                    return
                claimed = await asyncio.to_thread(
                    self.thread.claim_conversation, conversation_id, self.worker, LEASE_SECONDS
                )
                if not claimed:
                    return
                for message in claimed:
                    await self.deliver(message, log)
        except ThreadError as exc:
            logger.warning("web push: the ticket thread is unavailable, retrying next tick: %s", exc)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug or a library failure must not stop the relay of the other conversations
            logger.exception("web push: unexpected error delivering to conversation %s", conversation_id)

    async def deliver(self, message: ThreadMessage, log: TrackerLog) -> None:
        """Send one claimed message, note it in the conversation, and mark it."""
        try:
            notice = notices.render(message, self.waiting_statuses)
        except ValueError:
            await self._mark(self.thread.mark_failed, message, self.worker, NOT_RENDERED.format(kind=message.kind))
            return
        acknowledged = await self._send(message.conversation_id, payload_of(message, notice))
        if acknowledged is None:
            await self._mark(self.thread.mark_retry, message, self.worker, NOT_CONNECTED, _now())
            return
        if not acknowledged:
            await self._mark(self.thread.mark_retry, message, self.worker, NOT_ACKNOWLEDGED, _retry_at(message))
            return
        try:
            await asyncio.wait_for(log.record(message, notice), RECORD_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the tracker store or the lock store failed: shown, not yet noted
            error = NOT_RECORDED.format(error=str(exc) or exc.__class__.__name__)
            logger.warning("web push: message %s shown but not noted in its conversation: %s", message.id, exc)
            await self._mark(self.thread.mark_retry, message, self.worker, error, _retry_at(message))
            return
        if await self._mark(self.thread.mark_delivered, message, self.worker, VIA):
            logger.info("web push: message %s of %s delivered", message.id, message.ticket_key)

    async def _mark(self, mark: Callable[..., bool], message: ThreadMessage, *args: Any) -> bool:
        try:
            done = await asyncio.to_thread(mark, message, *args)
        except ThreadError as exc:
            logger.warning("web push: could not mark message %s (its lease will run out): %s", message.id, exc)
            return False
        if not done:
            logger.warning("web push: message %s was no longer ours to mark (lease ran out)", message.id)
        return done

    async def _send(self, conversation_id: str, data: dict[str, Any]) -> Optional[bool]:
        """True when a socket of the conversation acknowledged; False when none did in time; None: none left."""
        sids = sorted(self._sockets.get(conversation_id, ()))
        if not sids:
            return None
        answers = await asyncio.gather(*(self._send_one(sid, data) for sid in sids))
        if any(answer is True for answer in answers):
            return True
        return None if all(answer is None for answer in answers) else False

    async def _send_one(self, sid: str, data: dict[str, Any]) -> Optional[bool]:
        if self._sio is None or sid not in self._conversations:
            return None  # disconnected since the list was read
        answer: asyncio.Future[Optional[bool]] = asyncio.get_running_loop().create_future()
        waiting = self._acks.setdefault(sid, set())
        waiting.add(answer)

        def acknowledged(*_args: Any) -> None:
            if not answer.done():
                answer.set_result(True)

        try:
            await self._sio.emit(self._event, data, room=sid, namespace=self._namespace, callback=acknowledged)
            return await asyncio.wait_for(answer, self.ack_seconds)
        except asyncio.TimeoutError:
            return False
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the transport failed under the emit
            logger.warning("web push: emit to a socket failed: %s", exc)
            return False
        finally:
            waiting.discard(answer)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _retry_at(message: ThreadMessage) -> datetime:
    """Later each time: a widget that keeps not answering is not sent the message every second."""
    return _now() + timedelta(seconds=min(MAX_RETRY_SECONDS, 5.0 * max(1, message.attempts)))
