"""Knowledge-base figures for leads: offers, views, answers and the deflection rate, per article and request type.

The knowledge base's log (bot/kb/deflections.py) keeps one event per offer,
direct-question answer, followed link, «me sirvió» and «sigo con la
solicitud». Deflection is what leads want from it: the share of the
conversations shown at least one article (an offer or an answer) that said
«Sí, esto me sirvió» and ended without a ticket. A view carries no request
type of its own; it belongs to the type of the offer that showed that article
in that conversation (so does an answer recorded without a type). Every event counts on its own day (the support team's
days, ``REVIEW_TIMEZONE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable, Iterable, Optional, Protocol
from zoneinfo import ZoneInfo

from bot.kb.deflections import ANSWERED, DECLINED, HELPFUL, OFFERED, VIEWED, DeflectionEvent
from bot.review.satisfaction import day_start

NO_TYPE = ""  # a direct question answered before the request type was known
NO_TYPE_LABEL = "Sin tipo de solicitud"


class DeflectionLookup(Protocol):
    """What the articles page reads: the recorded events since a moment, oldest first."""

    def events(
        self, conversation_id: Optional[str] = None, since: Optional[datetime] = None
    ) -> list[DeflectionEvent]: ...


@dataclass
class Tally:
    """The knowledge base's events for one article, one request type, or all of them."""

    key: str
    label: str
    offered: int = 0  # offers inside the request, before the contact questions
    answered: int = 0  # answers to a direct question («¿cómo…?»)
    viewed: int = 0  # links followed
    helpful: int = 0  # «Sí, esto me sirvió»
    declined: int = 0  # «No, sigo con la solicitud»
    shown_in: set[str] = field(default_factory=set)  # conversations shown it
    helped_in: set[str] = field(default_factory=set)  # conversations that said «me sirvió» to it

    @property
    def conversations(self) -> int:
        return len(self.shown_in)

    @property
    def resolved(self) -> int:
        """Conversations shown it in the period that said «me sirvió»."""
        return len(self.helped_in & self.shown_in)

    @property
    def rate(self) -> float:
        """Deflection (0..1): resolved conversations over conversations shown articles."""
        return self.resolved / len(self.shown_in) if self.shown_in else 0.0

    @property
    def width(self) -> float:
        """The rate as a share of the chart's width (0..100)."""
        return round(100.0 * self.rate, 2)


@dataclass
class Report:
    overall: Tally
    by_article: list[Tally]
    by_type: list[Tally]
    events: int


def in_period(
    events: Iterable[DeflectionEvent], zone: ZoneInfo, date_from: Optional[date], date_to: Optional[date]
) -> list[DeflectionEvent]:
    """The events recorded between both days (inclusive, team's days)."""
    start = day_start(date_from, zone) if date_from else None
    end = day_start(date_to + timedelta(days=1), zone) if date_to else None
    return [e for e in events if (start is None or e.at >= start) and (end is None or e.at < end)]


def _count(tally: Tally, event: str, conversation: str) -> None:
    if event == OFFERED:
        tally.offered += 1
        tally.shown_in.add(conversation)
    elif event == ANSWERED:
        tally.answered += 1
        tally.shown_in.add(conversation)
    elif event == VIEWED:
        tally.viewed += 1
    elif event == HELPFUL:
        tally.helpful += 1
        tally.helped_in.add(conversation)
    elif event == DECLINED:
        tally.declined += 1


def _most_shown_first(tallies: dict[str, Tally]) -> list[Tally]:
    return sorted(tallies.values(), key=lambda t: (-t.conversations, -(t.offered + t.answered), t.label))


def report(
    events: Iterable[DeflectionEvent],
    title_of: Callable[[str], Optional[str]],
    type_names: dict[str, str],
) -> Report:
    """Every figure of the articles page from the period's events (oldest first).

    ``title_of``: an article's title by id (the knowledge base's), None when
    it is gone; the page then shows the id.
    """
    overall = Tally("todos", "Todos los artículos")
    articles: dict[str, Tally] = {}
    types: dict[str, Tally] = {}
    type_of_conversation: dict[str, str] = {}  # the latest request type each conversation's events named
    type_of_shown: dict[tuple[str, str], str] = {}  # (conversation, article) → the type of the offer that showed it
    count = 0

    def article(article_id: str) -> Tally:
        if article_id not in articles:
            articles[article_id] = Tally(article_id, title_of(article_id) or article_id)
        return articles[article_id]

    def kind(type_id: str) -> Tally:
        if type_id not in types:
            types[type_id] = Tally(type_id, type_names.get(type_id, type_id) if type_id else NO_TYPE_LABEL)
        return types[type_id]

    for event in events:
        count += 1
        conversation = event.conversation_id
        if event.request_type:
            type_of_conversation[conversation] = event.request_type
        type_id = event.request_type or type_of_conversation.get(conversation, NO_TYPE)
        if event.event in (OFFERED, ANSWERED):
            for article_id in event.article_ids:
                type_of_shown[(conversation, article_id)] = type_id
        elif not event.request_type and event.article_ids:  # a view, or an answer recorded without its type
            type_id = type_of_shown.get((conversation, event.article_ids[0]), type_id)
        _count(overall, event.event, conversation)
        _count(kind(type_id), event.event, conversation)
        for article_id in dict.fromkeys(event.article_ids):
            _count(article(article_id), event.event, conversation)
    return Report(
        overall=overall,
        by_article=_most_shown_first(articles),
        by_type=_most_shown_first(types),
        events=count,
    )
