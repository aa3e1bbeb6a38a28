"""The embedded ticket store: SQLAlchemy over SQLite by default, any URL otherwise.

Creation is idempotent on a caller-supplied key (conversation + the
confirmation's id), so neither a retried action nor a «sí» repeated after a
lost reply opens a second ticket for one confirmation. The human-readable key (ECO-000123) derives from the row id,
which every SQL backend hands out without races.

The same table is the outbox towards Jira Service Management: a ticket is
stored first and delivered later by a worker (bot/tickets/outbox.py), so the
delivery state lives next to the ticket and survives restarts. Databases
created by earlier versions get the new columns at start-up.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Optional

from sqlalchemy import (
    Column, DateTime, Index, Integer, String, Text, and_, func, inspect, or_, select, text, update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, declarative_base, sessionmaker

from bot.sqlengine import shared_engine
from bot.tickets.model import DELIVERED, FAILED, LOCAL, PENDING, SENDING, Attachment, NewTicket, Ticket

logger = logging.getLogger(__name__)

Base = declarative_base()


class TicketStoreError(RuntimeError):
    """The store could not be reached or written; nothing was half-written."""


class TicketRow(Base):  # type: ignore[misc,valid-type]
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
    attachments = Column(Text, nullable=False, default="[]")
    channel = Column(String(50), nullable=False)
    conversation_id = Column(String(255), nullable=False, index=True)
    status = Column(String(50), nullable=False, default="open")
    created_at = Column(DateTime(timezone=True), nullable=False)
    updated_at = Column(DateTime(timezone=True), nullable=False)
    # Outbox columns (added to older databases by _add_missing_columns).
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


@dataclass
class Claim:
    """A ticket one worker holds for delivery, with the steps already done."""

    ticket: Ticket
    worker: str
    progress: dict[str, Any] = field(default_factory=dict)


def _aware(moment: datetime) -> datetime:
    """SQLite drops tzinfo; everything stored is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _maybe_aware(moment: Optional[datetime]) -> Optional[datetime]:
    return _aware(moment) if moment is not None else None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _add_missing_columns(engine: Engine) -> None:
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


def _to_ticket(row: TicketRow) -> Ticket:
    return Ticket(
        key=row.key,
        category_id=row.category_id,
        category=row.category,
        request_type_id=row.request_type_id,
        request_type=row.request_type,
        item_id=row.item_id,
        item=row.item,
        email=row.email,
        phone=row.phone,
        description=row.description,
        original_text=row.original_text,
        redirected_from=row.redirected_from,
        attachments=tuple(Attachment.from_dict(a) for a in json.loads(row.attachments or "[]")),
        channel=row.channel,
        conversation_id=row.conversation_id,
        status=row.status,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
        delivery_status=row.delivery_status or LOCAL,
        delivery_attempts=int(row.delivery_attempts or 0),
        next_attempt_at=_maybe_aware(row.next_attempt_at),
        last_error=row.last_error,
        delivered_at=_maybe_aware(row.delivered_at),
        jsm_key=row.jsm_key,
        jsm_url=row.jsm_url,
        jsm_status=row.jsm_status,
        jsm_status_at=_maybe_aware(row.jsm_status_at),
    )


def _due(now: datetime) -> Any:
    """Rows a worker may take: pending and due, or held by a worker whose lease ran out."""
    return or_(
        and_(TicketRow.delivery_status == PENDING, TicketRow.next_attempt_at <= now),
        and_(TicketRow.delivery_status == SENDING, TicketRow.claimed_until < now),
    )


