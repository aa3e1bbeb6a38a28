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
import logging
import os
import shutil
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
from sanic_testing import TestManager
from sqlalchemy import create_engine, text

from bot.attachments import AttachmentPolicy, AttachmentRefused, AttachmentStore
from bot.catalog import get_catalog
from bot.channels.identity import owning_channel
from bot.channels.web_session import SessionSigner
from bot.kept_secrets import kept_secret, private_dir
from bot.mail import Postman, Quota, mailbox
from bot.rasa_ext import log_masking
from bot.rasa_runtime import with_api_token
from bot.settings import Settings
from bot.settings.mail import MailSettings
from bot.settings.web import UploadLimits
from bot.sliding_window import SlidingWindow
from bot.web.app import create_app
from tests.cards import CARD, shows_card
from tests.conftest import REST_TOKEN, RunningAssistant, signed_web_session
from tests.test_channels_e2e import post_whatsapp, replies_to


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            try:
                return response.status, json.loads(raw) if raw else None
            except ValueError:
                return response.status, raw  # Rasa's «Hello from Rasa» is text
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
    for hostile in (sender, forged, token + "x", token + "\n", "whatsapp:+573001234567", "", None, 42, {"id": token}, token.upper()):
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
    assert with_api_token(["run", "--enable-api"], "t0k3n") == ["run", "--enable-api", "--auth-token=t0k3n"]
    # A generated token may start with «-»: argparse must not take it for an option.
    assert with_api_token(["run", "--enable-api"], "-abc")[-1] == "--auth-token=-abc"
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
@pytest.mark.parametrize("path", ["/webhooks/rest/webhook/", "/webhooks/rest/webhook//", "/webhooks/rest//webhook"])
def test_no_spelling_of_the_rest_path_skips_the_token_or_the_checks(assistant: RunningAssistant, path: str) -> None:
    url = f"{assistant.base_url}{path}"
    body = {"sender": "whatsapp:+573001112233", "message": "hola"}
    status, _ = http("POST", url, body)
    assert status in (401, 404), status
    status, _ = http("POST", url, body, {"Authorization": f"Bearer {REST_TOKEN}"})
    assert status in (403, 404), status
    status, _ = http("POST", url, [], {"Authorization": f"Bearer {REST_TOKEN}"})
    assert status in (400, 404), status
    assert tracker_events(assistant, body["sender"]) == []


@pytest.mark.servers
def test_an_id_the_database_cannot_store_is_refused_and_the_server_stays_up(assistant: RunningAssistant) -> None:
    for sender in ("\ud800", "cliente-\udfff", "cliente\u200bcero"):
        status, answer = rest(assistant, {"sender": sender, "message": "hola"})
        assert status == 400, (sender, status, answer)
    sender = f"crm-{uuid.uuid4().hex[:8]}"
    status, answer = rest(assistant, {"sender": sender, "message": "hola \ud800 qué tal"})
    assert status == 200 and answer, answer  # the lone surrogate is dropped from the text
    status, _ = http("GET", f"{assistant.base_url}/")
    assert status == 200


@pytest.mark.servers
def test_a_client_cannot_claim_a_phone_only_whatsapp_can_vouch_for(assistant: RunningAssistant) -> None:
    sender = f"crm-{uuid.uuid4().hex[:8]}"
    metadata = {"sender_phone": "+573001234567", "tenant_id": "otro", "nota": "se conserva"}
    status, _ = rest(assistant, {"sender": sender, "message": "hola", "metadata": metadata})
    assert status == 200
    (said,) = [e for e in tracker_events(assistant, sender) if e.get("event") == "user"]
    assert "sender_phone" not in said["metadata"] and "tenant_id" not in said["metadata"]
    assert said["metadata"]["nota"] == "se conserva"


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
            # Refused as another channel's id, or (with the space) as an id no conversation can have.
            assert status in (400, 403), (sender, status, answer)
            assert "otros canales" in answer["error"] or "«sender» no puede" in answer["error"]
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
    assert status == 201 and SessionSigner(assistant.settings.secrets.web_session_secret).verify(answer["session_id"])


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

    def ask(text: str) -> str:  # each probe from a fresh conversation, as an attacker would
        attacker = assistant.chat()
        return attacker.text(attacker.say(text))

    by_key = ask(f"¿cómo va la solicitud {ticket.key}?")
    unknown = ask("¿cómo va la solicitud ECO-999999?")
    by_email = [ask(f"¿cómo van mis solicitudes? {victim_email}"), ask(f"estado de mis tickets, soy {victim_email}")]
    for answer in (by_key, unknown, *by_email):
        assert "Abierta" not in answer and ticket.key not in answer.replace(f"Si {ticket.key} existe", ""), answer
    assert "envié su estado al correo con el que se creó" in by_key, by_key
    assert unknown == by_key.replace(ticket.key, "ECO-999999")  # no hint whether a key exists

    received = assistant.mail.wait_for(already + 1, timeout=60)[already:]
    time.sleep(1.0)  # a mail for the unknown key, or to anyone else, would have arrived by now
    received = assistant.mail.received[already:]
    assert received and {tuple(m.rcpt_tos) for m in received} == {(victim_email,)}  # only the ticket's own address
    status_mail = next(m for m in received if ticket.key in m.subject)
    assert "Abierta" in status_mail.text and ticket.request_type in status_mail.text
    assert not any("ECO-999999" in m.subject for m in received)


