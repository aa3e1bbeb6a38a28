"""Rasa's tracker and lock stores, configured from the settings.

endpoints.yml can only substitute strings, but choosing SQLite or PostgreSQL,
and an in-memory or Redis lock, needs logic. These classes are named in
endpoints.yml and read the same settings as the rest of the project:

- ``TRACKER_DB_URL`` (any SQLAlchemy URL; default SQLite in ``BOT_DATA_DIR``),
- ``REDIS_URL`` (``redis://[:password@]host:port/db``; default: in-memory
  lock, valid for a single Rasa process only).

The tracker store also masks card numbers in every event before it is
written, so they never reach the database. Rasa builds it at start-up in
every process, before the first message, whichever way it was started: so it
installs the project's changes to Rasa (``bot.rasa_ext``), and ``rasa run``
with endpoints.yml behaves as ``make run``.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional
from urllib.parse import unquote, urlparse

from rasa.core.lock_store import InMemoryLockStore, LockStore
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import BotUttered, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.engine import make_url

from bot.privacy import mask_cards, mask_cards_deep
from bot.rasa_ext.atomic_redis_lock import AtomicRedisLockStore
from bot.rasa_ext.installer import install
from bot.rasa_ext.sql_tracker_engine import use_pooled_wal_engine
from bot.settings import Settings
from bot.text import clean_text

__all__ = ["AtomicRedisLockStore", "EnvLockStore", "EnvTrackerStore", "lock_store_from_url", "mask_event"]

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


class EnvTrackerStore(SQLTrackerStore):
    """SQL tracker store at ``TRACKER_DB_URL``; card numbers masked on save.

    Rasa passes only what endpoints.yml says; ``settings`` is for tests, and
    without it the process's settings are read here, as at any entry point.
    """

    def __init__(
        self, domain: Any = None, event_broker: Any = None, settings: Optional[Settings] = None, **_: Any
    ) -> None:
        settings = settings or Settings.from_env()
        install(settings.runtime)
        url = make_url(settings.tracker_db_url)
        dialect = url.drivername
        if dialect.startswith("sqlite"):
            database = url.database or ""
            if database:
                os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
            super().__init__(domain=domain, dialect="sqlite", db=database, event_broker=event_broker)
            if settings.runtime.rasa_extensions:
                use_pooled_wal_engine(self, database)
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

    def __new__(cls, endpoint_config: Any = None, **_: Any) -> LockStore:
        store = lock_store_from_url(Settings.from_env().stores.redis_url)
        logger.info("Lock store: %s", type(store).__name__)
        return store
