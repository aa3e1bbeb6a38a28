"""Shared fixtures: the catalog, isolated ticket stores, and the real servers.

The trained model comes from `make test` (one per run, reused by every test
that needs it); tests that need it skip with a clear reason only when run
outside make without a model, never silently pass.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from bot.catalog import Catalog, get_catalog
from bot.settings import PROJECT_ROOT, Settings, quiet_rasa_env
from bot.tickets import TicketStore

MODEL = PROJECT_ROOT / "models" / "ecollect.tar.gz"
# The REST channel's bearer token in every test run (bot/channels/guarded.py).
REST_TOKEN = "token-rest-de-pruebas"

# Every `rasa` subprocess a test starts inherits this: no telemetry, no Sentry.
os.environ.update(quiet_rasa_env())


_PYTHONS_LOG_RECORDS = logging.getLogRecordFactory()


@pytest.fixture(autouse=True)
def _log_records_as_python_makes_them() -> Iterator[None]:
    """Each test sees log records as Python makes them, even after a test installed bot.rasa_ext here.

    bot.rasa_ext masks customer data in the log records of the process it is
    installed in (the Rasa server); tests that install it in this process
    must not change what the other tests' log assertions read.
    """
    logging.setLogRecordFactory(_PYTHONS_LOG_RECORDS)
    yield
    logging.setLogRecordFactory(_PYTHONS_LOG_RECORDS)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return get_catalog()


@pytest.fixture
def store(tmp_path: Path) -> TicketStore:
    return TicketStore(f"sqlite:///{tmp_path / 'tickets.db'}")


@pytest.fixture(scope="session")
def model_path() -> Path:
    if not MODEL.exists():
        pytest.fail(f"{MODEL} no existe: ejecuta las pruebas con `make test`, que entrena el modelo.")
    return MODEL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Chat:
    """A customer talking to the real Rasa server over the REST channel."""

    base_url: str
    sender: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:10]}")
    token: str = field(default_factory=lambda: os.environ.get("REST_TOKEN", ""))
    transcript: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    def say(self, text: str, metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"sender": self.sender, "message": text}
        if metadata:
            body["metadata"] = metadata
        request = urllib.request.Request(
            f"{self.base_url}/webhooks/rest/webhook",
            data=json.dumps(body).encode("utf-8"),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            replies = json.loads(response.read())
        self.transcript.append((text, replies))
        return replies

    @staticmethod
    def text(replies: list[dict[str, Any]]) -> str:
        return "\n".join(r.get("text", "") for r in replies)

    @staticmethod
    def payloads(replies: list[dict[str, Any]]) -> list[str]:
        return [b["payload"] for r in replies for b in r.get("buttons", [])]

    def dump(self) -> str:
        lines = []
        for text, replies in self.transcript:
            lines.append(f">> {text}")
            lines.extend(f"   << {r.get('text', '')} {[b['title'] for b in r.get('buttons', [])]}" for r in replies)
        return "\n".join(lines)


def signed_web_session(web_port: int) -> str:
    """A conversation id for the web chat, issued by the web server as the widget gets it."""
    request = urllib.request.Request(f"http://127.0.0.1:{web_port}/api/sesion", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=20) as response:
        return str(json.loads(response.read())["session_id"])


@dataclass
class RunningAssistant:
    settings: Settings
    store: TicketStore
    twilio: Any = None  # tests.fake_twilio.FakeTwilio behind the WhatsApp channel
    mail: Any = None  # tests.smtp_server.SmtpServer: the real local SMTP server the assistant sends to
    servers: Any = None  # bot.launcher.Servers, for fault tests that stop and restart them
    backend: str = "embebido"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.rasa_port}"

    def chat(self) -> Chat:
        return Chat(self.base_url, token=REST_TOKEN)


BACKENDS = ("embebido", "postgresql+redis")


@dataclass
class Backend:
    """Where the servers keep conversations, tickets and locks for one test run."""

    name: str
    env: dict[str, str]
    cleanup: Any = None


def _postgres_databases(prefix: str) -> tuple[dict[str, str], Any]:
    """Fresh tracker and ticket databases on the test PostgreSQL server."""
    import uuid

    import psycopg2
    from sqlalchemy.engine import make_url

    admin_url = os.environ.get("TEST_POSTGRES_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not admin_url or not redis_url:
        pytest.fail(
            "TEST_POSTGRES_URL / TEST_REDIS_URL no están definidas: ejecuta las pruebas con `make test`, "
            "que instala y arranca PostgreSQL y Redis (scripts/ensure-services.sh)."
        )
    admin = make_url(admin_url)
    names = [f"{prefix}_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("tracker", "tickets")]
    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    import redis

    lock_db = redis.Redis.from_url(redis_url)
    lock_db.flushdb()

    def drop() -> None:
        connection = psycopg2.connect(admin_url)
        connection.autocommit = True
        with connection.cursor() as cursor:
            for name in names:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()

    def url(database: str) -> str:
        return admin.set(database=database).render_as_string(hide_password=False)

    env = {"TRACKER_DB_URL": url(names[0]), "TICKETS_DB_URL": url(names[1]), "REDIS_URL": redis_url}
    return env, drop


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "embebido":
        yield Backend(request.param, {})
        return
    env, drop = _postgres_databases("ecollect_test")
    try:
        yield Backend(request.param, env, drop)
    finally:
        drop()


@pytest.fixture(scope="session")
def assistant(model_path: Path, tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[RunningAssistant]:
    """The real action, Rasa and web servers, started once per test run and backend."""
    from bot.launcher import Servers
    from tests.fake_twilio import SID, TOKEN, start_fake_twilio
    from tests.smtp_server import SENDER, SmtpServer, running


    data_dir = tmp_path_factory.mktemp(f"assistant-{backend.name.replace('+', '-')}")
    saved = dict(os.environ)
    rasa_port = free_port()
    twilio, stop_twilio = start_fake_twilio()
    mail = SmtpServer(free_port())
    mail_server = running(mail, auth_require_tls=False)
    next(mail_server)
    for name in ("TICKETS_DB_URL", "TRACKER_DB_URL", "REDIS_URL", "TEAMS_APP_ID", "TEAMS_APP_PASSWORD"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "BOT_DATA_DIR": str(data_dir),
            "RASA_PORT": str(rasa_port),
            "ACTIONS_PORT": str(free_port()),
            "WEB_PORT": str(free_port()),
            "RASA_API_TOKEN": "token-de-pruebas",
            "REST_TOKEN": REST_TOKEN,
            # The review app counts an open form as abandoned at once (default: 30 min idle).
            "REVIEW_ABANDON_MINUTES": "0",
            # WhatsApp on, against the local fake of Twilio; Teams stays off.
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_WHATSAPP_NUMBER": "whatsapp:+14155238886",
            "TWILIO_API_URL": twilio.api_url,
            "WHATSAPP_CONTENT_API_URL": twilio.content_url,
            "WHATSAPP_PUBLIC_URL": f"http://127.0.0.1:{rasa_port}/webhooks/whatsapp/webhook",
            # Mail on, to a real SMTP server on loopback (plain: it has no certificate).
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(mail.port),
            "SMTP_FROM": SENDER,
            "SMTP_STARTTLS": "false",
            **backend.env,
        }
    )
    settings = Settings.from_env()
    servers = Servers(settings, log_path=data_dir / "servers.log")
    try:
        servers.start()
        servers.wait_ready()
        yield RunningAssistant(settings, TicketStore(settings.tickets_db_url), twilio, mail, servers, backend.name)
    finally:
        servers.stop()
        stop_twilio()
        mail_server.close()
        os.environ.clear()
        os.environ.update(saved)
