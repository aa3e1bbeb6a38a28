"""The outbox: confirmed tickets reach JSM with attachment and transcript, never lost, never twice.

Everything runs against tests/fake_jsm.py on a loopback port: a worker in
this process (driven round by round, or in a thread for the outage), the
worker process the launcher starts, and the whole assistant with a real
conversation.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from sqlalchemy import create_engine

from actions.adapters import TicketDesk
from bot.attachments import AttachmentStore
from bot.catalog import Catalog, get_catalog
from bot.dialogue import submit
from bot.dialogue.turn import Turn
from bot.settings import Settings
from bot.settings.tickets import OutboxSettings
from bot.tickets import TicketStore
from bot.tickets.delivery import TicketDelivery, retry_delay
from bot.tickets.delivery_text import transcripts_from
from bot.tickets.factory import build_ticket_store
from bot.tickets.jsm_client import JsmClient
from bot.tickets.jsm_mapping import MappingFile
from bot.tickets.jsm_sync import sync_mapping
from bot.tickets.outbox_queue import OutboxQueue
from bot.tickets.worker import Worker
from bot.transcripts import EVENTS, TrackerReader, _metadata
from tests.fake_jsm import DESK_ID, FakeJsmServer, Scripted, jsm_env, jsm_server, tickets_db_url  # noqa: F401 (fixtures)
from tests.cards import CARD, shows_card

REQUEST = "/rest/servicedeskapi/request"
COMMENT = "/rest/servicedeskapi/request/{key}/comment"
ATTACH = "/rest/servicedeskapi/request/{key}/attachment"
TEMPORARY = "/rest/servicedeskapi/servicedesk/{desk}/attachTemporaryFile"
FAST = OutboxSettings(poll_seconds=0.05, retry_base_seconds=0.05, retry_max_seconds=0.2, lease_seconds=10)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 200


# ---------------------------------------------------------------------- helpers
def jsm_store() -> TicketStore:
    return build_ticket_store(Settings.from_env(), get_catalog())  # TICKETS_BACKEND=jsm: new tickets wait in the outbox


def write_mapping() -> None:
    config = Settings.from_env().tickets.jsm
    sync_mapping(JsmClient(config), get_catalog()).mapping.dump(config.mapping_file)


def record_conversation(sender: str, lines: list[tuple[str, str]]) -> None:
    """Events as Rasa's SQL tracker store writes them, for the transcript."""
    engine = create_engine(Settings.from_env().tracker_db_url, future=True)
    _metadata.create_all(engine)
    start = time.time() - 60
    with engine.begin() as connection:
        for index, (who, text) in enumerate(lines):
            kind = "user" if who == "cliente" else "bot"
            event: dict[str, Any] = {"event": kind, "text": text, "timestamp": start + index}
            if kind == "user":
                event["parse_data"] = {"intent": {"name": "inform", "confidence": 0.9}}
            connection.execute(EVENTS.insert().values(
                sender_id=sender, type_name=kind, timestamp=start + index, data=json.dumps(event, ensure_ascii=False)
            ))


def confirm(catalog: Catalog, store: TicketStore, sender: str, email: str = "ana@empresa.com", attachment: Optional[Path] = None, **slots: Any):
    """The customer presses «Enviar»: the same call action_create_ticket makes."""
    values: dict[str, Any] = {
        "request_type": "gestion_archivos", "item": "falla_cargue_cartera", "email": email,
        "confirmation": "send", "original_text": f"no me carga el archivo de cartera, pagué con {CARD}",
    }
    files = AttachmentStore.from_settings(catalog, Settings.from_env())
    if attachment is not None:  # uploaded in this conversation, as a channel stores it
        stored = files.save(attachment.name, "image/png", attachment.read_bytes(), owner=sender)
        values["attachment"] = [stored.as_metadata()]
    values.update(slots)
    turn = Turn(text="/affirm", sender_id=sender, message_id=f"m-{sender}", channel="rest")
    updates, says = submit.submit(values, turn, catalog, TicketDesk(store), files)
    assert says[0].response == "utter_ticket_created"
    return store.get(updates["ticket_key"])


