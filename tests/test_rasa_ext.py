"""Each change to a Rasa or library internal (bot.rasa_ext): refused on another version, applied, same behaviour.

For every module: its check passes on the pinned Rasa / Sanic / python-socketio
/ CPython (so an upgrade that changes what it replaces fails here), raises
PatchMismatch naming the module when handed a function with another
signature, and the change is in place after ``install``. Where cheap, the
replaced behaviour is compared with Rasa's own.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import rasa.shared.utils.common
from jsonschema import ValidationError
from rasa.core.actions.action import ActionSessionStart, RemoteAction
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput
from rasa.core.processor import MessageProcessor
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event
from rasa.utils.endpoints import EndpointConfig
from sanic import Sanic
from sanic.request import Request
from socketio import AsyncServer
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from bot.channels.guarded import GuardedRestInput, GuardedSocketIOInput
from bot.channels.web_session import SessionSigner
from bot.rasa_ext import (
    action_server_down,
    atomic_redis_lock,
    endpoint_sessions,
    event_types,
    request_json,
    socketio_handlers,
    sql_tracker_engine,
    validation_cache,
    warnings_options,
)
from bot.rasa_ext.installer import install
from bot.rasa_ext.patching import PatchMismatch, applied, expect_python, expect_release
from bot.settings import PROJECT_ROOT, Settings
from bot.settings.runtime import RuntimeSettings
from bot.stores import EnvTrackerStore
from bot.text import clean_text

ON = RuntimeSettings(rasa_extensions=True)
ALL = (
    "warnings_options", "log_masking", "action_server_down", "atomic_redis_lock", "request_json",
    "socketio_handlers", "session_carry", "validation_cache", "endpoint_sessions", "event_types",
    "sql_tracker_engine",
)  # fmt: skip
REPLACED = [
    (RemoteAction, "run", "action_server_down"),
    (MessageProcessor, "_run_action", "action_server_down"),
    (RemoteAction, "_validate_action_result", "validation_cache"),
    (EndpointConfig, "session", "endpoint_sessions"),
    (Event, "resolve_by_type", "event_types"),
    (ActionSessionStart, "run", "session_carry"),
]


@pytest.fixture(scope="module")
def installed() -> tuple[str, ...]:
    return install(ON)


# ------------------------------------------------------------------ install
def test_install_applies_every_change_once(installed: tuple[str, ...]) -> None:
    assert installed == ALL
    for owner, attribute, patch in REPLACED:
        assert applied(owner, attribute) == patch, (owner, attribute)
    before = [inspect.getattr_static(owner, attribute) for owner, attribute, _ in REPLACED]
    assert install(ON) == ALL
    after = [inspect.getattr_static(owner, attribute) for owner, attribute, _ in REPLACED]
    assert after == before, "a second install must not wrap again"
    assert RemoteAction.run.__wrapped__.__module__ == "rasa.core.actions.action", "one wrapper over Rasa's own"


def test_off_keeps_the_safety_net_and_leaves_the_rest_stock() -> None:
    """RASA_EXTENSIONS=off (benchmarks): a fresh process, since a patch cannot be taken back."""
    script = (
        "from bot.rasa_ext import applied\n"
        "from bot.rasa_ext.installer import install\n"
        "from bot.settings.runtime import RuntimeSettings\n"
        "from rasa.core.actions.action import RemoteAction\n"
        "from rasa.core.processor import MessageProcessor\n"
        "from rasa.shared.core.events import Event\n"
        "from rasa.utils.endpoints import EndpointConfig\n"
        "print(install(RuntimeSettings(rasa_extensions=False)))\n"
        "for owner, name in [(RemoteAction, 'run'), (MessageProcessor, '_run_action'),\n"
        "                    (RemoteAction, '_validate_action_result'), (EndpointConfig, 'session'),\n"
        "                    (Event, 'resolve_by_type')]:\n"
        "    print(name, applied(owner, name))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert "validation_cache" not in lines[0] and "action_server_down" in lines[0]
    assert lines[1:] == [
        "run action_server_down",
        "_run_action action_server_down",
        "_validate_action_result None",
        "session None",
        "resolve_by_type None",
    ]


def test_versions_outside_the_pinned_lines_are_refused() -> None:
    expect_release("action_server_down", "rasa", installed="3.6.21")
    with pytest.raises(PatchMismatch, match=r"bot\.rasa_ext\.action_server_down: rasa instalado es 3\.7\.0"):
        expect_release("action_server_down", "rasa", installed="3.7.0")
    with pytest.raises(PatchMismatch, match="sanic instalado es 22.3.0"):
        expect_release("request_json", "sanic", installed="22.3.0")
    with pytest.raises(PatchMismatch, match="Python es 3.11"):
        expect_python("warnings_options", (3, 11))
    expect_python("warnings_options")  # the interpreter running the tests


def test_a_mismatch_is_not_an_error_rasa_would_swallow() -> None:
    """Rasa builds an in-memory store instead of ours on AttributeError/ImportError."""
    assert not issubclass(PatchMismatch, (AttributeError, ImportError))


# ------------------------------------------------------- action_server_down
async def remote_run_of_another_version(self: Any, output_channel: Any, nlg: Any, tracker: Any) -> list[Any]:
    return []


async def run_action_of_another_version(self: Any, action: Any, tracker: Any, output_channel: Any) -> bool:
    return True


def test_action_server_down_checks_what_it_wraps(installed: tuple[str, ...]) -> None:
    action_server_down.check(RemoteAction.run, MessageProcessor._run_action)
    action_server_down.check(inspect.unwrap(RemoteAction.run), inspect.unwrap(MessageProcessor._run_action))
    with pytest.raises(PatchMismatch, match=r"action_server_down: rasa\.core\.actions\.action\.RemoteAction\.run"):
        action_server_down.check(remote_run_of_another_version, MessageProcessor._run_action)
    with pytest.raises(PatchMismatch, match=r"MessageProcessor\._run_action tiene la firma"):
        action_server_down.check(RemoteAction.run, run_action_of_another_version)


# --------------------------------------------------------- validation_cache
def test_validation_cache_checks_what_it_replaces() -> None:
    validation_cache.check(RemoteAction._validate_action_result, RemoteAction.action_response_format_spec)
    with pytest.raises(PatchMismatch, match="validation_cache"):
        validation_cache.check(lambda self, result, strict: True, RemoteAction.action_response_format_spec)
    with pytest.raises(PatchMismatch, match="action_response_format_spec"):
        validation_cache.check(RemoteAction._validate_action_result, lambda version: {})


@pytest.mark.parametrize(
    "response",
    [
        {"events": "no es una lista"},
        {"events": [{"event": 3}], "responses": []},
        {"responses": [{"text": "hola"}], "events": [{"event": "slot", "name": 1}]},
    ],
)
def test_an_invalid_response_raises_what_rasa_raises(installed: tuple[str, ...], response: dict[str, Any]) -> None:
    action = RemoteAction("action_prueba", None)
    rasa_validate = inspect.unwrap(RemoteAction._validate_action_result)
    with pytest.raises(ValidationError) as ours:
        action._validate_action_result(response)
    with pytest.raises(ValidationError) as rasas:
        rasa_validate(action, response)
    assert ours.value.message == rasas.value.message
    assert "Failed to validate Action server response" in ours.value.message
    assert list(ours.value.absolute_path) == list(rasas.value.absolute_path)
    assert action._validate_action_result({"events": [], "responses": []}) is True


# -------------------------------------------------------- endpoint_sessions
def test_endpoint_sessions_checks_what_it_replaces() -> None:
    endpoint_sessions.check(EndpointConfig.session, EndpointConfig.request)
    with pytest.raises(PatchMismatch, match="endpoint_sessions"):
        endpoint_sessions.check(lambda self, timeout: None, EndpointConfig.request)
    with pytest.raises(PatchMismatch, match=r"EndpointConfig\.request"):
        endpoint_sessions.check(EndpointConfig.session, lambda self, method="post": None)


def test_each_endpoint_keeps_one_open_session(installed: tuple[str, ...]) -> None:
    async def sessions() -> None:
        actions, other = EndpointConfig("http://127.0.0.1:9/webhook"), EndpointConfig("http://127.0.0.1:9/otro")
        async with actions.session() as first:
            pass
        async with actions.session() as again:
            pass
        async with other.session() as another:
            pass
        assert first is again and not first.closed, "the session outlives `async with`, as a kept pool"
        assert another is not first
        await first.close()
        async with actions.session() as fresh:
            assert fresh is not first and not fresh.closed, "a closed session is replaced"
        await fresh.close()
        await another.close()

    asyncio.run(sessions())


# -------------------------------------------------------------- event_types
def test_event_types_checks_what_it_replaces() -> None:
    event_types.check(Event.resolve_by_type, rasa.shared.utils.common.all_subclasses)
    with pytest.raises(PatchMismatch, match="event_types"):
        event_types.check(lambda type_name: None, rasa.shared.utils.common.all_subclasses)
    with pytest.raises(PatchMismatch, match="all_subclasses"):
        event_types.check(Event.resolve_by_type, lambda cls, deep: [])


def test_every_event_type_resolves_as_rasa_resolves_it(installed: tuple[str, ...]) -> None:
    rasa_resolve = inspect.unwrap(Event.resolve_by_type)
    names = {cls.type_name for cls in rasa.shared.utils.common.all_subclasses(Event)}
    assert len(names) > 20
    for name in names:
        assert Event.resolve_by_type(name) is rasa_resolve(name), name
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no-existe", Event) is Event
    with pytest.raises(ValueError, match="Unknown event name"):
        Event.resolve_by_type("no-existe")


# ------------------------------------------------------- sql_tracker_engine
def test_sql_tracker_engine_checks_what_it_replaces() -> None:
    sql_tracker_engine.check(SQLTrackerStore.__init__, SQLTrackerStore.session_scope)
    with pytest.raises(PatchMismatch, match="sql_tracker_engine"):
        sql_tracker_engine.check(lambda self, domain=None, url=None: None, SQLTrackerStore.session_scope)
    with pytest.raises(PatchMismatch, match="session_scope"):
        sql_tracker_engine.check(SQLTrackerStore.__init__, lambda self, readonly: None)
    with pytest.raises(PatchMismatch, match=r"\.engine y \.sessionmaker"):
        sql_tracker_engine.check_store(object())


def _journal_mode(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])


@pytest.mark.parametrize("extensions, mode, pooled", [("on", "wal", True), ("off", "delete", False)])
def test_the_embedded_tracker_is_pooled_wal_only_with_the_extensions(
    tmp_path: Path, extensions: str, mode: str, pooled: bool
) -> None:
    settings = Settings.from_env({"BOT_DATA_DIR": str(tmp_path), "RASA_EXTENSIONS": extensions})
    store = EnvTrackerStore(settings=settings)
    with store.session_scope() as session:  # a connection through the store's engine, as Rasa's reads
        session.execute(text("SELECT count(*) FROM events")).scalar()
    assert isinstance(store.engine.pool, QueuePool) is pooled
    assert _journal_mode(tmp_path / "tracker.db") == mode
    store.engine.dispose()


# -------------------------------------------------------- atomic_redis_lock
def test_atomic_redis_lock_checks_what_it_builds_on() -> None:
    atomic_redis_lock.verify()
    current = atomic_redis_lock.targets()
    with pytest.raises(PatchMismatch, match=r"atomic_redis_lock: rasa\.core\.lock\.TicketLock\.dumps"):
        atomic_redis_lock.check({**current, "rasa.core.lock.TicketLock.dumps": lambda self, indent: ""})
    with pytest.raises(PatchMismatch, match=r"LockStore\.issue_ticket no existe"):
        atomic_redis_lock.check({k: v for k, v in current.items() if not k.endswith("LockStore.issue_ticket")})

    # In use: tests/test_stores.py (lock_store_from_url, concurrent tickets on a real Redis).


# -------------------------------------------------------- socketio_handlers
def test_socketio_handlers_checks_what_it_relies_on() -> None:
    socketio_handlers.verify()
    with pytest.raises(PatchMismatch, match="socketio_handlers"):
        socketio_handlers.check(lambda self, event, handler=None: None, SocketIOInput.blueprint)
    with pytest.raises(PatchMismatch, match=r"SocketIOInput\.blueprint"):
        socketio_handlers.check(AsyncServer.on, lambda self, on_new_message, extra: None)
    with pytest.raises(PatchMismatch, match="AsyncServer.handlers"):
        socketio_handlers.registered(AsyncServer(), "/", "user_uttered")


async def _ignore(message: UserMessage) -> None:
    return None


def test_the_guarded_socketio_handlers_replace_rasas() -> None:
    channel = GuardedSocketIOInput(user_message_evt="user_uttered", bot_message_evt="bot_uttered")
    channel.signer = SessionSigner("clave-de-pruebas")
    channel.blueprint(_ignore)
    handlers = channel.sio.handlers["/"]
    assert "GuardedSocketIOInput.blueprint" in handlers["session_request"].__qualname__
    assert "GuardedSocketIOInput.blueprint" in handlers["user_uttered"].__qualname__


# ------------------------------------------------------------- request_json
class CopyingRequest(Request):
    """A Sanic that would hand the route a fresh parse of the body instead of the one set."""

    @property
    def json(self) -> Any:
        return dict(self.parsed_json or {})


def test_request_json_checks_what_it_relies_on() -> None:
    request_json.verify()
    with pytest.raises(PatchMismatch, match="request_json: sanic.request.Request.json ya no devuelve"):
        request_json.check(CopyingRequest)
    with pytest.raises(PatchMismatch, match="parsed_json"):
        request_json.check(type("OtraPeticion", (), {"__slots__": ("body",)}))


def test_rasa_reads_the_cleaned_rest_message() -> None:
    received: list[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        received.append(message)

    app = Sanic("prueba_request_json")
    channel = GuardedRestInput("token-de-pruebas")
    app.blueprint(channel.blueprint(on_new_message), url_prefix=f"/webhooks/{channel.url_prefix()}")  # as Rasa does
    raw = "hola\x1b[31m mundo\x00"
    _, reply = app.test_client.post(
        "/webhooks/rest/webhook",
        json={"sender": "cliente-1", "message": raw},
        headers={"Authorization": "Bearer token-de-pruebas"},
    )
    assert reply.status == 200
    assert [m.text for m in received] == [clean_text(raw)] and clean_text(raw) != raw


# --------------------------------------------------------- warnings_options
def test_warnings_options_checks_what_it_calls() -> None:
    warnings_options.check(warnings._processoptions)  # type: ignore[attr-defined]  # private: the point of the module
    with pytest.raises(PatchMismatch, match=r"warnings\._processoptions no existe"):
        warnings_options.check(None)
    with pytest.raises(PatchMismatch, match="warnings_options"):
        warnings_options.check(lambda args, strict: None)


def test_the_operators_filters_go_back_in_front_of_sanics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "warnoptions", ["ignore::DeprecationWarning"])
    with warnings.catch_warnings():
        warnings.filterwarnings("once", category=DeprecationWarning)  # what importing Sanic does
        warnings_options.honour_warning_options()
        action, _, category, _, _ = warnings.filters[0]
    assert (action, category) == ("ignore", DeprecationWarning)
