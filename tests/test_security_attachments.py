"""Attachments belong to their conversation, are read only from the store, and cannot flood it.

An attacker here holds someone else's attachment id, can set slots (so a
ticket's attachment record says whatever they like), sends uploads without
or with forged sessions, rotates X-Forwarded-For, or simply uploads a lot.
Everything runs against the real web app (sanic_testing), the real action
code, the real outbox worker and the local fake of JSM.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sanic_testing import TestManager

from actions import actions as act
from actions.adapters import TicketDesk
from bot.attachments import AttachmentPolicy, AttachmentStore, sweep_unattached
from bot.catalog import Catalog, get_catalog
from bot.channels.web_session import SessionSigner
from bot.settings import Settings
from bot.settings.web import UploadLimits
from bot.settings.tickets import OutboxSettings
from bot.tickets import TicketStore
from bot.tickets.delivery import TicketDelivery
from bot.tickets.delivery_text import transcripts_from
from bot.tickets.factory import build_ticket_store
from bot.tickets.jsm_client import JsmClient
from bot.tickets.jsm_mapping import MappingFile
from bot.tickets.jsm_sync import sync_mapping
from bot.tickets.model import Attachment, Ticket
from bot.tickets.outbox_queue import OutboxQueue
from bot.tickets.worker import Worker
from bot.transcripts import TrackerReader
from bot.web.app import SESSION_INVALID, create_app
from tests.fake_jsm import FakeJsmServer, jsm_env, jsm_server, tickets_db_url  # noqa: F401 (fixtures)
from tests.test_tickets import new_ticket

PNG = b"\x89PNG\r\n\x1a\n" + b"\x02" * 64
SECRET = b"token-secreto-del-servidor-no-debe-salir\n"
_names = itertools.count()


# ---------------------------------------------------------------------- helpers
@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WEB_ALLOWED_ORIGINS", "https://www.cliente.com.co")
    for name in ("PROXIES_COUNT", "UPLOAD_RATE_PER_MINUTE", "UPLOAD_MAX_FILES_PER_CONVERSATION",
                 "UPLOAD_MAX_BYTES_PER_CONVERSATION", "UPLOAD_UNATTACHED_HOURS", "WEB_SESSION_SECRET",
                 "TICKETS_DB_URL", "TICKETS_BACKEND", "FORWARDED_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def web_app(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """The web server as ``python -m bot web`` builds it, with these environment variables."""

    def build(**env: str) -> Any:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        app = create_app(Settings.from_env(), name=f"security_test_{next(_names)}")
        TestManager(app)
        return app

    return build


@pytest.fixture
def web(web_app: Callable[..., Any]) -> Any:
    return web_app()


def session() -> str:
    return SessionSigner(Settings.from_env().secrets.web_session_secret).issue()


def conversation_of(token: str) -> str:
    return token.rsplit(".", 1)[0]


def post_file(app: Any, token: Optional[str], name: str = "captura.png", data: bytes = PNG, *,
              header: bool = False, headers: Optional[dict[str, str]] = None) -> Any:
    form = {"sesion": token} if token is not None and not header else {}
    sent = dict(headers or {})
    if header and token is not None:
        sent["X-Sesion-Chat"] = token
    _, response = app.test_client.post("/api/adjuntos", files={"archivo": (name, data, "image/png")}, data=form, headers=sent)
    return response


def stored_ids(root: Path) -> list[str]:
    return sorted(p.parent.name for p in root.glob("*/attachment.json"))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------ 1. bound to their conversation
@pytest.mark.parametrize(
    "token",
    [None, "", "web:AAAAAAAAAAAAAAAAAAAAAAAA", "web:AAAAAAAAAAAAAAAAAAAAAAAA." + "A" * 43, "whatsapp:+573157778899",
     "web:../../etc.passwd", "x" * 5000],
    ids=["absent", "empty", "unsigned", "forged-signature", "other-channel", "path", "huge"],
)
def test_an_upload_without_a_valid_signed_session_is_refused(web: Any, data_dir: Path, token: Optional[str]) -> None:
    response = post_file(web, token)
    assert response.status == 401
    assert response.json["error"] == SESSION_INVALID
    assert stored_ids(data_dir / "adjuntos") == []


def test_a_session_signed_with_another_key_is_refused(web: Any, data_dir: Path) -> None:
    foreign = SessionSigner("otra-clave-que-no-es-la-del-servidor").issue()
    assert post_file(web, foreign).status == 401
    assert post_file(web, foreign, header=True).status == 401


@pytest.mark.parametrize("header", [False, True], ids=["form-field", "header"])
def test_an_upload_belongs_to_the_conversation_its_session_names(web: Any, data_dir: Path, header: bool) -> None:
    token = session()
    response = post_file(web, token, header=header)
    assert response.status == 201, response.json
    assert "owner" not in response.json and "path" not in response.json
    record = json.loads((data_dir / "adjuntos" / response.json["id"] / "attachment.json").read_text(encoding="utf-8"))
    assert record["owner"] == conversation_of(token)
    assert AttachmentStore.from_settings(get_catalog(), Settings.from_env()).get(response.json["id"]).owner == conversation_of(token)


def test_resolve_keeps_only_the_files_of_the_asking_conversation(tmp_path: Path, catalog: Catalog) -> None:
    store = AttachmentStore(tmp_path, AttachmentPolicy(catalog.attachment_field))
    mine = store.save("mio.png", "image/png", PNG, owner="web:conversacion-de-ana-01")
    theirs = store.save("ajeno.png", "image/png", PNG, owner="web:conversacion-de-luis-1")
    legacy = store.save("antiguo.png", "image/png", PNG)  # before owners (and channels not passing one yet)
    references = [{"id": mine.id}, {"id": theirs.id}, {"id": legacy.id}]
    assert store.resolve(references, owner="web:conversacion-de-ana-01") == [mine.as_metadata()]
    assert store.resolve(references, owner="web:conversacion-de-luis-1") == [theirs.as_metadata()]
    assert store.resolve(references, owner="") == []
    assert store.resolve({"id": mine.id}, owner="web:conversacion-de-ana-01") == []  # not a list of references
    assert store.resolve([{"id": mine.id}, {"id": mine.id}], owner="web:conversacion-de-ana-01") == [mine.as_metadata()]
    assert "owner" not in mine.as_metadata()  # never carried into slots, tickets or JSM


def _attach(sender: str, references: list[dict[str, Any]]) -> dict[str, Any]:
    latest = {"text": "/attach", "intent": {"name": "attach", "confidence": 1.0}, "entities": [],
              "metadata": {"attachments": references}, "message_id": "m-1"}
    tracker = Tracker(
        sender_id=sender, slots={}, latest_message=latest,
        events=[{"event": "action", "name": "action_listen"},
                {"event": "user", "text": "/attach", "parse_data": latest, "input_channel": "socketio",
                 "metadata": {"attachments": references}, "timestamp": 1.0}],
        paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen",
    )
    dispatcher = CollectingDispatcher()
    catalog = get_catalog()
    services = act.Services(
        catalog=catalog, tickets=TicketDesk(build_ticket_store(Settings.from_env(), catalog)),
        attachments=AttachmentStore.from_settings(catalog, Settings.from_env()),
    )
    events = asyncio.run(act.ActionReceiveAttachment(services).run(dispatcher, tracker, {}))
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    return {"slots": slots, "responses": [m.get("response") for m in dispatcher.messages]}


def test_an_action_takes_only_files_its_own_conversation_uploaded(data_dir: Path, web: Any) -> None:
    ana, luis = session(), session()
    uploaded = post_file(web, ana).json
    stolen = _attach(conversation_of(luis), [{"id": uploaded["id"]}])
    assert "attachment" not in stolen["slots"] and stolen["responses"] == ["utter_attachment_missing"]
    own = _attach(conversation_of(ana), [{"id": uploaded["id"]}])
    (record,) = own["slots"]["attachment"]
    assert record["id"] == uploaded["id"] and Path(record["path"]).read_bytes() == PNG


# --------------------------------- 2. the worker reads only store files, by id
def test_get_refuses_a_record_whose_path_leaves_its_folder(tmp_path: Path, catalog: Catalog) -> None:
    store = AttachmentStore(tmp_path / "adjuntos", AttachmentPolicy(catalog.attachment_field))
    secret = tmp_path / "rasa_api_token"
    secret.write_bytes(SECRET)
    forged = store.save("a.png", "image/png", PNG, owner="web:conversacion-de-ana-01")
    record = tmp_path / "adjuntos" / forged.id / "attachment.json"
    for path in ("/etc/passwd", str(secret), f"{tmp_path}/adjuntos/{forged.id}/../../rasa_api_token", str(record)):
        record.write_text(json.dumps({**json.loads(record.read_text()), "path": path}), encoding="utf-8")
        assert store.get(forged.id) is None, path
    linked = store.save("b.png", "image/png", PNG, owner="web:conversacion-de-ana-01")
    Path(linked.path).unlink()
    Path(linked.path).symlink_to(secret)
    assert store.get(linked.id) is None


@pytest.fixture
def mapped(jsm_env: dict[str, str]) -> dict[str, str]:
    config = Settings.from_env().tickets.jsm
    sync_mapping(JsmClient(config), get_catalog()).mapping.dump(config.mapping_file)
    return jsm_env


def _ticket_with(store: TicketStore, sender: str, records: list[dict[str, Any]]) -> Ticket:
    """A stored ticket holding these attachment records as they are.

    Written straight to the ticket store: the form and submit check records
    too, but the worker must not depend on it (a slot set through Rasa's
    API, a ticket from an older version, a tampered row).
    """
    ticket = new_ticket(conversation_id=sender, channel="socketio", redirected_from=None,
                        attachments=tuple(Attachment.from_dict(r) for r in records))
    stored, _ = store.create(ticket, f"k-{sender}-{len(records)}-{time.monotonic_ns()}")
    return stored


def _deliver(store: TicketStore) -> None:
    environment = Settings.from_env()
    config = environment.tickets.jsm
    settings = OutboxSettings(poll_seconds=0.05, retry_base_seconds=0.05, retry_max_seconds=0.2, lease_seconds=10)
    catalog = get_catalog()
    queue = OutboxQueue(store.url)
    delivery = TicketDelivery(
        queue, JsmClient(config, timeout=2.0), MappingFile(config.mapping_file), catalog=catalog,
        attachments=AttachmentStore.from_settings(catalog, environment),
        transcripts=transcripts_from(TrackerReader(environment.tracker_db_url)), settings=settings,
    )
    assert Worker(queue, delivery, settings).run_once() == 1


def _received(fake: Any) -> list[bytes]:
    """Every file body the fake JSM was sent, attached or still temporary."""
    attached = [a["data"] for files in fake.attachments.values() for a in files]
    return attached + [data for _, _, data in fake.temporary.values()]


def test_the_worker_never_uploads_a_file_the_record_merely_points_at(
    mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog, tmp_path: Path
) -> None:
    fake = jsm_server.fake
    sender = "web:conversacion-de-ana-01"
    token_file = tmp_path / "rasa_api_token"
    token_file.write_bytes(SECRET)
    files = AttachmentStore.from_settings(catalog, Settings.from_env())
    own = files.save("pantallazo.png", "image/png", PNG, owner=sender)
    decoy = files.save("real.png", "image/png", PNG + b"decoy", owner=sender)
    theirs = files.save("de-luis.png", "image/png", PNG + b"luis", owner="web:conversacion-de-luis-1")
    swapped = files.save("cambiado.png", "image/png", PNG + b"swap", owner=sender)
    Path(swapped.path).unlink()
    Path(swapped.path).symlink_to(token_file)  # a file replaced by a link after it was stored

    def record(stored: Any, **changes: Any) -> dict[str, Any]:
        return {**stored.as_metadata(), **changes}

    records = [
        record(own),
        record(decoy, name="passwd", path="/etc/passwd"),
        record(decoy, name="rasa_api_token", path=str(token_file)),
        record(decoy, name="sube.png", path=f"{Path(decoy.path).parent}/../../rasa_api_token"),
        record(theirs),  # another customer's real, stored file
        record(swapped),
    ]
    store = build_ticket_store(Settings.from_env(), catalog)
    ticket = _ticket_with(store, sender, records)
    _deliver(store)

    (key,) = fake.requests
    assert [a["filename"] for a in fake.attachments[key]] == ["pantallazo.png"]
    received = _received(fake)
    assert received == [PNG]
    assert not any(SECRET in data or b"root:" in data or data == PNG + b"luis" for data in received)
    (comment,) = fake.comments[key]
    for name in ("passwd", "rasa_api_token", "sube.png", "de-luis.png", "cambiado.png"):
        assert f"El adjunto «{name}» ya no estaba disponible en el asistente." in comment["body"]
    assert store.get(ticket.key).delivery_status == "delivered"


# ---------------------------------------------------------- 3. upload floods
def test_uploads_are_rate_limited_per_client_address(data_dir: Path, web_app: Callable[..., Any]) -> None:
    app = web_app(UPLOAD_RATE_PER_MINUTE="3")
    clock = Clock(1000.0)
    app.ctx.upload_rate.clock = clock
    token = session()
    assert [post_file(app, token).status for _ in range(3)] == [201, 201, 201]
    # Neither a new session nor a made-up X-Forwarded-For gets round it (PROXIES_COUNT defaults to 0).
    limited = post_file(app, session(), headers={"X-Forwarded-For": "203.0.113.9"})
    assert limited.status == 429
    assert "demasiado rápido" in limited.json["error"]
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert len(stored_ids(data_dir / "adjuntos")) == 3
    clock.now += 61
    assert post_file(app, token).status == 201


def test_unsigned_attempts_count_against_the_rate_too(data_dir: Path, web_app: Callable[..., Any]) -> None:
    app = web_app(UPLOAD_RATE_PER_MINUTE="2")
    assert [post_file(app, None).status for _ in range(3)] == [401, 401, 429]


def test_behind_a_proxy_each_forwarded_client_has_its_own_count(data_dir: Path, web_app: Callable[..., Any]) -> None:
    app = web_app(UPLOAD_RATE_PER_MINUTE="1", PROXIES_COUNT="1")
    first = post_file(app, session(), headers={"X-Forwarded-For": "198.51.100.7"})
    other = post_file(app, session(), headers={"X-Forwarded-For": "198.51.100.8"})
    again = post_file(app, session(), headers={"X-Forwarded-For": "198.51.100.7"})
    assert (first.status, other.status, again.status) == (201, 201, 429)
    # One IPv6 customer owns a /64: rotating inside it is one client.
    v6 = [post_file(app, session(), headers={"X-Forwarded-For": f"2001:db8:1:2::{n}"}).status for n in (1, 2)]
    assert v6 == [201, 429]


def test_a_bad_proxies_count_stops_at_start(data_dir: Path, web_app: Callable[..., Any]) -> None:
    with pytest.raises(SystemExit, match="PROXIES_COUNT"):
        web_app(PROXIES_COUNT="dos")


def test_a_conversation_may_keep_only_so_many_recent_files(data_dir: Path, web_app: Callable[..., Any]) -> None:
    app = web_app(UPLOAD_MAX_FILES_PER_CONVERSATION="2", UPLOAD_RATE_PER_MINUTE="0")
    clock = Clock(time.time())
    app.ctx.attachments.clock = clock
    token = session()
    assert [post_file(app, token).status for _ in range(2)] == [201, 201]
    refused = post_file(app, token)
    assert refused.status == 429 and refused.json["code"] == "quota_files"
    assert "máximo" in refused.json["error"] and int(refused.headers["retry-after"]) > 0
    assert post_file(app, session()).status == 201  # another conversation is not affected
    clock.now += 24 * 3600 + 1
    assert post_file(app, token).status == 201


def test_a_conversation_may_keep_only_so_many_recent_bytes(data_dir: Path, web_app: Callable[..., Any]) -> None:
    app = web_app(UPLOAD_MAX_BYTES_PER_CONVERSATION=str(len(PNG) * 2 - 1), UPLOAD_RATE_PER_MINUTE="0")
    token = session()
    assert post_file(app, token).status == 201
    refused = post_file(app, token)
    assert refused.status == 413 and refused.json["code"] == "quota_bytes" and "máximo" in refused.json["error"]
    assert len(stored_ids(data_dir / "adjuntos")) == 1


def test_limits_come_from_the_environment_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("UPLOAD_RATE_PER_MINUTE", "UPLOAD_MAX_FILES_PER_CONVERSATION", "UPLOAD_MAX_BYTES_PER_CONVERSATION",
                 "UPLOAD_UNATTACHED_HOURS"):
        monkeypatch.delenv(name, raising=False)
    assert UploadLimits.from_env() == UploadLimits(10, 20, 50 * 1024 * 1024, 24.0)
    monkeypatch.setenv("UPLOAD_UNATTACHED_HOURS", "-1")
    with pytest.raises(SystemExit, match="UPLOAD_UNATTACHED_HOURS"):
        UploadLimits.from_env()


def test_the_sweep_removes_only_old_files_no_ticket_took(tmp_path: Path, catalog: Catalog) -> None:
    clock = Clock(1_700_000_000.0)
    store = AttachmentStore(tmp_path / "adjuntos", AttachmentPolicy(catalog.attachment_field), UploadLimits(), clock)
    tickets = TicketStore(f"sqlite:///{tmp_path / 'tickets.db'}")
    ana, luis = "web:conversacion-de-ana-01", "web:conversacion-de-luis-1"
    loose = store.save("suelto.png", "image/png", PNG, owner=ana)
    attached = store.save("en-ticket.png", "image/png", PNG, owner=ana)
    legacy_used = store.save("antiguo-usado.png", "image/png", PNG)  # no owner: stored before owners existed
    legacy_loose = store.save("antiguo-suelto.png", "image/png", PNG)
    _ticket_with(tickets, ana, [attached.as_metadata()])
    _ticket_with(tickets, luis, [legacy_used.as_metadata()])
    clock.now += 23 * 3600
    young = store.save("reciente.png", "image/png", PNG, owner=ana)
    assert sweep_unattached(store, tickets) == []  # nothing is 24 h old yet

    clock.now += 2 * 3600
    assert sorted(sweep_unattached(store, tickets)) == sorted([loose.id, legacy_loose.id])
    assert sorted(stored_ids(store.root)) == sorted([attached.id, legacy_used.id, young.id])
    assert Path(attached.path).read_bytes() == PNG and store.get(attached.id).attached
    clock.now += 30 * 24 * 3600
    assert sweep_unattached(store, tickets) == [young.id]
    assert sorted(stored_ids(store.root)) == sorted([attached.id, legacy_used.id])
    assert not list((store.root / ".propietarios").glob("*/*"))  # usage markers expire too


def test_the_web_server_sweeps_in_the_background(data_dir: Path, catalog: Catalog, web_app: Callable[..., Any]) -> None:
    old = AttachmentStore(data_dir / "adjuntos", AttachmentPolicy(catalog.attachment_field), UploadLimits(),
                          lambda: time.time() - 25 * 3600)
    stale = old.save("viejo.png", "image/png", PNG, owner="web:conversacion-de-ana-01")
    fresh = AttachmentStore.from_settings(catalog, Settings.from_env()).save("nuevo.png", "image/png", PNG, owner="web:conversacion-de-ana-01")
    app = web_app()
    deadline = time.monotonic() + 20
    while (data_dir / "adjuntos" / stale.id).exists() and time.monotonic() < deadline:
        app.test_client.get("/salud")  # each start of the test server runs a first sweep
        time.sleep(0.1)
    assert stored_ids(data_dir / "adjuntos") == [fresh.id]
