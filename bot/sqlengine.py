"""SQLAlchemy engines shared by the ticket store and the review tables, and their tables created once.

One engine (and connection pool) per URL per process; SQLite files get their
folder created and a generous lock timeout, since several processes (action
server, web server, delivery worker) write to the same file.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def shared_engine(url: str) -> Engine:
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            # hide_parameters: a database error's text (logged, shown to operators)
            # never carries the values bound to the statement: customers' words.
            kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": True, "hide_parameters": True}
            if url.startswith("sqlite"):
                path = url.split("///", 1)[-1]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
            engine = create_engine(url, **kwargs)
            _engines[url] = engine
        return engine


_Moment = TypeVar("_Moment", datetime, Optional[datetime])


def as_utc(moment: _Moment) -> _Moment:
    """SQLite hands datetimes back without their time zone; everything the project stores is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


def db_complaint(exc: SQLAlchemyError) -> str:
    """The database's own complaint, for logs and Spanish errors, never the statement's parameters (customers' data)."""
    return str(getattr(exc, "orig", None) or type(exc).__name__)


def created_meanwhile(exc: SQLAlchemyError) -> bool:
    """A concurrent CREATE won: SQLite's «already exists»; PostgreSQL's DuplicateTable or pg_class/pg_type row."""
    message = str(exc).lower()
    return "already exists" in message or "duplicate key" in message


class SchemaOnce:
    """A store's tables created on its first use, once per object, safe against other processes doing the same.

    Nothing connects when a store is built, so one built while its database
    is down works as soon as the database is back. Several processes (action
    server, web server, workers) start on the same empty database: a CREATE
    that another one won is looked at again, anything else (the database is
    down) is raised at once as the ``SQLAlchemyError`` it is, for the store
    to word in Spanish. ``upgrade`` brings tables of an earlier version up
    to date after they exist.
    """

    def __init__(
        self,
        engine: Engine,
        metadata: MetaData,
        upgrade: Optional[Callable[[Engine], None]] = None,
        attempts: int = 3,
    ) -> None:
        self.engine = engine
        self.metadata = metadata
        self.upgrade = upgrade
        self.attempts = attempts
        self._ready = False
        self._lock = threading.Lock()

    def ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            for attempt in range(self.attempts):
                try:
                    self.metadata.create_all(self.engine)
                    if self.upgrade is not None:
                        self.upgrade(self.engine)
                    break
                except SQLAlchemyError as exc:
                    if attempt == self.attempts - 1 or not created_meanwhile(exc):
                        raise
            self._ready = True