def worker(store: TicketStore, timeout: float = 2.0, settings: OutboxSettings = FAST, token: Optional[str] = None) -> Worker:
    """A delivery worker on ``store``'s database, built as ``python -m bot outbox run`` builds it."""
    environment = Settings.from_env()
    config = environment.tickets.jsm
    if token:
        config = dataclasses.replace(config, api_token=token)
    catalog = get_catalog()
    queue = OutboxQueue(store.url)
    delivery = TicketDelivery(
        queue, JsmClient(config, timeout=timeout), MappingFile(config.mapping_file), catalog=catalog,
        attachments=AttachmentStore.from_settings(catalog, environment),
        transcripts=transcripts_from(TrackerReader(environment.tracker_db_url)), settings=settings,
    )
    return Worker(queue, delivery, settings)


def until(condition: Callable[[], bool], step: Callable[[], Any] = lambda: None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("la condición no se cumplió a tiempo")
        step()
        time.sleep(0.05)


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env={**os.environ, **env})


@pytest.fixture
def mapped(jsm_env: dict[str, str]) -> dict[str, str]:
    write_mapping()
    return jsm_env


# ------------------------------------------------------------- a full delivery
def test_a_confirmed_ticket_becomes_a_jsm_request_on_behalf_of_the_customer(
    mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog, tmp_path: Path
) -> None:
    fake = jsm_server.fake
    account = fake.add_user("ana@empresa.com", "Ana Pérez")
    screenshot = tmp_path / "pantallazo.png"
    screenshot.write_bytes(PNG)
    record_conversation("conv-ana", [
        ("cliente", f"no me carga el archivo de cartera, pagué con {CARD}"),
        ("asistente", "¿A nombre de qué correo genero la solicitud?"),
        ("cliente", "ana@empresa.com"),
    ])
    store = jsm_store()
    ticket = confirm(catalog, store, "conv-ana", attachment=screenshot)
    assert (ticket.delivery_status, ticket.jsm_key) == ("pending", None)  # stored first, delivered later

    assert worker(store).run_once() == 1

    (key,) = fake.requests
    (_, _, _, body) = fake.called("POST", REQUEST)[0]
    files_type = next(t for t in fake.request_types if t["name"] == ticket.request_type)
    option = next(v["value"] for v in fake.fields[files_type["id"]][1]["validValues"] if v["label"] == ticket.item)
    assert body["serviceDeskId"] == DESK_ID and body["requestTypeId"] == files_type["id"]
    assert body["raiseOnBehalfOf"] == account
    assert body["requestFieldValues"] == {
        "summary": f"[{ticket.key}] {ticket.request_type}: {ticket.item}",
        "customfield_10050": {"id": option},
    }
    # The attachment went up as a temporary file, then onto the request, public.
    temporary = fake.called("POST", "/attachTemporaryFile")
    attached = fake.called("POST", f"/request/{key}/attachment")
    assert len(temporary) == 1 and attached[0][3]["temporaryAttachmentIds"] == ["temp000001"]
    (stored,) = fake.attachments[key]
    assert (stored["filename"], stored["data"], stored["public"]) == ("pantallazo.png", PNG, True)
    # The transcript is an internal comment, cards masked; the form's details are there too
    # because this JSM form has no description field.
    (comment,) = fake.comments[key]
    assert comment["public"] is False
    assert "Cliente: no me carga el archivo de cartera, pagué con [tarjeta oculta]" in comment["body"]
    assert "Asistente: ¿A nombre de qué correo genero la solicitud?" in comment["body"]
    assert "Correo: ana@empresa.com" in comment["body"] and ticket.key in comment["body"]
    assert not shows_card(json.dumps(fake.calls))

    done = store.get(ticket.key)
    assert (done.delivery_status, done.jsm_key, done.jsm_status) == ("delivered", key, "Esperando por soporte")
    assert done.jsm_url.endswith(f"/portal/1/{key}") and done.delivered_at is not None
    listing = cli("tickets", "list", env=mapped).stdout
    assert f"{ticket.key}" in listing and f"JSM: {key} (entregado, Esperando por soporte)" in listing


