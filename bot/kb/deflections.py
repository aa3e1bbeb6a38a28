"""What the knowledge base did in each conversation: articles offered, followed, found useful or declined.

Deflection (a request solved by an article, no ticket) is the figure leads
want from the knowledge base, so every offer and answer is kept with its
conversation, in the tickets database (own tables, created on first use like
the thread's). Each article shown gets a random link token: the web app's
redirect route counts a view by it and sends the customer to the article's
own address (JSM) or to the page that shows an embedded article. The token
names the stored link, so the route never redirects anywhere a customer
chose (no open redirect) and a view is counted for the conversation that was
shown the link, without putting the conversation's id in a URL.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional, Sequence

from sqlalchemy import Column, DateTime, Integer, String, Text, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, declarative_base, sessionmaker

from bot.kb.model import Article
from bot.sqlengine import SchemaOnce, as_utc, db_complaint, shared_engine

Base: Any = declarative_base()  # Any: SQLAlchemy 1.4's declarative base is built at run time

# What the dialogue records.
OFFERED = "offered"  # articles shown inside the form, before the contact questions
ANSWERED = "answered"  # articles shown as the answer to a direct question
VIEWED = "viewed"  # a link followed
HELPFUL = "helpful"  # «Sí, esto me sirvió»: the conversation ends without a ticket
DECLINED = "declined"  # «No, sigo con la solicitud»
EVENTS = (OFFERED, ANSWERED, VIEWED, HELPFUL, DECLINED)

TOKEN_BYTES = 12  # 16 URL-safe characters: not guessable, short enough for a WhatsApp message


class DeflectionError(RuntimeError):
    """The database failed; the message says what could not be kept (Spanish, for the operator's log)."""


class LinkRow(Base):
    __tablename__ = "kb_links"

    token = Column(String(32), primary_key=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    article_id = Column(String(255), nullable=False)
    title = Column(String(500), nullable=False)
    url = Column(String(2048))  # JSM's page; None for an embedded article (the web app shows it)
    source = Column(String(20), nullable=False)
    created_at = Column(DateTime(timezone=True), nullable=False)
    views = Column(Integer, nullable=False, default=0)


class EventRow(Base):
    __tablename__ = "kb_events"

    id = Column(Integer, primary_key=True, autoincrement=True)
    conversation_id = Column(String(255), nullable=False, index=True)
    event = Column(String(20), nullable=False)
    article_ids = Column(Text, nullable=False)  # space-separated, in the order shown
    request_type = Column(String(100))
    channel = Column(String(50))
    at = Column(DateTime(timezone=True), nullable=False, index=True)


@dataclass(frozen=True)
class LinkTarget:
    """Where a followed link goes: the article's own URL, or (embedded) the web app's page for ``article_id``."""

    article_id: str
    title: str
    url: Optional[str]
    source: str


@dataclass(frozen=True)
class DeflectionEvent:
    conversation_id: str
    event: str
    article_ids: tuple[str, ...]
    request_type: Optional[str]
    channel: Optional[str]
    at: datetime


def _now() -> datetime:
    return datetime.now(timezone.utc)


class DeflectionLog:
    """The offers, views and answers of the knowledge base, per conversation; shared by every process."""

    def __init__(self, db_url: str) -> None:
        engine = shared_engine(db_url)
        self._schema = SchemaOnce(engine, Base.metadata)
        self._sessions = sessionmaker(bind=engine, future=True, expire_on_commit=False)
        self._lock = threading.Lock()  # SQLite: one writer per process at a time is enough here

    def _session(self) -> Session:
        self._schema.ensure()
        return self._sessions()

    def offer(
        self,
        conversation_id: str,
        event: str,
        articles: Sequence[Article],
        *,
        request_type: Optional[str] = None,
        channel: Optional[str] = None,
    ) -> list[str]:
        """Record ``articles`` shown (``OFFERED`` or ``ANSWERED``); one link token per article, in order."""
        if event not in (OFFERED, ANSWERED):
            raise ValueError(f"not an offer: {event}")
        moment = _now()
        tokens = [secrets.token_urlsafe(TOKEN_BYTES) for _ in articles]
        rows: list[Any] = [
            LinkRow(
                token=token,
                conversation_id=conversation_id[:255],
                article_id=article.id[:255],
                title=article.title[:500],
                url=(article.url or None) and article.url[:2048],
                source=article.source[:20],
                created_at=moment,
                views=0,
            )
            for token, article in zip(tokens, articles, strict=True)
        ]
        rows.append(self._event(conversation_id, event, [a.id for a in articles], request_type, channel, moment))
        self._write(rows, "la oferta de artículos")
        return tokens

    def answer(
        self,
        conversation_id: str,
        event: str,
        article_ids: Sequence[str],
        *,
        request_type: Optional[str] = None,
        channel: Optional[str] = None,
    ) -> None:
        """Record the customer's answer to an offer: ``HELPFUL`` or ``DECLINED``."""
        if event not in (HELPFUL, DECLINED):
            raise ValueError(f"not an answer: {event}")
        self._write([self._event(conversation_id, event, article_ids, request_type, channel, _now())], "la respuesta")

    def view(self, token: str) -> Optional[LinkTarget]:
        """The link ``token`` names, with the view counted; None for a token never handed out."""
        if not token or len(token) > 32:
            return None
        try:
            with self._lock, self._session() as session, session.begin():
                row = session.get(LinkRow, token)
                if row is None:
                    return None
                session.execute(update(LinkRow).where(LinkRow.token == token).values(views=LinkRow.views + 1))
                session.add(self._event(row.conversation_id, VIEWED, [row.article_id], None, None, _now()))
                return LinkTarget(row.article_id, row.title, row.url, row.source)
        except SQLAlchemyError as exc:
            raise DeflectionError(f"No se pudo registrar la visita a un artículo: {db_complaint(exc)}") from exc

    def events(self, conversation_id: Optional[str] = None, since: Optional[datetime] = None) -> list[DeflectionEvent]:
        """Recorded events, oldest first; of one conversation, or since a moment, when given."""
        query = select(EventRow).order_by(EventRow.at, EventRow.id)
        if conversation_id is not None:
            query = query.where(EventRow.conversation_id == conversation_id)
        if since is not None:
            query = query.where(EventRow.at >= since)
        try:
            with self._session() as session:
                rows = session.execute(query).scalars().all()
        except SQLAlchemyError as exc:
            raise DeflectionError(f"No se pudieron leer los registros de artículos: {db_complaint(exc)}") from exc
        return [
            DeflectionEvent(
                r.conversation_id,
                r.event,
                tuple(r.article_ids.split()),
                r.request_type,
                r.channel,
                as_utc(r.at),
            )
            for r in rows
        ]

    @staticmethod
    def _event(
        conversation_id: str,
        event: str,
        article_ids: Sequence[str],
        request_type: Optional[str],
        channel: Optional[str],
        moment: datetime,
    ) -> Any:
        return EventRow(
            conversation_id=conversation_id[:255],
            event=event,
            article_ids=" ".join(a for a in article_ids if a and " " not in a),
            request_type=(request_type or None) and request_type[:100],
            channel=(channel or None) and channel[:50],
            at=moment,
        )

    def _write(self, rows: list[Any], what: str) -> None:
        try:
            with self._lock, self._session() as session, session.begin():
                session.add_all(rows)
        except SQLAlchemyError as exc:
            raise DeflectionError(f"No se pudo guardar {what} de la base de conocimiento: {db_complaint(exc)}") from exc
