"""The review app's services, built once when the web server starts and kept on ``app.ctx.review``.

Lead accounts (argon2), the conversation index, the ticket look-ups and the
ticket threads with their CSAT answers (in the tickets database) are
blocking SQL: the handlers call them through ``asyncio.to_thread`` so one
lead's slow page or login never stalls the chat widget's uploads served by
the same event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Optional, Protocol

from sanic.request import Request

from bot.catalog import Catalog
from bot.kb.deflections import DeflectionLog
from bot.kb.model import Article
from bot.review import links
from bot.review.accounts import Accounts
from bot.review.db import engine_for
from bot.review.deflection import DeflectionLookup
from bot.review.index import ConversationIndex, review_zone
from bot.review.labels import Labels
from bot.review.metrics import Metrics
from bot.review.proxies import TrustedProxies
from bot.review.views import Views
from bot.settings import Settings
from bot.thread import CsatBook, TicketThread
from bot.thread.model import CsatAnswer, ThreadMessage
from bot.tickets import Ticket
from bot.transcripts import TrackerReader


class TicketLookup(Protocol):
    """All the review pages need from the ticket store: one ticket by its key."""

    def get(self, key: str) -> Optional[Ticket]: ...


class ThreadLookup(Protocol):
    """What the thread page reads: a ticket's messages after the ticket, oldest first."""

    def messages(self, ticket_key: str) -> list[ThreadMessage]: ...


class CsatLookup(Protocol):
    """What the thread and CSAT pages read: one ticket's answer, and every rated answer."""

    def get(self, ticket_key: str) -> Optional[CsatAnswer]: ...

    def answers(self, since: Optional[datetime] = None) -> list[CsatAnswer]: ...


class ArticleLookup(Protocol):
    """Where the articles page finds an article's title (the web server's knowledge base)."""

    def get(self, article_id: str) -> Optional[Article]: ...


@dataclass(frozen=True)
class ReviewRoom:
    accounts: Accounts
    reader: TrackerReader
    index: ConversationIndex
    labels: Labels
    tickets: TicketLookup
    proxies: TrustedProxies
    views: Views
    thread: ThreadLookup  # the tickets database's thread (bot/thread): what came after each ticket
    csat: CsatLookup
    secure_cookies: bool = False  # REVIEW_SECURE_COOKIES: Secure even when no proxy says HTTPS
    deflections: Optional[DeflectionLookup] = None  # the knowledge base's offers, views and answers (tickets DB)
    articles: Optional[ArticleLookup] = None  # titles for the articles page; without it the page shows ids
    metrics: Optional[Metrics] = None  # issue 15's figures over ``index`` (set by ``build``)

    @classmethod
    def build(
        cls,
        settings: Settings,
        catalog: Catalog,
        tickets: TicketLookup,
        proxies: TrustedProxies,
        thread: Optional[ThreadLookup] = None,
        csat: Optional[CsatLookup] = None,
        deflections: Optional[DeflectionLookup] = None,
        articles: Optional[ArticleLookup] = None,
    ) -> ReviewRoom:
        """Creates the review tables if missing and checks ``REVIEW_TIMEZONE``: a bad value stops the start.

        ``thread`` and ``csat`` may come from the web server, which also
        records help-desk news; by default they, and ``deflections``, read
        the tickets database.
        """
        engine = engine_for(settings.review_db_url)
        zone = review_zone(settings.review)
        reader = TrackerReader(settings.tracker_db_url)
        index = ConversationIndex(reader, engine, zone, timedelta(minutes=settings.review.abandon_minutes))
        labels = Labels(engine)
        csat = csat or CsatBook(settings.tickets_db_url)
        return cls(
            accounts=Accounts(engine, settings.review.session_hours),
            reader=reader,
            index=index,
            labels=labels,
            tickets=tickets,
            proxies=proxies,
            views=Views(catalog, zone),
            thread=thread or TicketThread(settings.tickets_db_url),
            csat=csat,
            metrics=Metrics(index, catalog, labels, csat),
            secure_cookies=settings.review.secure_cookies,
            deflections=deflections or DeflectionLog(settings.tickets_db_url),
            articles=articles,
        )

    def existing_conversation(self, token: str) -> Optional[str]:
        """The conversation a URL token names, if the tracker store has it (blocking)."""
        sender = links.sender_for(token)
        return sender if sender and self.reader.events(sender) else None


def room_of(request: Request) -> ReviewRoom:
    """The review services of the app serving ``request`` (set by ``bot.web.app.create_app``)."""
    room = getattr(request.app.ctx, "review", None)
    if not isinstance(room, ReviewRoom):
        raise RuntimeError("review_blueprint() needs app.ctx.review = ReviewRoom.build(...)")
    return room