def test_description_and_phone_go_to_their_jsm_fields(mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog) -> None:
    fake = jsm_server.fake
    fake.add_user("luis@colegio.edu.co")
    store = jsm_store()
    ticket = confirm(
        catalog, store, "conv-luis", email="luis@colegio.edu.co", request_type="acompanamiento_tecnico", item=None,
        description=f"necesito apoyo para conciliar pagos; la tarjeta {CARD} salió rechazada", phone="+573157778899",
    )
    worker(store).run_once()
    (_, _, _, body) = fake.called("POST", REQUEST)[0]
    values = body["requestFieldValues"]
    assert values["summary"] == f"[{ticket.key}] {ticket.request_type}"
    assert values["customfield_10060"] == "+573157778899"
    assert values["description"].startswith("necesito apoyo para conciliar pagos; la tarjeta [tarjeta oculta]")
    assert f"como {ticket.key}" in values["description"] and "Teléfono: +573157778899" in values["description"]
    (comment,) = fake.comments[next(iter(fake.requests))]
    assert "Correo:" not in comment["body"]  # the details are in the description already
    assert "No hay transcripción disponible" in comment["body"]


@pytest.mark.parametrize("create_customers", [True, False])
def test_unknown_customers_are_created_only_when_allowed(
    mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog, monkeypatch: pytest.MonkeyPatch, create_customers: bool
) -> None:
    fake = jsm_server.fake
    monkeypatch.setenv("JSM_CREATE_CUSTOMERS", str(create_customers).lower())
    store = jsm_store()
    confirm(catalog, store, "conv-new", email="nuevo@cliente.co")
    worker(store).run_once()
    (_, _, _, body) = fake.called("POST", REQUEST)[0]
    if create_customers:
        account = fake.account_of("nuevo@cliente.co")
        assert fake.called("POST", "/rest/servicedeskapi/customer")[0][3] == {"email": "nuevo@cliente.co", "displayName": "nuevo@cliente.co"}
        assert account in fake.desk_customers and body["raiseOnBehalfOf"] == account
    else:
        assert fake.account_of("nuevo@cliente.co") is None and "raiseOnBehalfOf" not in body
    assert store.list()[0].delivery_status == "delivered"


