"""The outbox queue: tickets waiting for delivery to JSM, claimed by one worker at a time.

The queue is the tickets table itself (bot/tickets/table.py): a ticket is
stored first and delivered later, so its delivery state (pending, sending
under a lease, delivered, failed) and the steps already done survive
restarts. A worker that dies mid-delivery loses its lease and another one
resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from bot.tickets.errors import TicketStoreError
from bot.tickets.model import DELIVERED, FAILED, LOCAL, PENDING, SENDING, Ticket
from bot.tickets.table import TicketRow, TicketTable, now, ticket_of

logger = logging.getLogger(__name__)

# Delivery data learnt from JSM, kept in its own columns rather than in the progress JSON.
JSM_COLUMNS = ("jsm_key", "jsm_url", "jsm_status", "jsm_status_at")


@dataclass
class Claim:
    """A ticket one worker holds for delivery, with the steps already done."""

    ticket: Ticket
    worker: str
    progress: dict[str, Any] = field(default_factory=dict)


def _due(moment: datetime) -> Any:
    """Rows a worker may take: pending and due, or held by a worker whose lease ran out."""
    return or_(
        and_(TicketRow.delivery_status == PENDING, TicketRow.next_attempt_at <= moment),
        and_(TicketRow.delivery_status == SENDING, TicketRow.claimed_until < moment),
    )


class OutboxQueue:
    """Claiming and delivery state of the tickets at one URL."""

    def __init__(self, url: str) -> None:
        self.table = TicketTable(url)

    def claim_due(self, worker: str, *, limit: int = 5, lease_seconds: float = 120.0) -> list[Claim]:
        """Take up to ``limit`` due tickets for ``worker``; no two workers get the same one.

        PostgreSQL skips rows another worker has locked (FOR UPDATE SKIP
        LOCKED); every backend re-checks the due condition in the claiming
        UPDATE, so on SQLite a row another worker claimed first is not taken
        twice either.
        """
        moment = now()
        query = select(TicketRow.id).where(_due(moment)).order_by(TicketRow.next_attempt_at, TicketRow.id).limit(limit)
        if self.table.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed: list[Claim] = []
        try:
            with self.table.begin() as session:
                for row_id in session.execute(query).scalars().all():
                    taken = session.execute(
                        update(TicketRow)
                        .where(TicketRow.id == row_id, _due(moment))
                        .values(
                            delivery_status=SENDING,
                            claimed_by=worker,
                            claimed_until=moment + timedelta(seconds=lease_seconds),
                            delivery_attempts=TicketRow.delivery_attempts + 1,
                        )
                        .execution_options(synchronize_session=False)
                    ).rowcount
                    if taken == 1:
                        row = session.get(TicketRow, row_id, populate_existing=True)
                        progress = json.loads(row.delivery_progress or "{}")
                        claimed.append(Claim(ticket_of(row), worker, progress))
        except OperationalError as exc:
            if "locked" in str(exc).lower():  # SQLite: another worker is claiming; try next round
                return []
            raise TicketStoreError(f"no se pudieron reservar tickets para entrega: {exc}") from exc
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudieron reservar tickets para entrega: {exc}") from exc
        return claimed

    @staticmethod
    def _held(claim: Claim) -> Any:
        return and_(TicketRow.key == claim.ticket.key, TicketRow.claimed_by == claim.worker)

    def renew(self, claim: Claim, lease_seconds: float) -> bool:
        """Extend the lease between delivery steps; False if another worker took the ticket."""
        statement = (
            update(TicketRow)
            .where(self._held(claim), TicketRow.delivery_status == SENDING)
            .values(claimed_until=now() + timedelta(seconds=lease_seconds))
        )
        return self.table.write("renovar la reserva de entrega", statement) == 1

    def record_progress(self, claim: Claim, **values: Any) -> None:
        """Persist a finished delivery step (and JSM data learnt) before the next one starts."""
        claim.progress.update({k: v for k, v in values.items() if k not in JSM_COLUMNS})
        columns: dict[str, Any] = {"delivery_progress": json.dumps(claim.progress, ensure_ascii=False)}
        columns.update({name: values[name] for name in JSM_COLUMNS if values.get(name) is not None})
        statement = update(TicketRow).where(self._held(claim)).values(**columns)
        self.table.write("guardar el avance de la entrega", statement)

    def mark_delivered(self, claim: Claim) -> None:
        moment = now()
        statement = (
            update(TicketRow)
            .where(self._held(claim))
            .values(
                delivery_status=DELIVERED,
                delivered_at=moment,
                updated_at=moment,
                last_error=None,
                claimed_by=None,
                claimed_until=None,
                next_attempt_at=None,
            )
        )
        self.table.write("marcar el ticket como entregado", statement)

    def mark_retry(self, claim: Claim, error: str, next_attempt_at: datetime) -> None:
        statement = (
            update(TicketRow)
            .where(self._held(claim))
            .values(
                delivery_status=PENDING,
                last_error=error[:4000],
                next_attempt_at=next_attempt_at,
                claimed_by=None,
                claimed_until=None,
            )
        )
        self.table.write("programar el reintento de entrega", statement)

    def mark_failed(self, claim: Claim, error: str) -> None:
        statement = (
            update(TicketRow)
            .where(self._held(claim))
            .values(
                delivery_status=FAILED,
                last_error=error[:4000],
                next_attempt_at=None,
                claimed_by=None,
                claimed_until=None,
                updated_at=now(),
            )
        )
        self.table.write("marcar la entrega como fallida", statement)

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
            with self.table.begin() as session:
                found = list(session.execute(select(TicketRow.key).where(where)).scalars())
                session.execute(
                    update(TicketRow)
                    .where(where)
                    .values(delivery_status=PENDING, next_attempt_at=now(), last_error=None)
                    .execution_options(synchronize_session=False)
                )
                return found
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo volver a poner en cola: {exc}") from exc

    def delivery_counts(self) -> dict[str, int]:
        """How many tickets are in each delivery state (tickets from before the outbox count as local)."""
        try:
            with self.table.session() as session:
                rows = session.execute(
                    select(TicketRow.delivery_status, func.count()).group_by(TicketRow.delivery_status)
                ).all()
        except SQLAlchemyError as exc:
            raise TicketStoreError(f"no se pudo leer el almacén de tickets: {exc}") from exc
        counts: dict[str, int] = {}
        for status, count in rows:
            counts[status or LOCAL] = counts.get(status or LOCAL, 0) + int(count)
        return counts