class TicketStore:
    """Tickets in a SQL database reachable by URL."""

    _schema_ready: set[str] = set()
    _lock = threading.Lock()

    def __init__(self, url: str, prefix: str = "ECO", outbox: bool = False) -> None:
        """``outbox``: new tickets wait for delivery to JSM (TICKETS_BACKEND=jsm).

        Nothing connects here: a store built while its database is down works
        as soon as the database is back, and every failure in between reaches
        the caller as ``TicketStoreError``.
        """
        self.url = url
        self.prefix = prefix
        self.outbox = outbox
        self._engine: Engine = shared_engine(url)
        self._sessions = sessionmaker(bind=self._engine, expire_on_commit=False, future=True)

    def _ensure_schema(self) -> None:
        """Tables created (and old ones upgraded) once per URL per process."""
        if self.url in self._schema_ready:
            return
        with self._lock:
            if self.url in self._schema_ready:
                return
            try:
                Base.metadata.create_all(self._engine)
                _add_missing_columns(self._engine)
            except SQLAlchemyError as exc:
                raise TicketStoreError(f"no se pudo abrir el almacén de tickets: {exc}") from exc
            self._schema_ready.add(self.url)

    def _session(self) -> Session:
        self._ensure_schema()
        return self._sessions()

    def _begin(self) -> Any:
        self._ensure_schema()
        return self._sessions.begin()

    @classmethod
    def from_settings(cls) -> "TicketStore":
        from bot.catalog import get_catalog
        from bot.settings import Settings
        from bot.tickets.jsm import tickets_backend

        return cls(
            Settings.from_env().tickets_db_url,
            prefix=get_catalog().ticket_prefix,
            outbox=tickets_backend() == "jsm",
        )

    # ------------------------------------------------------------------ write
    def create(self, ticket: NewTicket, idempotency_key: str) -> tuple[Ticket, bool]:
        """Store ``ticket`` once per ``idempotency_key``.

        Returns the ticket and whether it was created now (False when the key
        had already produced one).
        """
        existing = self._by_idempotency_key(idempotency_key)
        if existing is not None:
            return existing, False
        now = datetime.now(timezone.utc)
        row = TicketRow(
            idempotency_key=idempotency_key,
            category_id=ticket.category_id,
            category=ticket.category,
            request_type_id=ticket.request_type_id,
            request_type=ticket.request_type,
            item_id=ticket.item_id,
            item=ticket.item,
            email=ticket.email,
            phone=ticket.phone,
            description=ticket.description,
            original_text=ticket.original_text,
            redirected_from=ticket.redirected_from,
            attachments=json.dumps(
                [a.__dict__ for a in ticket.attachments], ensure_ascii=False
            ),
            channel=ticket.channel,
            conversation_id=ticket.conversation_id,
            status="open",
            created_at=now,
            updated_at=now,
            delivery_status=PENDING if self.outbox else LOCAL,
            delivery_attempts=0,
            next_attempt_at=now if self.outbox else None,
        )
        try:
            with self._begin() as session:
                session.add(row)
                session.flush()
                row.key = f"{self.prefix}-{row.id:06d}"
            return _to_ticket(row), True
        except IntegrityError:
            # A concurrent retry of the same confirmation won the race.
            existing = self._by_idempotency_key(idempotency_key)
            if existing is None:
                raise TicketStoreError("conflicto al guardar el ticket") from None
            return existing, False
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo guardar el ticket: {exc}") from exc

    # ------------------------------------------------------------------- read
    def _one(self, condition: Any) -> Optional[Ticket]:
        try:
            with self._session() as session:
                row = session.execute(select(TicketRow).where(condition)).scalar_one_or_none()
                return _to_ticket(row) if row is not None else None
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo leer el almacén de tickets: {exc}") from exc

    def _by_idempotency_key(self, idempotency_key: str) -> Optional[Ticket]:
        return self._one(TicketRow.idempotency_key == idempotency_key)

    def get(self, key: str) -> Optional[Ticket]:
        return self._one(TicketRow.key == key.strip().upper())

    def list(
        self,
        *,
        limit: Optional[int] = None,
        email: Optional[str] = None,
        conversation_id: Optional[str] = None,
    ) -> list[Ticket]:
        """Newest first; filtered to one requester or conversation when given."""
        query = select(TicketRow).order_by(TicketRow.id.desc())
        if email or conversation_id:
            conditions = []
            if email:
                conditions.append(TicketRow.email == email)
            if conversation_id:
                conditions.append(TicketRow.conversation_id == conversation_id)
            query = query.where(or_(*conditions))
        if limit:
            query = query.limit(limit)
        try:
            with self._session() as session:
                return [_to_ticket(r) for r in session.execute(query).scalars()]
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo leer el almacén de tickets: {exc}") from exc

    # ----------------------------------------------------------------- outbox
    def _write(self, what: str, statement: Any) -> int:
        try:
            with self._begin() as session:
                return int(session.execute(statement.execution_options(synchronize_session=False)).rowcount)
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo {what}: {exc}") from exc

    def claim_due(self, worker: str, *, limit: int = 5, lease_seconds: float = 120.0) -> list[Claim]:
        """Take up to ``limit`` due tickets for ``worker``; no two workers get the same one.

        PostgreSQL skips rows another worker has locked (FOR UPDATE SKIP
        LOCKED); every backend re-checks the due condition in the claiming
        UPDATE, so on SQLite a row another worker claimed first is not taken
        twice either.
        """
        now = _now()
        query = select(TicketRow.id).where(_due(now)).order_by(TicketRow.next_attempt_at, TicketRow.id).limit(limit)
        if self._engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed: list[Claim] = []
        try:
            with self._begin() as session:
                for row_id in session.execute(query).scalars().all():
                    taken = session.execute(
                        update(TicketRow)
                        .where(TicketRow.id == row_id, _due(now))
                        .values(
                            delivery_status=SENDING,
                            claimed_by=worker,
                            claimed_until=now + timedelta(seconds=lease_seconds),
                            delivery_attempts=TicketRow.delivery_attempts + 1,
                        )
                        .execution_options(synchronize_session=False)
                    ).rowcount
                    if taken == 1:
                        row = session.get(TicketRow, row_id, populate_existing=True)
                        progress = json.loads(row.delivery_progress or "{}")
                        claimed.append(Claim(_to_ticket(row), worker, progress))
        except OperationalError as exc:
            if "locked" in str(exc).lower():  # SQLite: another worker is claiming; try next round
                return []
            raise TicketStoreError(f"no se pudieron reservar tickets para entrega: {exc}") from exc
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudieron reservar tickets para entrega: {exc}") from exc
        return claimed

    def _held(self, claim: Claim) -> Any:
        return and_(TicketRow.key == claim.ticket.key, TicketRow.claimed_by == claim.worker)

    def renew(self, claim: Claim, lease_seconds: float) -> bool:
        """Extend the lease between delivery steps; False if another worker took the ticket."""
        statement = (
            update(TicketRow)
            .where(self._held(claim), TicketRow.delivery_status == SENDING)
            .values(claimed_until=_now() + timedelta(seconds=lease_seconds))
        )
        return self._write("renovar la reserva de entrega", statement) == 1

    def record_progress(self, claim: Claim, **values: Any) -> None:
        """Persist a finished delivery step (and JSM data learnt) before the next one starts."""
        progress_keys = {k: v for k, v in values.items() if not k.startswith("jsm_")}
        claim.progress.update(progress_keys)
        columns: dict[str, Any] = {"delivery_progress": json.dumps(claim.progress, ensure_ascii=False)}
        for name in ("jsm_key", "jsm_url", "jsm_status", "jsm_status_at"):
            if values.get(name) is not None:
                columns[name] = values[name]
        self._write("guardar el avance de la entrega", update(TicketRow).where(self._held(claim)).values(**columns))

    def mark_delivered(self, claim: Claim) -> None:
        now = _now()
        statement = (
            update(TicketRow)
            .where(self._held(claim))
            .values(
                delivery_status=DELIVERED, delivered_at=now, updated_at=now, last_error=None,
                claimed_by=None, claimed_until=None, next_attempt_at=None,
            )
        )
        self._write("marcar el ticket como entregado", statement)

    def mark_retry(self, claim: Claim, error: str, next_attempt_at: datetime) -> None:
        statement = (
            update(TicketRow)
            .where(self._held(claim))
            .values(
                delivery_status=PENDING, last_error=error[:4000], next_attempt_at=next_attempt_at,
                claimed_by=None, claimed_until=None,
            )
        )
        self._write("programar el reintento de entrega", statement)

    def mark_failed(self, claim: Claim, error: str) -> None:
        statement = (
            update(TicketRow)
            .where(self._held(claim))
            .values(
                delivery_status=FAILED, last_error=error[:4000], next_attempt_at=None,
                claimed_by=None, claimed_until=None, updated_at=_now(),
            )
        )
        self._write("marcar la entrega como fallida", statement)

    def requeue(self, keys: Iterable[str] = (), *, failed: bool = False) -> list[str]:
        """Queue tickets for delivery again: the named ones, or every failed one.

        Steps already done are kept, so a ticket whose JSM request exists is
        never created twice.
        """
        conditions = []
        wanted = [k.strip().upper() for k in keys]
        if wanted:
            not_sending = or_(TicketRow.delivery_status.is_(None), TicketRow.delivery_status != SENDING)
            conditions.append(and_(TicketRow.key.in_(wanted), not_sending))
        if failed:
            conditions.append(TicketRow.delivery_status == FAILED)
        if not conditions:
            return []
        where = or_(*conditions)
        try:
            with self._begin() as session:
                found = list(session.execute(select(TicketRow.key).where(where)).scalars())
                session.execute(
                    update(TicketRow)
                    .where(where)
                    .values(delivery_status=PENDING, next_attempt_at=_now(), last_error=None)
                    .execution_options(synchronize_session=False)
                )
                return found
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo volver a poner en cola: {exc}") from exc

    def update_jsm_status(self, key: str, status: str, at: Optional[datetime]) -> None:
        """Remember the last JSM status seen, for when JSM cannot be reached."""
        statement = update(TicketRow).where(TicketRow.key == key).values(jsm_status=status, jsm_status_at=at)
        self._write("guardar el estado de JSM", statement)

    def delivery_counts(self) -> dict[str, int]:
        try:
            with self._session() as session:
                rows = session.execute(
                    select(TicketRow.delivery_status, func.count()).group_by(TicketRow.delivery_status)
                ).all()
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo leer el almacén de tickets: {exc}") from exc
        counts: dict[str, int] = {}
        for status, count in rows:
            counts[status or LOCAL] = counts.get(status or LOCAL, 0) + int(count)
        return counts
