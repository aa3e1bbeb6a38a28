"""The ticket repository: SQLAlchemy over SQLite by default, any URL otherwise.

Creation is idempotent on a caller-supplied key (conversation + the
confirmation's id), so neither a retried action nor a «sí» repeated after a
lost reply opens a second ticket for one confirmation. The human-readable key
(ECO-000123) derives from the row id, which every SQL backend hands out
without races.

With the outbox on (JSM is the help desk), a new ticket is stored as pending
delivery: the worker (bot/tickets/worker.py) takes it from the same table
through bot/tickets/outbox_queue.py.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Optional

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.tickets.errors import TicketStoreError
from bot.tickets.model import LOCAL, PENDING, NewTicket, Ticket
from bot.tickets.status_cache import JsmStatusCache
from bot.tickets.table import TicketRow, TicketTable, now, row_values, ticket_of


class TicketStore:
    """Tickets in a SQL database reachable by URL."""

    def __init__(self, url: str, prefix: str = "ECO", outbox: bool = False) -> None:
        """``prefix``: the catalog's ticket prefix; ``outbox``: new tickets wait for delivery to JSM.

        Nothing connects here: a store built while its database is down works
        as soon as the database is back, and every failure in between reaches
        the caller as ``TicketStoreError``.
        """
        self.url = url
        self.prefix = prefix
        self.outbox = outbox
        self.table = TicketTable(url)
        self._status_cache = JsmStatusCache(self.table)

    # ------------------------------------------------------------------ write
    def create(self, ticket: NewTicket, idempotency_key: str) -> tuple[Ticket, bool]:
        """Store ``ticket`` once per ``idempotency_key``.

        Returns the ticket and whether it was created now (False when the key
        had already produced one).
        """
        existing = self._by_idempotency_key(idempotency_key)
        if existing is not None:
            return existing, False
        moment = now()
        row = TicketRow(
            **row_values(ticket),
            idempotency_key=idempotency_key,
            status="open",
            created_at=moment,
            updated_at=moment,
            delivery_status=PENDING if self.outbox else LOCAL,
            delivery_attempts=0,
            next_attempt_at=moment if self.outbox else None,
        )
        try:
            with self.table.begin() as session:
                session.add(row)
                session.flush()
                row.key = f"{self.prefix}-{row.id:06d}"
            return ticket_of(row), True
        except IntegrityError:
            # A concurrent retry of the same confirmation won the race.
            existing = self._by_idempotency_key(idempotency_key)
            if existing is None:
                raise TicketStoreError("conflicto al guardar el ticket") from None
            return existing, False
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo guardar el ticket: {exc}") from exc

    def update_jsm_status(self, key: str, status: str, at: Optional[datetime]) -> None:
        """Remember the last JSM status seen (bot/tickets/status_cache.py), for when JSM cannot be reached.

        Here because the dialogue, which learns the status, holds the store.
        """
        self._status_cache.update(key, status, at)

    def set_status(self, key: str, status: str, at: Optional[datetime] = None) -> bool:
        """The embedded help desk's status of a ticket (the CLI's ``tickets status``); False for an unknown key.

        The status lookup shows it as written, with ``at`` as its date.
        """
        statement = (
            update(TicketRow)
            .where(TicketRow.key == key.strip().upper())
            .values(status=status.strip()[:50] or "open", updated_at=at or now())
        )
        return self.table.write("guardar el estado del ticket", statement) == 1

    # ------------------------------------------------------------------- read
    def _by_idempotency_key(self, idempotency_key: str) -> Optional[Ticket]:
        return self.table.one(TicketRow.idempotency_key == idempotency_key)

    def get(self, key: str) -> Optional[Ticket]:
        return self.table.one(TicketRow.key == key.strip().upper())

    def by_jsm_key(self, jsm_key: str) -> Optional[Ticket]:
        """The ticket delivered to JSM as ``jsm_key`` (the request's issue key, e.g. MDA-42)."""
        jsm_key = jsm_key.strip().upper()
        if not jsm_key:
            return None
        try:
            with self.table.session() as session:
                row = session.execute(
                    select(TicketRow).where(TicketRow.jsm_key == jsm_key).order_by(TicketRow.id).limit(1)
                ).scalar_one_or_none()
                return ticket_of(row) if row is not None else None
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo leer el almacén de tickets: {exc}") from exc

    def in_jsm(self, *, created_since: datetime, limit: int = 1000) -> builtins.list[Ticket]:
        """Tickets delivered to JSM since ``created_since``, oldest first: the requests the poller follows."""
        query = (
            select(TicketRow)
            .where(TicketRow.jsm_key.is_not(None), TicketRow.created_at >= created_since)
            .order_by(TicketRow.id)
            .limit(limit)
        )
        try:
            with self.table.session() as session:
                return [ticket_of(r) for r in session.execute(query).scalars()]
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo leer el almacén de tickets: {exc}") from exc

    def list(
        self,
        *,
        limit: Optional[int] = None,
        email: Optional[str] = None,
        conversation_id: Optional[str] = None,
    ) -> builtins.list[Ticket]:
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
            with self.table.session() as session:
                return [ticket_of(r) for r in session.execute(query).scalars()]
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo leer el almacén de tickets: {exc}") from exc