def test_a_site_account_not_yet_on_the_desk_is_added(mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = jsm_server.fake
    monkeypatch.setenv("JSM_CREATE_CUSTOMERS", "true")
    account = fake.add_user("sofia@empresa.com", customer=False)
    store = jsm_store()
    confirm(catalog, store, "conv-sofia", email="Sofia@Empresa.com")
    worker(store).run_once()
    assert fake.called("POST", "/servicedesk/7/customer")[0][3] == {"accountIds": [account]}
    assert not fake.called("POST", "/rest/servicedeskapi/customer")
    assert fake.called("POST", REQUEST)[0][3]["raiseOnBehalfOf"] == account


# -------------------------------------------------------------------- failures
def test_a_400_marks_the_ticket_failed_with_jsm_s_error(mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog) -> None:
    fake = jsm_server.fake
    fake.script("POST", REQUEST, Scripted(400, {"errorMessage": "Ítem: Specify a valid value for Ítem.",
                                                "i18nErrorMessage": {"i18nKey": "sd.field.invalid", "parameters": []}}))
    store = jsm_store()
    ticket = confirm(catalog, store, "conv-400")
    worker(store).run_once()
    failed = store.get(ticket.key)
    assert failed.delivery_status == "failed" and "Specify a valid value for Ítem." in failed.last_error
    assert worker(store).run_once() == 0  # not retried on its own

    listing = cli("tickets", "list", env=mapped).stdout
    assert "FALLIDO tras 1 intento(s)" in listing and "error: JSM rechazó la solicitud (400)" in listing
    assert "Entrega a JSM (todos los tickets): 1 fallido." in listing and "outbox retry --failed" in listing
    (data,) = json.loads(cli("tickets", "list", "--json", env=mapped).stdout)
    assert (data["delivery_status"], data["jsm_key"]) == ("failed", None)
    assert "Specify a valid value" in data["last_error"] and data["key"] == ticket.key

    retried = cli("outbox", "retry", "--failed", env=mapped)
    assert retried.returncode == 0 and ticket.key in retried.stdout
    worker(store).run_once()
    assert store.get(ticket.key).delivery_status == "delivered" and len(fake.requests) == 1


@pytest.mark.parametrize(
    "answer, error",
    [
        (Scripted(500, {"errorMessage": "Internal server error"}), "JSM falló (500)"),
        (Scripted(503, "<html>Service Unavailable</html>"), "JSM falló (503)"),
        (Scripted(429, {"errorMessage": "Rate limit exceeded."}, {"Retry-After": "1"}), "429"),
        (Scripted(201, {}, delay=6.0), "no respondió a tiempo"),
    ],
    ids=["500", "503", "429", "timeout"],
)
def test_transient_failures_are_retried_with_backoff(
    mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog, answer: Scripted, error: str
) -> None:
    fake = jsm_server.fake
    fake.script("POST", REQUEST, answer)
    store = jsm_store()
    ticket = confirm(catalog, store, "conv-retry")
    the_worker = worker(store, timeout=1.0 if answer.delay else 5.0)  # only the timeout case needs a short wait
    before = datetime.now(timezone.utc)
    the_worker.run_once()
    after = datetime.now(timezone.utc)
    waiting = store.get(ticket.key)
    assert waiting.delivery_status == "pending" and error in waiting.last_error and waiting.delivery_attempts == 1
    if answer.status == 429:  # Retry-After (1 s) from the call, although the backoff alone would say 0.05 s
        assert (waiting.next_attempt_at - before).total_seconds() >= 0.99
        assert (waiting.next_attempt_at - after).total_seconds() <= 1.0
    until(lambda: store.get(ticket.key).delivery_status == "delivered", the_worker.run_once)
    assert len(fake.requests) == 1 and store.get(ticket.key).last_error is None
    assert "pendiente" not in cli("tickets", "list", env=mapped).stdout


def test_bad_credentials_keep_tickets_waiting_until_fixed(mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog) -> None:
    store = jsm_store()
    ticket = confirm(catalog, store, "conv-401")
    worker(store, token="caducado").run_once()
    waiting = store.get(ticket.key)
    assert waiting.delivery_status == "pending" and "401" in waiting.last_error and "JSM_API_TOKEN" in waiting.last_error
    listing = cli("tickets", "list", env=mapped).stdout
    assert "JSM: pendiente (1 intento(s)" in listing and "último error: JSM rechazó las credenciales" in listing
    good = worker(store)
    until(lambda: store.get(ticket.key).delivery_status == "delivered", good.run_once)


def test_a_missing_mapping_keeps_tickets_waiting(jsm_env: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog) -> None:
    store = jsm_store()
    ticket = confirm(catalog, store, "conv-nomap")
    the_worker = worker(store)
    the_worker.run_once()
    assert "jsm sync" in store.get(ticket.key).last_error and store.get(ticket.key).delivery_status == "pending"
    write_mapping()  # the worker re-reads the file: no restart needed
    until(lambda: store.get(ticket.key).delivery_status == "delivered", the_worker.run_once)


def test_backoff_grows_and_honours_retry_after() -> None:
    settings = OutboxSettings(retry_base_seconds=30, retry_max_seconds=3600)
    delays = [retry_delay(n, settings) for n in (1, 2, 3, 10)]
    assert 22 <= delays[0] <= 30 and 45 <= delays[1] <= 60 and 90 <= delays[2] <= 120 and delays[3] <= 3600
    assert retry_delay(1, settings, retry_after=120) == 120


# ----------------------------------------------------------------- idempotency
@pytest.mark.parametrize("route", [REQUEST, TEMPORARY, ATTACH, COMMENT], ids=["request", "temporary-file", "attachment", "comment"])
def test_a_timeout_after_jsm_acted_never_duplicates(
    mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog, tmp_path: Path, route: str
) -> None:
    fake = jsm_server.fake
    fake.add_user("ana@empresa.com")
    fake.script("POST", route, Scripted(after=True, delay=6.0))  # JSM does it, the answer never arrives
    screenshot = tmp_path / "pantallazo.png"
    screenshot.write_bytes(PNG)
    store = jsm_store()
    ticket = confirm(catalog, store, "conv-ambiguous", attachment=screenshot)
    the_worker = worker(store, timeout=1.0)
    the_worker.run_once()
    assert store.get(ticket.key).delivery_status == "pending"
    until(lambda: store.get(ticket.key).delivery_status == "delivered", the_worker.run_once)
    (key,) = fake.requests
    assert [a["filename"] for a in fake.attachments[key]] == ["pantallazo.png"]
    assert len(fake.comments[key]) == 1
    assert store.get(ticket.key).jsm_key == key
    if route == REQUEST:
        assert fake.create_posts == 1
        searches = fake.called("GET", REQUEST)
        assert searches and searches[-1][2]["searchTerm"] == ticket.key and searches[-1][2]["requestOwnership"] == "ALL_REQUESTS"


def test_a_worker_that_died_mid_delivery_is_taken_over(mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog) -> None:
    """State is in the database: a new worker resumes after the dead one's lease ends."""
    fake = jsm_server.fake
    store = jsm_store()
    ticket = confirm(catalog, store, "conv-crash")
    # A lease a loaded machine keeps past the dead worker's JSM call (0.3 s did not always).
    (claim,) = OutboxQueue(store.url).claim_due("muerto", lease_seconds=2)
    dead = worker(store)
    dead.delivery._create(claim, dead.delivery.mapping.get().for_type(ticket.request_type_id))  # created, then killed
    assert worker(store).run_once() == 0  # still leased to the dead worker
    time.sleep(2.1)
    survivor = worker(store)
    assert survivor.run_once() == 1
    assert store.get(ticket.key).delivery_status == "delivered" and fake.create_posts == 1 and len(fake.comments) == 1


def test_two_workers_never_deliver_the_same_ticket(mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog) -> None:
    fake = jsm_server.fake
    store = jsm_store()
    tickets = [confirm(catalog, store, f"conv-{n}") for n in range(12)]
    workers = [worker(jsm_store()), worker(jsm_store())]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in workers]
    for thread in threads:
        thread.start()
    try:
        until(lambda: all(store.get(t.key).delivery_status == "delivered" for t in tickets))
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert fake.create_posts == 12 and len(fake.requests) == 12
    assert sorted(fake.summary(k).split("]")[0] + "]" for k in fake.requests) == sorted(f"[{t.key}]" for t in tickets)


