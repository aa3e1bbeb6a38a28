"""The ``tickets`` table: its columns, its upgrades, and how a row becomes a ``Ticket``.

The ticket repository (store.py), the JSM outbox queue (outbox_queue.py) and
the JSM status cache (status_cache.py) are three views of this one table, so
a ticket's delivery state lives next to it and survives restarts.

A ticket's fields are named once, in bot/tickets/model.py: every field of
``NewTicket`` is written to the column of the same name and every field of
``Ticket`` is read back from it (``row_values`` / ``ticket_of``). Adding a
field is that one line plus its column here; a field without a column stops
the import. Databases created by earlier versions get new columns at
start-up (only nullable ones are ever added).
"""

from __future__ import annotations

import json
import logging
from dataclasses import MISSING, asdict, fields
from datetime import datetime, timezone
from typing import Any, Callable, ContextManager, Optional

from sqlalchemy import Column, DateTime, Index, Integer, String, Text, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, declarative_base, sessionmaker

from bot.sqlengine import SchemaOnce, as_utc, shared_engine
from bot.tickets.errors import TicketStoreError
from bot.tickets.model import Attachment, NewTicket, Ticket

logger = logging.getLogger(__name__)


Base: Any = declarative_base()  # Any: SQLAlchemy 1.4's declarative base is built at run time


class TicketRow(Base):
    __tablename__ = "tickets"

    id = Column(Integer, primary_key=True, autoincrement=True)
    key = Column(String(32), unique=True, index=True)
    idempotency_key = Column(String(255), unique=True, nullable=False)
    category_id = Column(String(100), nullable=False)
    category = Column(String(255), nullable=False)
    request_type_id = Column(String(100), nullable=False)
    request_type = Column(String(255), nullable=False)
    item_id = Column(String(100))
    item = Column(String(255))
    email = Column(String(320), nullable=False, index=True)
    phone = Column(String(32))
    description = Column(Text)
    original_text = Column(Text)
    redirected_from = Column(String(100))
    articles_shown = Column(Text)  # added to older databases by add_missing_columns
    attachments = Column(Text, nullable=False, default="[]")  # JSON list of Attachment
    channel = Column(String(50), nullable=False)
    conversation_id = Column(String(255), nullable=False, index=True)
    status = Column(String(50), nullable=False, default="open")
    created_at = Column(DateTime(timezone=True), nullable=False)
    updated_at = Column(DateTime(timezone=True), nullable=False)
    # Outbox columns (added to older databases by add_missing_columns).
    # NULL delivery_status reads as LOCAL: tickets from before the outbox.
    delivery_status = Column(String(20))
    delivery_attempts = Column(Integer, default=0)
    next_attempt_at = Column(DateTime(timezone=True))
    claimed_by = Column(String(100))
    claimed_until = Column(DateTime(timezone=True))
    last_error = Column(Text)
    delivery_progress = Column(Text)  # JSON: which delivery steps are done
    delivered_at = Column(DateTime(timezone=True))
    jsm_key = Column(String(50))
    jsm_url = Column(String(500))
    jsm_status = Column(String(255))
    jsm_status_at = Column(DateTime(timezone=True))

    __table_args__ = (Index("ix_tickets_delivery_due", "delivery_status", "next_attempt_at"),)


_WITHOUT_COLUMN = {f.name for f in fields(Ticket)} - set(TicketRow.__table__.columns.keys())
if _WITHOUT_COLUMN:
    raise RuntimeError(f"Ticket fields without a column in bot/tickets/table.py: {sorted(_WITHOUT_COLUMN)}")

# Fields stored in another shape than the model's: (to the column, back to the field).
_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "attachments": (
        lambda items: json.dumps([asdict(a) for a in items], ensure_ascii=False),
        lambda raw: tuple(Attachment.from_dict(a) for a in json.loads(raw or "[]")),
    ),
}


def now() -> datetime:
    return datetime.now(timezone.utc)


def row_values(ticket: NewTicket) -> dict[str, Any]:
    """The columns of a new ticket: every ``NewTicket`` field, by name."""
    values = {}
    for spec in fields(NewTicket):
        value = getattr(ticket, spec.name)
        encode = _CODECS.get(spec.name)
        values[spec.name] = encode[0](value) if encode else value
    return values


def ticket_of(row: TicketRow) -> Ticket:
    """The ticket a row holds: every ``Ticket`` field from its column, NULL read as the field's default."""
    values = {}
    for spec in fields(Ticket):
        value = getattr(row, spec.name)
        codec = _CODECS.get(spec.name)
        if codec:
            value = codec[1](value)
        elif isinstance(value, datetime):
            value = as_utc(value)
        elif value is None and spec.default is not MISSING:
            value = spec.default
        values[spec.name] = value
    return Ticket(**values)


def add_missing_columns(engine: Engine) -> None:
    """Bring a tickets table from an earlier version up to date.

    Only nullable columns are ever added, so ``ALTER TABLE ... ADD COLUMN`` is
    enough on SQLite and PostgreSQL alike; a concurrent process adding the
    same column first is harmless.
    """
    table = TicketRow.__table__
    present = {c["name"] for c in inspect(engine).get_columns(table.name)}
    for column in table.columns:
        if column.name in present:
            continue
        ddl = f"ALTER TABLE {table.name} ADD COLUMN {column.name} {column.type.compile(dialect=engine.dialect)}"
        try:
            with engine.begin() as connection:
                connection.execute(text(ddl))
            logger.info("tickets table: added column %s", column.name)
        except SQLAlchemyError:
            still_missing = column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}
            if still_missing:
                raise
    for index in table.indexes:
        index.create(engine, checkfirst=True)


class TicketTable:
    """Sessions on the tickets table at one URL, every database failure turned into ``TicketStoreError``.

    Nothing connects here: an object built while its database is down works
    as soon as the database is back. The schema is created (and upgraded) on
    first use, once per object; the composition root builds one per process.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = shared_engine(url)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False, future=True)
        self._schema = SchemaOnce(self.engine, Base.metadata, upgrade=add_missing_columns)

    def _ensure_schema(self) -> None:
        try:
            self._schema.ensure()
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo abrir el almacén de tickets: {exc}") from exc

    def session(self) -> Session:
        self._ensure_schema()
        return self._sessions()

    def begin(self) -> ContextManager[Session]:
        """A session in a transaction, committed when the block ends without an error."""
        self._ensure_schema()
        return self._sessions.begin()

    def one(self, condition: Any) -> Optional[Ticket]:
        try:
            with self.session() as session:
                row = session.execute(select(TicketRow).where(condition)).scalar_one_or_none()
                return ticket_of(row) if row is not None else None
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo leer el almacén de tickets: {exc}") from exc

    def write(self, what: str, statement: Any) -> int:
        """Run one UPDATE; returns how many rows it changed. ``what`` completes «no se pudo …»."""
        try:
            with self.begin() as session:
                return int(session.execute(statement.execution_options(synchronize_session=False)).rowcount)
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo {what}: {exc}") from exc
