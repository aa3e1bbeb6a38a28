"""The web relay (bot/channels/web_push.py) on a real Sanic + Socket.IO server, with Rasa's real agent.

The socket.io channel is built as Rasa builds it (``from_credentials`` with
the settings in the environment), served on loopback by Sanic with the
trained model's agent in ``app.ctx.agent``; customers are python-socketio
clients that open signed sessions as the widget does. Messages are recorded
in a real ticket thread (SQLite in tmp_path) and must reach the connected
customer once, in order, be noted in the conversation's tracker and marked
delivered; an offline customer gets them on reconnect; a forged session
gets nothing; a broken database never stops the relay.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest
import socketio
from rasa.core.agent import Agent
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.events import ActiveLoop, BotUttered
from sanic import Sanic
from sqlalchemy import text

from bot.catalog import get_catalog
from bot.channels.guarded import GuardedSocketIOInput
from bot.channels.web_push import NOT_ACKNOWLEDGED, VIA, TrackerLog, WebPushRelay, payload_of
from bot.channels.web_session import SessionSigner
from bot.dialogue import notices
from bot.thread import ThreadMessage, TicketRef, TicketThread, Update
from bot.thread.model import COMMENT, DELIVERED, PENDING, STATUS
from bot.thread.table import ThreadRow
from tests.conftest import free_port

pytestmark = pytest.mark.servers  # a real Sanic + Socket.IO server with the trained model's agent

SECRET = "clave-de-sesiones-de-prueba"
WAIT = 20.0


@pytest.fixture(scope="module")
def agent(model_path: Path) -> Agent:
    """Rasa's agent for the trained model, with its in-memory tracker and lock stores."""
    return Agent.load(str(model_path))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'tickets.db'}"
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TICKETS_DB_URL", url)
    monkeypatch.setenv("WEB_SESSION_SECRET", SECRET)
    monkeypatch.setenv("WEB_PUSH_SECONDS", "0.2")
    return url


def ticket_for(conversation_id: str, key: str = "ECO-000123", request_type: str = "Pago en línea") -> TicketRef:
    return TicketRef(key, conversation_id, "socketio", "pago_en_linea", request_type)


def comment(ticket: TicketRef, body: str, author: str = "Laura (soporte)") -> Update:
    return Update(ticket.key, f"local:{uuid.uuid4()}", COMMENT, body, author=author)


async def _ignore(message: UserMessage) -> None:
    return None


@asynccontextmanager
async def serving(agent: Agent) -> AsyncIterator[tuple[str, GuardedSocketIOInput]]:
    """The socket.io channel on a real Sanic server, started and stopped like Rasa's."""
    channel = GuardedSocketIOInput.from_credentials(
        {"user_message_evt": "user_uttered", "bot_message_evt": "bot_uttered", "session_persistence": True}
    )
    app = Sanic(f"relay_{uuid.uuid4().hex[:8]}")
    app.blueprint(channel.blueprint(_ignore), url_prefix="/webhooks/socketio")
    app.ctx.agent = agent
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}", channel
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()


class Customer:
    """A widget: opens its signed session, keeps what the help desk sends, acknowledges it."""

    def __init__(self, url: str, session: str, *, ack_delay: float = 0.0) -> None:
        self.url = url
        self.session = session
        self.ack_delay = ack_delay
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: list[dict[str, Any]] = []
        self.confirmed = asyncio.Event()
        self.refused = asyncio.Event()
        self.client.on("session_confirm", self._confirmed)
        self.client.on("session_refused", self._refused)
        self.client.on("bot_uttered", self._uttered)

    async def _confirmed(self, _session: Any) -> None:
        self.confirmed.set()

    async def _refused(self, _data: Any) -> None:
        self.refused.set()

    async def _uttered(self, data: dict[str, Any]) -> dict[str, Any]:
        self.received.append(data)
        if self.ack_delay:
            await asyncio.sleep(self.ack_delay)
        return {"recibido": True}

    async def open(self) -> "Customer":
        # Long polling: the websocket transport of this python-engineio needs a newer aiohttp.
        await self.client.connect(self.url, socketio_path="/socket.io", transports=["polling"], wait_timeout=20)
        await self.client.emit("session_request", {"session_id": self.session})
        return self

    async def close(self) -> None:
        await self.client.disconnect()

    def followups(self) -> list[int]:
        return [int(d["metadata"]["followup"]["message_id"]) for d in self.received if d.get("metadata")]

    async def wait_for(self, count: int) -> None:
        for _ in range(int(WAIT / 0.05)):
            if len(self.followups()) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"esperaba {count} mensajes, llegaron {self.followups()}")