def test_outage_nothing_lost_nothing_duplicated(mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog) -> None:
    """JSM is down while three customers confirm; when it returns, exactly three requests arrive."""
    fake = jsm_server.fake
    store = jsm_store()
    the_worker = worker(store, timeout=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=the_worker.run, args=(stop,))
    thread.start()
    try:
        jsm_server.down()
        keys = []
        for n in range(3):
            keys.append(confirm(catalog, store, f"conv-outage-{n}", email=f"cliente{n}@empresa.com").key)
            time.sleep(0.2)
        until(lambda: all(store.get(k).delivery_attempts >= 2 for k in keys))
        assert all(store.get(k).delivery_status in ("pending", "sending") for k in keys)
        assert "no se pudo conectar con JSM" in store.get(keys[0]).last_error
        assert fake.create_posts == 0
        jsm_server.up()
        until(lambda: all(store.get(k).delivery_status == "delivered" for k in keys))
    finally:
        stop.set()
        thread.join(10)
    assert fake.create_posts == 3 and len(fake.requests) == 3 and sum(len(c) for c in fake.comments.values()) == 3
    assert sorted(fake.summary(k)[:12] for k in fake.requests) == sorted(f"[{k}]" for k in keys)


# -------------------------------------------------------------- the store side
def test_a_database_from_an_earlier_version_keeps_working(tmp_path: Path) -> None:
    """The tickets table as the previous release created it gains the outbox columns at start-up."""
    path = tmp_path / "tickets.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE tickets (id INTEGER PRIMARY KEY AUTOINCREMENT, key VARCHAR(32) UNIQUE, idempotency_key VARCHAR(255) NOT NULL UNIQUE, "
            "category_id VARCHAR(100) NOT NULL, category VARCHAR(255) NOT NULL, request_type_id VARCHAR(100) NOT NULL, "
            "request_type VARCHAR(255) NOT NULL, item_id VARCHAR(100), item VARCHAR(255), email VARCHAR(320) NOT NULL, "
            "phone VARCHAR(32), description TEXT, original_text TEXT, redirected_from VARCHAR(100), attachments TEXT NOT NULL, "
            "channel VARCHAR(50) NOT NULL, conversation_id VARCHAR(255) NOT NULL, status VARCHAR(50) NOT NULL, "
            "created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL)"
        )
        db.execute(
            "INSERT INTO tickets (key, idempotency_key, category_id, category, request_type_id, request_type, email, attachments, "
            "channel, conversation_id, status, created_at, updated_at) VALUES ('ECO-000001', 'k-old', 'c', 'Cat', 'pago_en_linea', "
            "'Pago en línea', 'a@b.co', '[]', 'rest', 'conv-old', 'open', '2024-01-02 03:04:05.000000', '2024-01-02 03:04:05.000000')"
        )
    store = TicketStore(f"sqlite:///{path}", outbox=True)
    queue = OutboxQueue(f"sqlite:///{path}")
    (old,) = store.list()
    assert (old.key, old.delivery_status, old.jsm_key) == ("ECO-000001", "local", None)  # never sent on its own
    from tests.test_tickets import new_ticket

    new, _ = store.create(new_ticket(), "k-new")
    assert (new.key, new.delivery_status) == ("ECO-000002", "pending")
    assert [c.ticket.key for c in queue.claim_due("w")] == ["ECO-000002"]
    assert queue.requeue(["eco-000001"]) == ["ECO-000001"]  # the deployer may send old ones on purpose
    assert store.get("ECO-000001").delivery_status == "pending"


