"""A pooled SQLite engine in WAL mode for the embedded tracker store.

Replaces, after construction, the ``engine`` and ``sessionmaker`` attributes
of a ``rasa.core.tracker_store.SQLTrackerStore`` (``bot.stores.EnvTrackerStore``
calls ``use_pooled_wal_engine`` on SQLite only).

Why: Rasa's engine for SQLite opens a new connection for every operation
(SQLAlchemy's NullPool) and commits with a rollback journal and FULL sync:
together 16% of the Rasa process's CPU under ``make bench-load``. Here
connections are pooled and the journal is WAL with NORMAL sync, which survives
an application crash intact (only an OS crash or power loss can drop the last
commits, and the database stays consistent); readers such as the review app
no longer block the writer. Rasa has already created its tables through its
own engine; the new one opens the same file.
Performance: used only with ``RASA_EXTENSIONS`` on (the default).
"""

from __future__ import annotations

from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from sqlalchemy import create_engine
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from bot.rasa_ext.patching import expect_release, expect_signature, mismatch

PATCH = "sql_tracker_engine"
POOL_SIZE = 5

INIT = "rasa.core.tracker_store.SQLTrackerStore.__init__"
INIT_SIGNATURE = (
    "(self, domain: 'Optional[Domain]' = None, dialect: 'Text' = 'sqlite', host: 'Optional[Text]' = None, "
    "port: 'Optional[int]' = None, db: 'Text' = 'rasa.db', username: 'Text' = None, password: 'Text' = None, "
    "event_broker: 'Optional[EventBroker]' = None, login_db: 'Optional[Text]' = None, query: 'Optional[Dict]' = None, "
    "**kwargs: 'Dict[Text, Any]') -> 'None'"
)
# Every read and write of the store goes through this, with the swapped sessionmaker.
SESSION_SCOPE = "rasa.core.tracker_store.SQLTrackerStore.session_scope"
SESSION_SCOPE_SIGNATURE = "(self) -> \"Generator['Session', None, None]\""


def check(init: Any, session_scope: Any) -> None:
    """Raises PatchMismatch unless Rasa's SQL tracker store is built the way this module was written for."""
    expect_release(PATCH, "rasa")
    expect_release(PATCH, "SQLAlchemy")
    expect_signature(PATCH, INIT, init, INIT_SIGNATURE)
    expect_signature(PATCH, SESSION_SCOPE, session_scope, SESSION_SCOPE_SIGNATURE)


def verify() -> None:
    """``check`` against the Rasa installed."""
    check(SQLTrackerStore.__init__, SQLTrackerStore.session_scope)


def check_store(store: Any) -> None:
    """Raises PatchMismatch unless the built store keeps its engine where this module swaps it."""
    engine, maker = getattr(store, "engine", None), getattr(store, "sessionmaker", None)
    if not isinstance(engine, Engine) or not isinstance(maker, sessionmaker):
        raise mismatch(PATCH, "SQLTrackerStore ya no guarda su motor en .engine y .sessionmaker")


def use_pooled_wal_engine(store: SQLTrackerStore, database: str) -> None:
    """Give ``store`` (SQLite at the file ``database``) a pooled engine in WAL mode with NORMAL sync."""
    verify()
    check_store(store)
    engine = create_engine(
        f"sqlite:///{database}",
        connect_args={"check_same_thread": False, "timeout": 30},
        poolclass=QueuePool,
        pool_size=POOL_SIZE,
        max_overflow=POOL_SIZE,
    )
    sa_event.listen(engine, "connect", _wal_with_normal_sync)
    store.engine.dispose()
    store.engine = engine
    store.sessionmaker = sessionmaker(bind=engine)


def _wal_with_normal_sync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
