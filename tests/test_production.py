"""Production footing, against the real servers on both backends (embedded,
PostgreSQL + Redis): the configured stores are the ones in use, card numbers
never reach storage or logs, access is locked down, hostile input gets a
clear answer or a 4xx (never a 5xx, never a bad ticket), and the assistant
survives its parts failing."""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.launcher import Server, child_env
from bot.transcripts import TrackerReader
from tests.conftest import REST_TOKEN, Chat, RunningAssistant, signed_web_session
from tests.cards import CARD, shows_card
from tests.hostile import HOSTILE_MESSAGES

REST_AUTH = {"Authorization": f"Bearer {REST_TOKEN}"}

pytestmark = pytest.mark.servers

ACTIONS = "servidor de acciones"
RASA = "servidor Rasa"


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def tickets_of(assistant: RunningAssistant, chat: Chat):
    return assistant.store.list(conversation_id=chat.sender)


def raw_tracker_rows(assistant: RunningAssistant, sender: str) -> str:
    engine = create_engine(assistant.settings.tracker_db_url, future=True)
    with engine.connect() as connection:
        rows = connection.execute(text("select data from events where sender_id = :s"), {"s": sender})
        return "\n".join(r[0] or "" for r in rows)


# ------------------------------------------------------------------- stores
def test_the_configured_stores_are_the_ones_in_use(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say("hola")
    log = (assistant.settings.data_dir / "servers.log").read_text(encoding="utf-8", errors="replace")
    assert TrackerReader(assistant.settings.tracker_db_url).events(chat.sender), "the tracker store holds the conversation"
    if assistant.backend == "embebido":
        assert "Lock store: InMemoryLockStore" in log
        assert assistant.settings.tracker_db_url.startswith("sqlite")
    else:
        assert "Lock store: AtomicRedisLockStore" in log
        assert "Tracker store: postgresql" in log
        assert assistant.store.url.startswith("postgresql")


def test_card_numbers_are_masked_before_anything_is_stored(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    opening = chat.text(chat.say(f"el pse no me deja pagar, me rechaza la tarjeta {CARD} al volver al comercio"))
    assert "Pago en línea" in opening, chat.dump()  # the card number does not confuse the NLU
    chat.say("luis@colegio.edu.co")
    chat.say("+57 315 777 8899")
    chat.say("/affirm")
    (ticket,) = tickets_of(assistant, chat)
    assert "[tarjeta oculta]" in ticket.description and not shows_card(ticket.description)
    assert not shows_card(ticket.original_text or "")
    stored = raw_tracker_rows(assistant, chat.sender)
    assert "[tarjeta oculta]" in stored and not shows_card(stored)
    log = (assistant.settings.data_dir / "servers.log").read_text(encoding="utf-8", errors="replace")
    assert CARD not in log and CARD.replace(" ", "") not in log


# ---------------------------------------------------------------- access
def test_rasa_http_api_requires_its_token(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say("hola")
    url = f"{assistant.base_url}/conversations/{chat.sender}/tracker"
    assert http("GET", url)[0] == 401
    assert http("GET", url + "?token=otro")[0] == 401
    status, body, _ = http("GET", url + "?token=token-de-pruebas")
    assert status == 200 and json.loads(body)["sender_id"] == chat.sender


def test_action_server_answers_only_rasa(assistant: RunningAssistant) -> None:
    base = f"http://127.0.0.1:{assistant.settings.actions_port}"
    call = {"next_action": "action_create_ticket", "sender_id": "intruso", "tracker": {"sender_id": "intruso", "slots": {}, "events": [], "latest_message": {}}, "domain": {}}
    assert http("POST", f"{base}/webhook", call)[0] == 401
    assert http("POST", f"{base}/webhook?token=adivinado", call)[0] == 401
    assert http("GET", f"{base}/health")[0] == 200


def test_cors_lists_the_web_chat_origin_not_everyone(assistant: RunningAssistant) -> None:
    url = f"{assistant.base_url}/webhooks/rest/webhook"
    preflight = {"Access-Control-Request-Method": "POST"}
    ours = f"http://localhost:{assistant.settings.web_port}"
    _, _, headers = http("OPTIONS", url, headers={"Origin": ours, **preflight})
    assert headers.get("Access-Control-Allow-Origin") == ours
    _, _, headers = http("OPTIONS", url, headers={"Origin": "https://malicioso.example", **preflight})
    assert headers.get("Access-Control-Allow-Origin") not in ("*", "https://malicioso.example")


# ------------------------------------------------------------ hostile input


def test_hostile_messages_on_rest_get_an_answer_never_a_5xx_or_a_ticket(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    for message in HOSTILE_MESSAGES:
        status, body, _ = http("POST", f"{assistant.base_url}/webhooks/rest/webhook", {"sender": chat.sender, "message": message}, headers=REST_AUTH)
        assert status < 500, (message[:40], status, body[:300])
        if status == 200:
            assert isinstance(json.loads(body), list)
    assert tickets_of(assistant, chat) == []
    # The conversation still works afterwards: whatever state it was left in,
    # the customer can cancel and start again.
    chat.say("cancelar")
    assert "Soporte ecollect" in chat.text(chat.say("hola")), chat.dump()


@pytest.mark.parametrize(
    "raw, content_type",
    [
        (b'{"sender": "x", "message": "hola"', "application/json"),  # truncated JSON
        (b'{"sender": "x", "message": "\xff\xfe\xfd"}', "application/json"),  # invalid UTF-8
        (b"[1, 2, 3]", "application/json"),
        (b'{"sender": "x", "message": 42}', "application/json"),
        (b'{"sender": "x", "message": "' + b"a" * 12_000 + b'"}', "application/json"),
        (b'{"sender": ["x"], "message": "hola"}', "application/json"),
        (b"sender=x&message=hola", "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_requests_get_a_4xx(assistant: RunningAssistant, raw: bytes, content_type: str) -> None:
    status, _, _ = http("POST", f"{assistant.base_url}/webhooks/rest/webhook", raw=raw, headers={"Content-Type": content_type, **REST_AUTH})
    assert 400 <= status < 500


def test_payloads_cannot_skip_the_form_or_set_invalid_values(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say('/choose_request_type{"request_type": "pago_en_linea"}')
    chat.say("/affirm")  # "send" before anything was asked
    chat.say('/inform{"email": "no-es-correo"}')
    chat.say("el pse no deja pagar, el banco no devuelve al comercio desde ayer")
    refused = chat.text(chat.say('/inform{"email": "no-es-correo"}'))
    assert "no es un correo" in refused or "le falta la @" in refused or "No entendí" in refused, chat.dump()
    chat.say("ana@empresa.com")
    short = chat.text(chat.say('/inform{"phone": "123"}'))
    assert "demasiado corto" in short, chat.dump()
    assert tickets_of(assistant, chat) == []
    refused_phone = chat.text(chat.say("+1 212 555 0000"))
    assert "país que no atendemos" in refused_phone, chat.dump()
    assert tickets_of(assistant, chat) == []


def test_every_ticket_in_the_store_is_valid(assistant: RunningAssistant, catalog) -> None:
    """Whatever the other tests threw at the assistant, no invalid field was stored."""
    from bot.validation import check_email, check_phone

    for ticket in assistant.store.list():
        request_type = catalog.request_type(ticket.request_type_id)
        assert request_type is not None and request_type.name == ticket.request_type
        assert check_email(ticket.email).value == ticket.email
        if ticket.phone:
            assert check_phone(ticket.phone, catalog.country_ids).e164 == ticket.phone
        if ticket.item_id:
            assert request_type.field("item").option(ticket.item_id) is not None
        assert ticket.item_id != "eliminacion_actualizacion_cartera"


def test_hostile_messages_on_socketio(assistant: RunningAssistant) -> None:
    import asyncio

    import socketio

    async def run() -> list[str]:
        client = socketio.AsyncClient(reconnection=False)
        replies: list[str] = []
        confirmed = asyncio.Event()
        client.on("session_confirm", lambda _sid: confirmed.set())
        client.on("bot_uttered", lambda data: replies.append(str(data.get("text") or "")))
        # Long polling: the websocket transport of this python-engineio needs a newer aiohttp.
        await client.connect(assistant.base_url, socketio_path="/socket.io", transports=["polling"], wait_timeout=20)
        session = signed_web_session(assistant.settings.web_port)
        await client.emit("session_request", {"session_id": session})
        await asyncio.wait_for(confirmed.wait(), 20)
        await client.emit("user_uttered", ["no", "es", "un", "objeto"])
        await client.emit("user_uttered", {"message": 42, "session_id": session})
        for message in ["", "a" * 12_000, "<script>alert(1)</script>", '/choose_request_type{"request_type": ', "hola"]:
            await client.emit("user_uttered", {"message": message, "session_id": session})
        for _ in range(120):
            if any("Soporte ecollect" in r for r in replies):
                break
            await asyncio.sleep(0.5)
        assert client.connected
        await client.disconnect()
        return replies

    replies = asyncio.run(run())
    assert any("demasiado largo" in r for r in replies), replies
    assert any("Soporte ecollect" in r for r in replies), replies


# -------------------------------------------------------------------- faults
def test_action_server_down_mid_form_is_explained_and_the_form_continues(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say('/choose_request_type{"request_type": "pago_presencial"}')
    assistant.servers.stop_one(ACTIONS)
    try:
        down = chat.text(chat.say("el corresponsal bancario no reporta los pagos de ayer en la tarde"))
        assert "problema técnico" in down, chat.dump()
    finally:
        assistant.servers.start_one(ACTIONS)
    back = chat.text(chat.say("el corresponsal bancario no reporta los pagos de ayer en la tarde"))
    assert "correo electrónico" in back, chat.dump()  # the form went on to the next question


def test_rasa_restarted_mid_form_resumes_from_the_tracker_store(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say('/choose_request_type{"request_type": "capacitaciones"}')
    chat.say("necesitamos una capacitación sobre el módulo de reportes para cinco personas")
    assistant.servers.stop_one(RASA)
    assistant.servers.start_one(RASA)
    resumed = chat.text(chat.say("formacion@empresa.com"))
    assert "teléfono" in resumed, chat.dump()


def _make_ticket_store_unavailable(assistant: RunningAssistant):
    """Returns a function that makes it available again."""
    url = assistant.settings.tickets_db_url
    if url.startswith("sqlite"):
        from pathlib import Path

        path = Path(url.split("///", 1)[1])
        hidden = path.with_suffix(".oculta")
        path.rename(hidden)
        path.mkdir()  # a directory where the database file was: every connection fails

        def restore() -> None:
            path.rmdir()
            hidden.rename(path)

        return restore
    import psycopg2
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    admin = psycopg2.connect(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))

    def restore_pg() -> None:
        with admin.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        admin.close()

    return restore_pg


def test_ticket_store_down_at_confirmation_loses_and_duplicates_nothing(assistant: RunningAssistant) -> None:
    chat = assistant.chat()
    chat.say("no me carga el plano de usuarios, soy rrhh@empresa.com")
    restore = _make_ticket_store_unavailable(assistant)
    try:
        down = chat.text(chat.say("/affirm"))
        assert "No pude registrar tu solicitud" in down, chat.dump()
    finally:
        restore()
    assert tickets_of(assistant, chat) == []
    done = chat.text(chat.say("enviar"))
    assert "Creé tu solicitud" in done, chat.dump()
    assert len(tickets_of(assistant, chat)) == 1


# ------------------------------------------------------------ several servers
SCRIPT = [
    "el pse no me deja pagar, se queda cargando al volver al comercio desde ayer",
    "pagos@colegio.edu.co",
    "3001234567",
    "Colombia",
    "el teléfono está mal, es 3157778899",
    "/affirm",
]


def _second_rasa(assistant: RunningAssistant) -> Server:
    from tests.conftest import free_port

    first = assistant.servers.named(RASA)
    port = free_port()
    command = list(first.command)
    command[command.index("--port") + 1] = str(port)
    second = Server("servidor Rasa 2", command, f"http://127.0.0.1:{port}/")
    second.start(child_env(assistant.settings), None)
    return second


def test_two_rasa_servers_share_one_conversation_and_keep_its_order(assistant: RunningAssistant) -> None:
    if assistant.backend == "embebido":
        pytest.skip("dos servidores Rasa solo comparten conversaciones con PostgreSQL y Redis")
    second = _second_rasa(assistant)
    try:
        for _ in range(240):
            if second.healthy():
                break
            threading.Event().wait(0.5)
        assert second.healthy(), "el segundo servidor Rasa no arrancó"
        other_url = second.health_url.rstrip("/")

        single = assistant.chat()
        single_replies = [single.text(single.say(m)) for m in SCRIPT]
        shared = assistant.chat()
        shared_replies = []
        for index, message in enumerate(SCRIPT):
            shared.base_url = assistant.base_url if index % 2 == 0 else other_url
            shared_replies.append(shared.text(shared.say(message)))
        def same_shape(replies: list[str]) -> list[str]:
            return [re.sub(r"ECO-\d+", "ECO-N", r) for r in replies]

        assert same_shape(shared_replies) == same_shape(single_replies)
        (ticket,) = tickets_of(assistant, shared)
        (reference,) = tickets_of(assistant, single)
        for field in ("request_type", "email", "phone", "description", "channel"):
            assert getattr(ticket, field) == getattr(reference, field), field

        # Concurrent messages for one conversation, spread over both servers, run one at a time.
        burst = assistant.chat()
        threads = []
        errors: list[str] = []

        def send(client: Chat, message: str) -> None:
            try:
                client.say(message)
            except Exception as exc:  # recorded: a lost message must fail the test with its cause
                errors.append(f"{client.base_url} «{message}»: {exc!r}")

        for index, message in enumerate(["hola", "menú", "ayuda", "gracias", "hola", "menú"]):
            base = assistant.base_url if index % 2 == 0 else other_url
            threads.append(threading.Thread(target=send, args=(Chat(base, sender=burst.sender), message)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        events = TrackerReader(assistant.settings.tracker_db_url).events(burst.sender)
        users = [i for i, e in enumerate(events) if e.get("event") == "user"]
        assert len(users) == 6
        for position in users:
            previous_action = next(e for e in reversed(events[:position]) if e.get("event") == "action")
            assert previous_action.get("name") == "action_listen", "a message was processed while another was in progress"
    finally:
        second.stop()