def test_local_backend_changes_nothing(tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TICKETS_BACKEND", raising=False)
    monkeypatch.setenv("TICKETS_DB_URL", f"sqlite:///{tmp_path / 'tickets.db'}")
    store = build_ticket_store(Settings.from_env(), catalog)
    ticket = confirm(catalog, store, "conv-local")
    assert ticket.delivery_status == "local" and OutboxQueue(store.url).claim_due("w") == []
    listing = cli("tickets", "list", env={"TICKETS_DB_URL": f"sqlite:///{tmp_path / 'tickets.db'}"}).stdout
    assert "JSM" not in listing
    refused = cli("outbox", "run", "--once", env={"TICKETS_BACKEND": "local", "TICKETS_DB_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert refused.returncode == 2 and "TICKETS_BACKEND=jsm" in refused.stdout


# --------------------------------------------------------- the worker process
def test_the_launcher_starts_the_worker_and_it_delivers(mapped: dict[str, str], jsm_server: FakeJsmServer, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.launcher import Servers, WorkerServer, child_env

    for name, value in {"OUTBOX_POLL_SECONDS": "0.2", "OUTBOX_RETRY_BASE_SECONDS": "0.2"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    entries = [s for s in Servers(settings).servers if isinstance(s, WorkerServer)]
    # The follow-up worker always runs; the outbox worker only with JSM as the help desk.
    assert [e.command[-3:] for e in entries] == [["bot", "followup", "run"], ["bot", "outbox", "run"]]
    entry = entries[1]
    store = jsm_store()
    ticket = confirm(catalog, store, "conv-process")
    entry.start(child_env(settings), None)
    try:
        until(entry.healthy, timeout=30)
        until(lambda: store.get(ticket.key).delivery_status == "delivered", timeout=30)
    finally:
        entry.stop()
    assert entry.exit_code() == 0  # SIGTERM: a clean stop
    assert len(jsm_server.fake.requests) == 1

    monkeypatch.setenv("TICKETS_BACKEND", "local")
    workers = [s for s in Servers(Settings.from_env()).servers if isinstance(s, WorkerServer)]
    assert [w.command[-3:] for w in workers] == [["bot", "followup", "run"]]


def test_the_worker_refuses_to_start_without_settings(mapped: dict[str, str]) -> None:
    broken = cli("outbox", "run", env={**mapped, "JSM_SITE_URL": ""})
    assert broken.returncode == 2 and "JSM_SITE_URL" in broken.stdout


# ------------------------------------------------------------ the whole assistant
@pytest.mark.servers
def test_a_conversation_reaches_jsm_and_the_customer_asks_its_status(
    model_path: Path, jsm_server: FakeJsmServer, catalog: Catalog, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m bot run` with JSM configured: chat, attachment, «Enviar», and the request is in JSM."""
    from bot.launcher import Servers
    from tests.conftest import REST_TOKEN, Chat, free_port
    from tests.fake_jsm import EMAIL, TOKEN

    data_dir = tmp_path_factory.mktemp("jsm-assistant")
    for name in ("TICKETS_DB_URL", "TRACKER_DB_URL", "JSM_MAPPING_FILE", "TEAMS_APP_ID", "TEAMS_APP_PASSWORD",
                 "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "BOT_DATA_DIR": str(data_dir), "RASA_PORT": str(free_port()), "ACTIONS_PORT": str(free_port()),
        "WEB_PORT": str(free_port()), "RASA_API_TOKEN": "token-de-pruebas", "REST_TOKEN": REST_TOKEN, "TICKETS_BACKEND": "jsm",
        "JSM_SITE_URL": jsm_server.url, "JSM_SERVICE_DESK_ID": DESK_ID, "JSM_EMAIL": EMAIL, "JSM_API_TOKEN": TOKEN,
        "JSM_CREATE_CUSTOMERS": "true", "OUTBOX_POLL_SECONDS": "0.3",
        "JSM_STATUS_TIMEOUT": "20",  # a loaded machine's status lookup is not the point here
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert cli("jsm", "sync", env=env).returncode == 0
    fake = jsm_server.fake

    with Servers(settings, log_path=data_dir / "servers.log"):
        chat = Chat(f"http://127.0.0.1:{settings.rasa_port}")
        evidence = AttachmentStore.from_settings(catalog, settings).save("captura-error.png", "image/png", PNG, owner=chat.sender)
        chat.say("el pse no me deja pagar, sale un error al volver al comercio desde ayer")
        assert "Recibí tu adjunto" in chat.text(chat.say("/attach", {"attachments": [{"id": evidence.id}]})), chat.dump()
        chat.say("tesoreria@colegio.edu.co")
        assert "Revisa tu solicitud" in chat.text(chat.say("+57 315 777 8899")), chat.dump()
        done = chat.text(chat.say("/affirm"))
        local_key = done.split("Creé tu solicitud ")[1].split(" ")[0]  # the customer has a key at once

        until(lambda: any(c["public"] is False for cs in fake.comments.values() for c in cs), timeout=60)
        (jsm_key,) = fake.requests
        request = fake.requests[jsm_key]
        assert request["fields"]["summary"].startswith(f"[{local_key}] Pago en línea")
        assert request["reporter"] == fake.account_of("tesoreria@colegio.edu.co")
        assert [a["filename"] for a in fake.attachments[jsm_key]] == ["captura-error.png"]
        (comment,) = fake.comments[jsm_key]
        assert comment["body"].startswith(f"Transcripción de la conversación con el asistente virtual — {local_key}")
        assert "Cliente: el pse no me deja pagar" in comment["body"] and "Cliente: tesoreria@colegio.edu.co" in comment["body"]
        assert "Asistente: Recibí tu adjunto: captura-error.png" in comment["body"]

        fake.set_status(jsm_key, "En curso")
        answer = chat.text(chat.say(f"¿cómo va mi solicitud {local_key}?"))
        assert jsm_key in answer and "En curso" in answer, chat.dump()
        def logged() -> bool:
            log = (data_dir / "servers.log").read_text(encoding="utf-8", errors="replace")
            return f"delivered {local_key} as {jsm_key}" in log

        until(logged, timeout=30)
