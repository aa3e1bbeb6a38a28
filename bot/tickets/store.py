"""The embedded ticket store: SQLAlchemy over SQLite by default, any URL otherwise.

Creation is idempotent on a caller-supplied key (conversation + confirming
message), so a retried action never opens a second ticket for one
confirmation. The human-readable key (ECO-000123) derives from the row id,
which every SQL backend hands out without races.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import Column, DateTime, Integer, String, Text, create_engine, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import declarative_base, sessionmaker

from bot.tickets.model import Attachment, NewTicket, Ticket

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


def _aware(moment: datetime) -> datetime:
    """SQLite drops tzinfo; everything stored is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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
    )


class TicketStore:
    """Tickets in a SQL database reachable by URL."""

    _engines: dict[str, Engine] = {}
    _lock = threading.Lock()

    def __init__(self, url: str, prefix: str = "ECO") -> None:
        self.url = url
        self.prefix = prefix
        self._engine = self._engine_for(url)
        self._sessions = sessionmaker(bind=self._engine, expire_on_commit=False, future=True)

    @classmethod
    def _engine_for(cls, url: str) -> Engine:
        """One engine (and pool) per URL per process; tables created once."""
        with cls._lock:
            engine = cls._engines.get(url)
            if engine is None:
                kwargs: dict[str, Any] = {"future": True, "pool_pre_ping": True}
                if url.startswith("sqlite"):
                    path = url.split("///", 1)[-1]
                    if path and path != ":memory:":
                        Path(path).parent.mkdir(parents=True, exist_ok=True)
                    kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
                engine = create_engine(url, **kwargs)
                try:
                    Base.metadata.create_all(engine)
                except SQLAlchemyError as exc:
                    raise TicketStoreError(f"no se pudo abrir el almacén de tickets: {exc}") from exc
                cls._engines[url] = engine
            return engine

    @classmethod
    def from_settings(cls) -> "TicketStore":
        from bot.catalog import get_catalog
        from bot.settings import Settings

        return cls(Settings.from_env().tickets_db_url, prefix=get_catalog().ticket_prefix)

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
        )
        try:
            with self._sessions.begin() as session:
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
            with self._sessions() as session:
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
            with self._sessions() as session:
                return [_to_ticket(r) for r in session.execute(query).scalars()]
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo leer el almacén de tickets: {exc}") from exc
