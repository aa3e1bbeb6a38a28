"""Rasa's tracker and lock stores, configured from the environment.

endpoints.yml can only substitute strings, but choosing SQLite or PostgreSQL,
and an in-memory or Redis lock, needs logic. These classes are named in
endpoints.yml and read the same settings as the rest of the project:

- ``TRACKER_DB_URL`` (any SQLAlchemy URL; default SQLite in ``BOT_DATA_DIR``),
- ``REDIS_URL`` (``redis://[:password@]host:port/db``; default: in-memory
  lock, valid for a single Rasa process only).

The tracker store also masks card numbers in every event before it is
written, so they never reach the database.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Callable, Optional, Text, TypeVar
from urllib.parse import unquote, urlparse

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, InMemoryLockStore, LockStore, RedisLockStore
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import BotUttered, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import create_engine
from sqlalchemy import event as sa_event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from bot.privacy import mask_cards, mask_cards_deep
from bot.settings import Settings
from bot.text import clean_text

logger = logging.getLogger(__name__)


def mask_event(event: Event) -> None:
    """Card numbers and control characters out of what was said, in place.

    Metadata too, on every event: channels put what the customer sent there
    (a file's name, a profile name), and it is stored with the event.
    """
    if isinstance(event.metadata, dict) and event.metadata:
        event.metadata = mask_cards_deep(event.metadata)
    if isinstance(event, UserUttered):
        event.text = mask_cards(clean_text(event.text or ""))
        event.parse_data = mask_cards_deep(event.parse_data)
    elif isinstance(event, BotUttered):
        event.text = mask_cards(event.text or "") if event.text else event.text
        event.data = mask_cards_deep(event.data)
    elif isinstance(event, SlotSet):
        event.value = mask_cards_deep(event.value)


def _pooled_wal_sqlite(store: SQLTrackerStore, url: str) -> None:
    """A pooled engine in WAL mode with NORMAL sync for the embedded tracker.

    Rasa's engine for SQLite opens a new connection for every operation
    (SQLAlchemy's NullPool) and commits with a rollback journal and FULL
    sync: together 16% of the Rasa process's CPU under ``make bench-load``.
    Here connections are pooled and the journal is WAL with NORMAL sync,
    which survives an application crash intact (only an OS crash or power
    loss can drop the last commits, and the database stays consistent);
    readers such as the review app no longer block the writer.
    """
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, poolclass=QueuePool, pool_size=5, max_overflow=5
    )

    @sa_event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    store.engine.dispose()
    store.engine = engine
    store.sessionmaker = sessionmaker(bind=engine)


class EnvTrackerStore(SQLTrackerStore):
    """SQL tracker store at ``TRACKER_DB_URL``; card numbers masked on save."""

    def __init__(self, domain: Any = None, event_broker: Any = None, **_: Any) -> None:
        url = make_url(Settings.from_env().tracker_db_url)
        dialect = url.drivername
        if dialect.startswith("sqlite"):
            database = url.database or ""
            if database:
                os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
            super().__init__(domain=domain, dialect="sqlite", db=database, event_broker=event_broker)
            _pooled_wal_sqlite(self, f"sqlite:///{database}")
        else:
            super().__init__(
                domain=domain,
                dialect=dialect,
                host=url.host,
                port=url.port,
                db=url.database or "rasa",
                username=url.username,
                password=url.password,
                event_broker=event_broker,
                query=dict(url.query) or None,
            )
        logger.info("Tracker store: %s", url.render_as_string(hide_password=True))

    async def save(self, tracker: DialogueStateTracker) -> None:
        for event in tracker.events:
            mask_event(event)
        await super().save(tracker)


T = TypeVar("T")


class AtomicRedisLockStore(RedisLockStore):
    """Rasa's Redis lock store, with its read-modify-write steps made atomic.

    Rasa 3.6 issues, finishes and cleans up tickets by reading the lock from
    Redis, changing it and writing it back. Two Rasa processes doing that at
    once can both take the same ticket and handle one conversation's messages
    at the same time, which loses events. Each step here runs as a Redis
    transaction (WATCH/MULTI) and is retried if the lock changed meanwhile.
    """

    def _transact(self, conversation_id: Text, change: Callable[[Optional[TicketLock]], tuple[Optional[TicketLock], T]]) -> T:
        key = self.key_prefix + conversation_id
        while True:
            with self.red.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    current = TicketLock.from_dict(json.loads(raw)) if raw else None
                    updated, result = change(current)
                    pipe.multi()
                    if updated is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, updated.dumps())
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def change(lock: Optional[TicketLock]) -> tuple[Optional[TicketLock], int]:
            lock = lock or TicketLock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        return self._transact(conversation_id, change)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        def change(lock: Optional[TicketLock]) -> tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._transact(conversation_id, change)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        def change(lock: Optional[TicketLock]) -> tuple[Optional[TicketLock], None]:
            if lock is None:
                return None, None
            lock.remove_ticket_for(ticket_number)
            return (lock if lock.is_someone_waiting() else None), None

        self._transact(conversation_id, change)


def lock_store_from_url(url: Optional[str]) -> LockStore:
    if not url:
        return InMemoryLockStore()
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ValueError(f"REDIS_URL debe empezar por redis:// o rediss:// (es {parsed.scheme!r})")
    database = (parsed.path or "/1").lstrip("/") or "1"
    return AtomicRedisLockStore(
        host=parsed.hostname or "localhost",
        port=parsed.port or 6379,
        db=int(database),
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        use_ssl=parsed.scheme == "rediss",
        key_prefix="soporteecollect",  # Rasa accepts only alphanumeric prefixes
    )


class EnvLockStore:
    """Redis lock store when ``REDIS_URL`` is set, in-memory otherwise.

    Rasa instantiates the class named in endpoints.yml; ``__new__`` hands it
    the real lock store, so no wrapper sits in the hot path.
    """

    def __new__(cls, endpoint_config: Any = None, **_: Any) -> LockStore:  # type: ignore[misc]
        store = lock_store_from_url(os.environ.get("REDIS_URL"))
        logger.info("Lock store: %s", type(store).__name__)
        return store