def test_mail_quotas_count_mailboxes_not_spellings() -> None:
    assert mailbox("Ana.Perez+eco7@GMail.com") == mailbox("anaperez@googlemail.com") == "anaperez@gmail.com"
    assert mailbox("ana.perez+x@empresa.co") == "ana.perez@empresa.co"  # dots matter outside Gmail
    quota = Quota(clock=lambda: 1000.0)
    taken = [quota.take(f"victima+{n}@gmail.com", f"ECO-{n:06d}") for n in range(10)]
    assert taken == [True] * 5 + [False] * 5  # five an hour for the mailbox, whatever the spelling


# -------------------------------------------------------------- floods
def test_one_address_cannot_open_sessions_without_end(tmp_path: Path) -> None:
    settings = Settings.from_env({"BOT_DATA_DIR": str(tmp_path), "WEB_SESSIONS_PER_MINUTE": "3"})
    web = create_app(settings, name="sesiones_limitadas")
    TestManager(web)
    statuses = [web.test_client.post("/api/sesion")[1].status for _ in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    _, refused = web.test_client.post("/api/sesion")
    assert "demasiadas conversaciones" in refused.json["error"] and int(refused.headers["retry-after"]) > 0


def test_the_store_never_fills_the_disk(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    policy = AttachmentPolicy(get_catalog().attachment_field)
    roomy = AttachmentStore(tmp_path / "a", policy, UploadLimits(min_free_bytes=1))
    assert roomy.save("captura.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, owner="web:x").size > 0
    full = AttachmentStore(tmp_path / "b", policy, UploadLimits(min_free_bytes=free + 1))
    with pytest.raises(AttachmentRefused) as refused:
        full.save("captura.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, owner="web:x")
    assert refused.value.code == "storage_full" and "no puedo recibir archivos" in refused.value.message


def test_log_lines_of_the_rasa_process_never_carry_cards_or_phones(caplog: pytest.LogCaptureFixture) -> None:
    previous = logging.getLogRecordFactory()
    try:
        log_masking.install()
        log_masking.install()  # once is enough: the factory is not wrapped twice
        assert logging.getLogRecordFactory() is not previous
        with caplog.at_level(logging.INFO):
            logging.getLogger("rasa.core.channels.rest").error(
                "An exception occured while handling user message '%s'.",
                f"mi tarjeta {CARD} y mi cel +57 315 777 8899, ana.perez@empresa.com",
            )
            logging.getLogger("rasa.core.processor").info("turn at 1796192294.897743 from 127.0.0.1:5055")
    finally:
        logging.setLogRecordFactory(previous)
    masked, kept = (record.getMessage() for record in caplog.records[-2:])
    assert not shows_card(masked) and "315 777 8899" not in masked and "ana.perez@" not in masked
    assert "•••899" in masked  # the end of the number stays, to tell conversations apart
    assert kept == "turn at 1796192294.897743 from 127.0.0.1:5055"  # timestamps and addresses stay readable


def test_one_web_conversation_cannot_flood_the_assistant() -> None:
    clock = [0.0]
    pace = SlidingWindow(3, 60.0, clock=lambda: clock[0])  # the socket.io channel's pace, with a test clock
    assert [pace.wait("web:a") == 0 for _ in range(5)] == [True, True, True, False, False]
    assert pace.wait("web:b") == 0  # another conversation has its own pace
    clock[0] = 61.0
    assert pace.wait("web:a") == 0  # a minute later it may talk again


def test_one_chat_cannot_have_the_assistant_mail_every_ticket_owner() -> None:
    postman = Postman(MailSettings(host="127.0.0.1", sender="soporte@ecollect.test", port=1), clock=lambda: 50.0)
    composed: list[int] = []
    try:
        queued = [postman.post(lambda n=n: composed.append(n), requester="web:curioso") for n in range(8)]
        assert queued == [True] * 5 + [False] * 3  # five mails an hour per asking conversation
        assert postman.post(lambda: None, requester="web:otro")  # other conversations are not held back
        assert postman.join(10)
    finally:
        postman.close()
    assert sorted(composed) == [0, 1, 2, 3, 4]  # the refused ones were never even composed
