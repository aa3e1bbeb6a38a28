"""CSAT: the customer's rating of the help with a resolved ticket, asked once in the chat.

The question is queued by the thread when a ticket is resolved
(bot/thread/store.py opens the row); the dialogue stores the answer here
and the review app reads the answers. Only the conversation that created
the ticket can rate it, and only once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.thread.model import CsatAnswer, TicketRef
from bot.thread.table import CsatRow, ThreadError, ThreadTables, answer_of, now

# A question older than this is no longer waiting: the customer moved on.
ANSWER_WINDOW = timedelta(days=7)
RATINGS = range(1, 6)


def open_question(tables: ThreadTables, ticket: TicketRef) -> None:
    """The row the answer will fill, opened when the question is queued (once per ticket)."""
    row = CsatRow(
        ticket_key=ticket.key,
        conversation_id=ticket.conversation_id,
        channel=ticket.channel,
        request_type_id=ticket.request_type_id,
        request_type=ticket.request_type,
        asked_at=now(),
    )
    try:
        with tables.begin() as session:
            session.add(row)
    except IntegrityError:
        pass  # asked before (the question's own message is unique too)
    except SQLAlchemyError as exc:
        raise ThreadError(f"no se pudo registrar la encuesta del ticket {ticket.key}: {exc}") from exc


class CsatBook:
    """The satisfaction answers in the tickets database at one URL."""

    def __init__(self, url: str) -> None:
        self.tables = ThreadTables(url)

    def _rows(self, query: object) -> list[CsatAnswer]:
        try:
            with self.tables.session() as session:
                return [answer_of(r) for r in session.execute(query).scalars()]
        except SQLAlchemyError as exc:
            raise ThreadError(f"no se pudieron leer las encuestas: {exc}") from exc

    def get(self, ticket_key: str) -> Optional[CsatAnswer]:
        found = self._rows(select(CsatRow).where(CsatRow.ticket_key == ticket_key.strip().upper()))
        return found[0] if found else None

    def pending(self, conversation_id: str) -> Optional[CsatAnswer]:
        """The newest question of this conversation still without a rating (within the answer window)."""
        query = (
            select(CsatRow)
            .where(
                CsatRow.conversation_id == conversation_id,
                CsatRow.rating.is_(None),
                CsatRow.asked_at >= now() - ANSWER_WINDOW,
            )
            .order_by(CsatRow.id.desc())
            .limit(1)
        )
        found = self._rows(query)
        return found[0] if found else None

    def _write(self, what: str, statement: object) -> bool:
        try:
            with self.tables.begin() as session:
                return int(session.execute(statement).rowcount) == 1
        except SQLAlchemyError as exc:
            raise ThreadError(f"no se pudo {what}: {exc}") from exc

    def rate(self, ticket_key: str, conversation_id: str, rating: int) -> bool:
        """Store the rating; False unless this conversation was asked about this ticket and has not rated it."""
        if isinstance(rating, bool) or rating not in RATINGS:
            return False
        statement = (
            update(CsatRow)
            .where(
                CsatRow.ticket_key == ticket_key,
                CsatRow.conversation_id == conversation_id,
                CsatRow.rating.is_(None),
            )
            .values(rating=rating, answered_at=now())
            .execution_options(synchronize_session=False)
        )
        return self._write("guardar la calificación", statement)

    def comment(self, ticket_key: str, conversation_id: str, text: str) -> bool:
        """Add the comment that follows a rating; once, and only by the conversation that rated."""
        statement = (
            update(CsatRow)
            .where(
                CsatRow.ticket_key == ticket_key,
                CsatRow.conversation_id == conversation_id,
                CsatRow.rating.is_not(None),
                CsatRow.comment.is_(None),
            )
            .values(comment=text[:2000])
            .execution_options(synchronize_session=False)
        )
        return self._write("guardar el comentario de la encuesta", statement)

    def answers(self, since: Optional[datetime] = None) -> list[CsatAnswer]:
        """Every rated answer, oldest first (from ``since`` when given)."""
        query = select(CsatRow).where(CsatRow.rating.is_not(None))
        if since is not None:
            query = query.where(CsatRow.answered_at >= since)
        return self._rows(query.order_by(CsatRow.answered_at))
