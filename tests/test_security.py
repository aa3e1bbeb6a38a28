"""Every conversation belongs to its customer: the attacks of issue 10, tried on the real servers.

Each test is an attack that worked before: speaking as another channel's
customer through REST or socket.io, posing as another channel, a Rasa or
action server that answers without its token, secrets that leak or end up
empty. Each now gets a refusal, never a 5xx and never another customer's
conversation.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from bot.channels.identity import owning_channel
from bot.channels.web_session import SessionSigner
from bot.kept_secrets import kept_secret, private_dir
from bot.rasa_runtime import with_api_token
from tests.conftest import REST_TOKEN, RunningAssistant, signed_web_session
from tests.test_channels_e2e import post_whatsapp, replies_to


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw


def rest(assistant: RunningAssistant, body: Any, token: str | None = REST_TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return http("POST", f"{assistant.base_url}/webhooks/rest/webhook", body, headers)


def tracker_events(assistant: RunningAssistant, sender: str) -> list[dict[str, Any]]:
    """The events stored for a conversation, read from the tracker store itself."""
    engine = create_engine(assistant.settings.tracker_db_url, future=True)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("select data from events where sender_id = :s order by id"), {"s": sender})
            return [json.loads(r[0]) for r in rows]
    finally:
        engine.dispose()


# ------------------------------------------------------------------ unit
@pytest.mark.parametrize(
    "sender, owner",
    [
        ("whatsapp:+573001234567", "whatsapp"),
        ("WhatsApp:+573001234567", "whatsapp"),
        ("  whatsapp:+573001234567", "whatsapp"),
        ("teams:29:1abc", "teams"),
        ("29:1abcdef", "teams"),
        ("8:orgid:1234", "teams"),
        ("web:AbCdEfGhIjKlMnOpQr", "socketio"),
        ("cliente-1", None),
        ("crm:caso-77", None),
        ("test-0123456789", None),
    ],
)
def test_each_channel_owns_the_ids_of_its_shape(sender: str, owner: str | None) -> None:
    assert owning_channel(sender) == owner


def test_web_sessions_are_verified_by_their_signature() -> None:
    signer = SessionSigner("clave-de-pruebas")
    token = signer.issue()
    sender = signer.verify(token)
    assert sender is not None and sender.startswith("web:") and token.startswith(sender + ".")
    assert signer.issue() != token
    assert SessionSigner("otra-clave").verify(token) is None
    forged = sender + "." + "A" * 43
    for hostile in (sender, forged, token + "x", "whatsapp:+573001234567", "", None, 42, {"id": token}, token.upper()):
        assert signer.verify(hostile) is None, hostile


def test_kept_secrets_are_private_never_empty_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "datos"
    first = kept_secret(data, "rest_token")
    assert len(first) >= 32
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "rest_token").stat().st_mode) == 0o600
    assert kept_secret(data, "rest_token") == first
    # A crash of an older version left an empty file: an empty token would turn the check off.
    (data / "actions_token").write_text("\n")
    regenerated = kept_secret(data, "actions_token")
    assert len(regenerated) >= 32 and (data / "actions_token").read_text().strip() == regenerated
    assert not [p for p in data.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_an_existing_data_dir_is_made_private(tmp_path: Path) -> None:
    open_dir = tmp_path / "var"
    open_dir.mkdir(mode=0o755)
    os.chmod(open_dir, 0o755)
    private_dir(open_dir)
    assert stat.S_IMODE(open_dir.stat().st_mode) == 0o700


def test_the_rasa_api_token_is_added_inside_the_process_and_never_empty() -> None:
    assert with_api_token(["run", "--enable-api"], "t0k3n") == ["run", "--enable-api", "--auth-token", "t0k3n"]
    assert with_api_token(["run"], "") == ["run"]  # no API, no token needed
    with pytest.raises(SystemExit) as refused:
        with_api_token(["run", "--enable-api"], "  ")
    assert "RASA_API_TOKEN" in str(refused.value)


def test_the_action_server_refuses_to_start_without_its_token(tmp_path: Path) -> None:
    env = {**os.environ, "ACTIONS_TOKEN": "", "BOT_DATA_DIR": str(tmp_path), "ACTIONS_PORT": "1"}
    done = subprocess.run([sys.executable, "-m", "bot.action_server"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "ACTIONS_TOKEN está vacía" in done.stderr


# ----------------------------------------------------------------- REST


@pytest.mark.servers
def test_rest_requires_its_token(assistant: RunningAssistant) -> None:
    body = {"sender": f"crm-{uuid.uuid4().hex[:8]}", "message": "hola"}
    for token in (None, "", "token-falso", REST_TOKEN + "x"):
        status, answer = rest(assistant, body, token)
        assert status == 401, (token, status, answer)
        assert "token" in answer["error"]
    assert tracker_events(assistant, body["sender"]) == []
    status, answer = rest(assistant, body)
    assert status == 200 and answer, answer


@pytest.mark.servers
def test_rest_cannot_write_into_a_whatsapp_customers_conversation(assistant: RunningAssistant) -> None:
    victim = f"whatsapp:+57300{uuid.uuid4().int % 10**7:07d}"
    after = len(assistant.twilio.messages)
    assert post_whatsapp(assistant, victim, "el pse no funciona, no puedo recibir pagos desde ayer") == 200
    replies_to(assistant, victim, after, "correo")
    before = tracker_events(assistant, victim)
    for sender in (victim, victim.upper(), " " + victim, victim.replace("whatsapp:", "WhatsApp:")):
        for message in ("hola", "/affirm", "¿cómo van mis solicitudes?"):
            status, answer = rest(assistant, {"sender": sender, "message": message})
            assert status == 403, (sender, status, answer)
            assert "otros canales" in answer["error"]
    assert tracker_events(assistant, victim) == before  # not one event added to the victim's conversation


@pytest.mark.servers
@pytest.mark.parametrize("sender", ["teams:29:1abcdef", "29:1abcdef", "web:AbCdEfGhIjKlMnOpQrSt"])
def test_rest_cannot_use_the_ids_of_teams_or_the_web_chat(assistant: RunningAssistant, sender: str) -> None:
    status, answer = rest(assistant, {"sender": sender, "message": "hola"})
    assert status == 403 and "otros canales" in answer["error"], answer
    assert tracker_events(assistant, sender) == []


@pytest.mark.servers
def test_rest_callers_cannot_claim_another_input_channel(assistant: RunningAssistant) -> None:
    sender = f"crm-{uuid.uuid4().hex[:8]}"
    status, _ = rest(assistant, {"sender": sender, "message": "hola", "input_channel": "whatsapp"})
    assert status == 200
    channels = {e.get("input_channel") for e in tracker_events(assistant, sender) if e.get("event") == "user"}
    assert channels == {"rest"}


# -------------------------------------------------------------- socket.io
async def _socket_session(assistant: RunningAssistant, session_id: Any, message: str | None = "hola") -> dict[str, list[Any]]:
    import socketio

    client = socketio.AsyncClient(reconnection=False)
    seen: dict[str, list[Any]] = {"session_confirm": [], "session_refused": [], "bot_uttered": []}
    for event in seen:
        client.on(event, lambda data, event=event: seen[event].append(data))
    # Long polling: the websocket transport of this python-engineio needs a newer aiohttp.
    await client.connect(assistant.base_url, socketio_path="/socket.io", transports=["polling"], wait_timeout=20)
    try:
        await client.emit("session_request", {"session_id": session_id})
        deadline = time.monotonic() + 20
        while not (seen["session_confirm"] or seen["session_refused"]) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if message is not None:
            await client.emit("user_uttered", {"message": message, "session_id": session_id})
            deadline = time.monotonic() + 30
            while not (seen["bot_uttered"] or len(seen["session_refused"]) > 1) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
    finally:
        await client.disconnect()
    return seen


@pytest.mark.servers
def test_the_web_server_issues_signed_sessions_and_reconnects_keep_the_conversation(assistant: RunningAssistant) -> None:
    token = signed_web_session(assistant.settings.web_port)
    sender = token.rsplit(".", 1)[0]
    first = asyncio.run(_socket_session(assistant, token, "hola"))
    assert first["session_confirm"] == [token] and first["bot_uttered"], first
    second = asyncio.run(_socket_session(assistant, token, "quiero ver el menú"))
    assert second["session_confirm"] == [token] and second["bot_uttered"], second
    said = [e.get("text") for e in tracker_events(assistant, sender) if e.get("event") == "user"]
    assert said == ["hola", "quiero ver el menú"]
    assert {e.get("input_channel") for e in tracker_events(assistant, sender) if e.get("event") == "user"} == {"socketio"}


@pytest.mark.servers
@pytest.mark.parametrize(
    "session_id",
    [None, "", "abc123", "whatsapp:+573001234567", "teams:29:1abc", uuid.uuid4().hex, "web:AbCdEfGhIjKlMnOpQrSt.falsa", 42],
)
def test_socket_io_refuses_sessions_the_web_server_did_not_sign(assistant: RunningAssistant, session_id: Any) -> None:
    seen = asyncio.run(_socket_session(assistant, session_id, "hola"))
    assert seen["session_confirm"] == [] and seen["bot_uttered"] == [], seen
    assert seen["session_refused"] and "sesión del chat no es válida" in seen["session_refused"][0]["error"]
    if isinstance(session_id, str) and session_id:
        assert tracker_events(assistant, session_id) == []


@pytest.mark.servers
def test_socket_io_cannot_write_into_a_whatsapp_customers_conversation(assistant: RunningAssistant) -> None:
    victim = f"whatsapp:+57301{uuid.uuid4().int % 10**7:07d}"
    after = len(assistant.twilio.messages)
    assert post_whatsapp(assistant, victim, "hola") == 200
    replies_to(assistant, victim, after, "Soporte ecollect")
    before = tracker_events(assistant, victim)
    seen = asyncio.run(_socket_session(assistant, victim, "¿cómo van mis solicitudes?"))
    assert seen["session_refused"] and not seen["bot_uttered"], seen
    assert tracker_events(assistant, victim) == before


@pytest.mark.servers
def test_a_session_from_another_deployment_is_refused(assistant: RunningAssistant) -> None:
    foreign = SessionSigner("la-clave-de-otro-servidor").issue()
    seen = asyncio.run(_socket_session(assistant, foreign, "hola"))
    assert seen["session_refused"] and not seen["bot_uttered"], seen


@pytest.mark.servers
def test_sessions_are_only_issued_to_allowed_sites(assistant: RunningAssistant) -> None:
    url = f"http://127.0.0.1:{assistant.settings.web_port}/api/sesion"
    status, answer = http("POST", url, headers={"Origin": "https://atacante.example"})
    assert status == 403 and "no puede abrir conversaciones" in answer["error"]
    own = f"http://localhost:{assistant.settings.web_port}"
    status, answer = http("POST", url, headers={"Origin": own})
    assert status == 201 and SessionSigner.from_env(assistant.settings.data_dir).verify(answer["session_id"])


# ------------------------------------------------------------ processes
@pytest.mark.servers
def test_no_secret_is_on_a_command_line(assistant: RunningAssistant) -> None:
    secrets = [
        assistant.settings.rasa_api_token,
        REST_TOKEN,
        (assistant.settings.data_dir / "actions_token").read_text().strip()
        if (assistant.settings.data_dir / "actions_token").exists()
        else os.environ.get("ACTIONS_TOKEN", ""),
    ]
    for server in assistant.servers.servers:
        if server.process is None or server.process.poll() is not None:
            continue
        command_line = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().decode("utf-8", "replace")
        for secret in filter(None, secrets):
            assert secret not in command_line, server.name


@pytest.mark.servers
def test_the_data_dir_and_its_secrets_are_private(assistant: RunningAssistant) -> None:
    data = assistant.settings.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.iterdir():
        if path.name.endswith("_token") or path.name.endswith("_secret"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
            assert path.read_text().strip(), path.name


@pytest.mark.servers
def test_the_rasa_api_still_requires_its_token(assistant: RunningAssistant) -> None:
    sender = f"crm-{uuid.uuid4().hex[:8]}"
    status, _ = http("GET", f"{assistant.base_url}/conversations/{sender}/tracker")
    assert status == 401
    status, _ = http("GET", f"{assistant.base_url}/conversations/{sender}/tracker?token={assistant.settings.rasa_api_token}")
    assert status == 200


# --------------------------------------------------------- ticket status
@pytest.mark.servers
def test_another_customers_ticket_status_goes_to_the_tickets_email_never_to_the_chat(assistant: RunningAssistant) -> None:
    victim_email = f"tesoreria-{uuid.uuid4().hex[:8]}@empresa.com"
    victim = assistant.chat()
    victim.say(f"no me genera el archivo de pagos, soy {victim_email}")
    assert "Creé tu solicitud" in victim.text(victim.say("/affirm")), victim.dump()
    (ticket,) = assistant.store.list(conversation_id=victim.sender)
    already = len(assistant.mail.received)

    attacker = assistant.chat()
    by_key = attacker.text(attacker.say(f"¿cómo va la solicitud {ticket.key}?"))
    by_email = attacker.text(attacker.say(f"¿cómo van mis solicitudes? {victim_email}"))
    listed = attacker.text(attacker.say(f"quiero saber cómo van mis tickets, {victim_email}"))
    unknown = attacker.text(attacker.say("¿cómo va la solicitud ECO-999999?"))
    for answer in (by_key, by_email, listed, unknown):
        assert "Abierta" not in answer and "archivos" not in answer.lower(), attacker.dump()
    assert "envié su estado al correo con el que se creó" in by_key, attacker.dump()
    assert unknown == by_key.replace(ticket.key, "ECO-999999"), attacker.dump()  # no hint whether a key exists
    assert f"Si hay solicitudes creadas con {victim_email}, envié la lista a ese correo" in listed, attacker.dump()

    received = assistant.mail.wait_for(already + 2)[already:]
    assert {tuple(m.rcpt_tos) for m in received} == {(victim_email,)}  # only to the ticket's own address
    status_mail = next(m for m in received if ticket.key in m.subject)
    assert "Abierta" in status_mail.text and ticket.request_type in status_mail.text
    time.sleep(1.0)
    assert len(assistant.mail.received) == already + 2  # the unknown key mailed nobody