async def until(check: Any, what: str) -> None:
    for _ in range(int(WAIT / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no ocurrió: {what}")


def signed() -> tuple[str, str]:
    token = SessionSigner(SECRET).issue()
    return token, token.split(".")[0]


def by_id(thread: TicketThread, key: str) -> dict[int, ThreadMessage]:
    return {m.id: m for m in thread.messages(key)}


def test_a_connected_customer_gets_an_agent_reply_live_once_noted_in_the_conversation(env: str, agent: Agent) -> None:
    token, conversation_id = signed()
    thread = TicketThread(env)
    ticket = ticket_for(conversation_id)

    async def scenario() -> tuple[Customer, ThreadMessage]:
        async with serving(agent) as (url, _channel):
            customer = await Customer(url, token).open()
            await asyncio.wait_for(customer.confirmed.wait(), WAIT)
            news = comment(ticket, "¿Nos envías el archivo que falla? Tarjeta 4111 1111 1111 1111")
            [message] = thread.record(news, ticket)
            await customer.wait_for(1)
            await until(lambda: by_id(thread, ticket.key)[message.id].delivery_status == DELIVERED, "entregado")
            await asyncio.sleep(0.6)  # three more ticks: nothing is sent twice
            await customer.close()
            return customer, message

    customer, message = asyncio.run(scenario())
    [data] = customer.received
    assert data["metadata"]["followup"] == {"ticket": "ECO-000123", "kind": COMMENT, "message_id": message.id}
    assert "ECO-000123 · Pago en línea" in data["text"] and "Laura (soporte) escribió" in data["text"]
    assert "4111" not in data["text"]  # card numbers masked before they leave
    stored = by_id(thread, ticket.key)[message.id]
    assert stored.via == VIA and stored.attempts == 1

    tracker = asyncio.run(agent.tracker_store.retrieve(conversation_id))
    assert tracker is not None
    noted = [e for e in tracker.events if isinstance(e, BotUttered) and (e.metadata or {}).get("followup")]
    assert [e.metadata["followup"]["message_id"] for e in noted] == [message.id]
    assert noted[0].text == data["text"]
    # The conversation now waits for the customer's answer to the agent (bot/dialogue/notices.py).
    assert any(isinstance(e, ActiveLoop) and e.name == notices.REPLY_FORM for e in tracker.events)
    slots = [e.as_dict() for e in tracker.events if e.as_dict().get("event") == "slot"]
    assert any(s["name"] == notices.REPLY_TICKET and s["value"] == "ECO-000123" for s in slots)


def test_an_offline_customer_gets_everything_on_reconnect_in_order_once(env: str, agent: Agent) -> None:
    token, conversation_id = signed()
    thread = TicketThread(env)
    first, second = ticket_for(conversation_id), ticket_for(conversation_id, "ECO-000124", "Conciliación")

    async def scenario() -> tuple[list[int], list[int], list[int]]:
        async with serving(agent) as (url, _channel):
            before = await Customer(url, token).open()
            await asyncio.wait_for(before.confirmed.wait(), WAIT)
            await before.close()
            recorded = [
                *thread.record(comment(first, "Primera respuesta"), first),
                *thread.record(comment(second, "Respuesta del otro ticket"), second),
                *thread.record(Update(first.key, "jsm-status:1", STATUS, "En curso"), first),
            ]
            await asyncio.sleep(0.8)  # several ticks with nobody connected
            assert {m.delivery_status for m in thread.for_conversation(conversation_id)} == {PENDING}
            back = await Customer(url, token).open()
            await back.wait_for(3)
            await until(
                lambda: {m.delivery_status for m in thread.for_conversation(conversation_id)} == {DELIVERED},
                "todo entregado",
            )
            later = await Customer(url, token).open()  # another tab, later: nothing is sent again
            await asyncio.wait_for(later.confirmed.wait(), WAIT)
            await asyncio.sleep(0.6)
            for customer in (back, later):
                await customer.close()
            return [m.id for m in recorded], back.followups(), later.followups()

    recorded, received, again = asyncio.run(scenario())
    assert received == recorded  # each once, in the order the help desk wrote them
    assert again == [] and recorded == sorted(recorded)


def test_a_forged_session_receives_nothing_and_the_message_waits(env: str, agent: Agent) -> None:
    _token, conversation_id = signed()
    thread = TicketThread(env)
    ticket = ticket_for(conversation_id)
    forged = f"{conversation_id}.{'A' * 43}"

    async def scenario() -> Customer:
        async with serving(agent) as (url, _channel):
            intruder = await Customer(url, forged).open()
            await asyncio.wait_for(intruder.refused.wait(), WAIT)
            await intruder.client.emit("user_uttered", {"message": "hola", "session_id": forged})
            thread.record(comment(ticket, "Solo para el cliente"), ticket)
            await asyncio.sleep(0.8)
            await intruder.close()
            return intruder

    intruder = asyncio.run(scenario())
    assert intruder.received == [] or all(not d.get("metadata") for d in intruder.received)
    assert [m.delivery_status for m in thread.messages(ticket.key)] == [PENDING]


def test_a_widget_that_does_not_acknowledge_leaves_the_message_pending(env: str, agent: Agent) -> None:
    token, conversation_id = signed()
    thread = TicketThread(env)
    ticket = ticket_for(conversation_id)

    async def scenario() -> None:
        async with serving(agent) as (url, channel):
            assert channel.relay is not None
            channel.relay.ack_seconds = 0.3
            slow = await Customer(url, token, ack_delay=1.5).open()
            await asyncio.wait_for(slow.confirmed.wait(), WAIT)
            thread.record(comment(ticket, "¿Sigue fallando?"), ticket)
            await until(lambda: thread.messages(ticket.key)[0].last_error == NOT_ACKNOWLEDGED, "reintento")
            await slow.close()

    asyncio.run(scenario())
    [message] = thread.messages(ticket.key)
    assert message.delivery_status == PENDING and message.delivered_at is None
    assert message.next_attempt_at is not None and message.next_attempt_at > message.created_at
    tracker = asyncio.run(agent.tracker_store.retrieve(conversation_id))
    assert tracker is None or not any(isinstance(e, BotUttered) for e in tracker.events)  # not noted either


def test_a_broken_database_is_logged_and_the_relay_goes_on(
    env: str, agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    token, conversation_id = signed()
    thread = TicketThread(env)
    ticket = ticket_for(conversation_id)
    thread.messages(ticket.key)  # the tables exist

    async def scenario() -> Customer:
        async with serving(agent) as (url, channel):
            customer = await Customer(url, token).open()
            thread.record(comment(ticket, "Antes del fallo"), ticket)
            await customer.wait_for(1)  # the relay has used its tables (they are created on first use)
            with thread.tables.engine.begin() as connection:
                connection.execute(text(f"DROP TABLE {ThreadRow.__tablename__}"))
            with caplog.at_level(logging.WARNING, logger="bot.channels.web_push"):
                await until(lambda: "ticket thread is unavailable" in caplog.text, "el error registrado")
            assert channel.relay is not None and channel.relay._ticker is not None
            assert not channel.relay._ticker.done()  # still ticking
            again = TicketThread(env)  # the tables come back (created on first use)
            again.record(comment(ticket, "Ya volvió la base de datos"), ticket)
            await customer.wait_for(2)
            assert customer.client.connected
            await customer.close()
            return customer

    customer = asyncio.run(scenario())
    assert "Ya volvió la base de datos" in customer.received[-1]["text"]


def test_the_tracker_log_notes_a_message_once(env: str, agent: Agent) -> None:
    """A message sent again after a lost acknowledgement is not noted twice in the conversation."""
    _token, conversation_id = signed()
    thread = TicketThread(env)
    ticket = ticket_for(conversation_id)
    [message] = thread.record(Update(ticket.key, "jsm-status:9", STATUS, "Esperando por el cliente"), ticket)
    waiting = get_catalog().waiting_statuses
    notice = notices.render(message, waiting)
    log = TrackerLog(lambda: agent, waiting)

    async def twice() -> tuple[bool, bool]:
        return await log.record(message, notice), await log.record(message, notice)

    assert asyncio.run(twice()) == (True, False)
    tracker = asyncio.run(agent.tracker_store.retrieve(conversation_id))
    assert tracker is not None
    noted = [e for e in tracker.events if isinstance(e, BotUttered)]
    assert [e.text for e in noted] == [notice.text]
    assert "El equipo de soporte espera tu respuesta" in notice.text
    assert payload_of(message, notice)["metadata"]["followup"]["kind"] == STATUS


def test_no_agent_yet_means_not_noted(env: str) -> None:
    _token, conversation_id = signed()
    thread = TicketThread(env)
    ticket = ticket_for(conversation_id)
    [message] = thread.record(comment(ticket, "Hola"), ticket)
    log = TrackerLog(lambda: None, ())
    with pytest.raises(RuntimeError, match="aún no cargó su modelo"):
        asyncio.run(log.record(message, notices.render(message)))


@pytest.fixture
def relay(env: str) -> Iterator[WebPushRelay]:
    yield WebPushRelay(TicketThread(env), (), interval=0.2)


def test_a_socket_counts_for_its_latest_conversation_only(relay: WebPushRelay) -> None:
    relay.connected("sid-1", "web:uno", flush=False)
    relay.connected("sid-1", "web:dos", flush=False)
    relay.connected("sid-2", "web:dos", flush=False)
    assert relay.connected_conversations() == ["web:dos"]
    relay.disconnected("sid-1")
    assert relay.connected_conversations() == ["web:dos"]
    relay.disconnected("sid-2")
    assert relay.connected_conversations() == []
