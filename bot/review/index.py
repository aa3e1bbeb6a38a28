"""A searchable index of conversations, kept in step with the tracker store.

Summaries are cached in ``review_conversations`` and recomputed only for
conversations with new events (plus those whose outcome depends on time), so
listing and filtering are SQL queries instead of a scan of every event.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from typing import Any, Mapping, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, case, delete, func, insert, select
from sqlalchemy.engine import Engine

from bot.review import db
from bot.review.analysis import ABANDON_AFTER, IN_PROGRESS, OUTCOME_ORDER, REDIRECTED, TICKET, summarize
from bot.review.index_rows import rows_of
from bot.settings.env import SettingError
from bot.settings.review import ReviewSettings
from bot.sqlengine import as_utc
from bot.text import normalize
from bot.transcripts import TrackerReader

PAGE_SIZE = 25
# Past any real list (the page then goes to the last one); keeps the SQL offset within a bigint.
MAX_PAGE = 1_000_000
# Conversations summarised per query and transaction when the index catches up.
REFRESH_BATCH = 200
# Event ids below the last look that are read again: a transaction that took its ids before
# another's and committed after it (PostgreSQL sequences) is still seen. Rasa appends events only.
LOOKBACK = 10_000


def review_zone(review: ReviewSettings) -> ZoneInfo:
    """Dates in filters and charts are the support team's days (``REVIEW_TIMEZONE``).

    Checked when the review app is built: a misspelt zone stops the server
    with its name instead of failing every page a lead opens.
    """
    try:
        return ZoneInfo(review.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(
            f"REVIEW_TIMEZONE debe ser una zona horaria como America/Bogota (valor actual: {review.timezone!r})"
        ) from None


DEFAULT_ZONE = review_zone(ReviewSettings())


# Dates a filter may name: 9999-12-31 plus the day a range ends on would overflow ``date``.
DATE_RANGE = (date(1970, 1, 1), date(9000, 12, 31))


def _parse_date(value: Any) -> Optional[date]:
    """A filter's date, None when it is not one or lies outside ``DATE_RANGE`` (the filter is then ignored)."""
    try:
        parsed = date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return parsed if parsed is not None and DATE_RANGE[0] <= parsed <= DATE_RANGE[1] else None


@dataclass(frozen=True)
class Filters:
    date_from: Optional[date] = None
    date_to: Optional[date] = None
    channel: Optional[str] = None
    request_type: Optional[str] = None
    outcome: Optional[str] = None
    text: Optional[str] = None
    country: Optional[str] = None  # "CO": the country said, else the phone's (query arg «pais»)
    page: int = 1
    # Page loads of the chat that never got a word or a click from a customer.
    include_empty: bool = False

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> "Filters":
        def one(name: str) -> Optional[str]:
            value = args.get(name)
            if isinstance(value, list):
                value = value[0] if value else None
            # Control characters match nothing a lead types, and PostgreSQL refuses NUL outright.
            value = "".join(c if c.isprintable() else " " for c in str(value)).strip() if value is not None else ""
            return value[:200] or None

        try:
            page = min(MAX_PAGE, max(1, int(one("pagina") or 1)))
        except ValueError:
            page = 1
        outcome = one("resultado")
        return cls(
            date_from=_parse_date(one("desde")),
            date_to=_parse_date(one("hasta")),
            channel=one("canal"),
            request_type=one("tipo"),
            outcome=outcome if outcome in OUTCOME_ORDER else None,
            text=one("texto"),
            country=(one("pais") or "").upper()[:8] or None,
            page=page,
            include_empty=one("vacias") == "1",
        )

    def as_args(self, **changes: Any) -> dict[str, str]:
        current = replace(self, **changes)
        args = {
            "desde": current.date_from.isoformat() if current.date_from else "",
            "hasta": current.date_to.isoformat() if current.date_to else "",
            "canal": current.channel or "",
            "tipo": current.request_type or "",
            "resultado": current.outcome or "",
            "texto": current.text or "",
            "pais": current.country or "",
            "pagina": str(current.page) if current.page > 1 else "",
            "vacias": "1" if current.include_empty else "",
        }
        return {k: v for k, v in args.items() if v}


@dataclass
class Row:
    sender_id: str
    started_at: Optional[datetime]
    last_at: Optional[datetime]
    channel: Optional[str]
    request_types: list[str]
    last_request_type: Optional[str]
    outcome: str
    outcomes: list[str]
    tickets: list[str]
    email: Optional[str]
    phone: Optional[str]
    turns: int
    missed_turns: int
    low_confidence_turns: int
    country: Optional[str] = None


def _split(value: Optional[str]) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def _row(record: Any) -> Row:
    return Row(
        sender_id=record.sender_id,
        started_at=as_utc(record.started_at),
        last_at=as_utc(record.last_at),
        channel=record.channel,
        request_types=_split(record.request_types),
        last_request_type=record.last_request_type,
        outcome=record.outcome,
        outcomes=_split(record.outcomes),
        tickets=_split(record.tickets),
        email=record.email,
        phone=record.phone,
        turns=record.turns,
        missed_turns=record.missed_turns,
        low_confidence_turns=record.low_confidence_turns,
        country=record.country,
    )


@dataclass
class Stats:
    days: list[date] = field(default_factory=list)
    conversations_per_day: list[int] = field(default_factory=list)
    tickets_per_day: list[int] = field(default_factory=list)
    outcomes_by_type: dict[str, Counter] = field(default_factory=dict)
    turns: int = 0
    missed_turns: int = 0
    redirects: int = 0
    conversations: int = 0

    @property
    def fallback_rate(self) -> float:
        return self.missed_turns / self.turns if self.turns else 0.0


class ConversationIndex:
    def __init__(
        self,
        reader: TrackerReader,
        engine: Engine,
        zone: ZoneInfo = DEFAULT_ZONE,
        abandon_after: timedelta = ABANDON_AFTER,
    ) -> None:
        """``zone``: whose days the date filters and charts mean; ``abandon_after``: see ``summarize``."""
        self.reader = reader
        self.engine = engine
        self.zone = zone
        self.abandon_after = abandon_after
        # Pages refresh from worker threads: two refreshes at once would insert the same rows.
        self._refreshing = threading.Lock()
        db.prepare_cache(engine, zone.key)

    # ---------------------------------------------------------- refresh
    def refresh(self, now: Optional[datetime] = None) -> int:
        """Bring cached summaries up to date; returns how many were recomputed."""
        with self._refreshing:
            return self._refresh(now)

    def _refresh(self, now: Optional[datetime]) -> int:
        """Only conversations with events past the last look are read (``LOOKBACK``: see there).

        The whole store is compared on the first look, and when its newest
        event is older than the last look (a tracker store started anew).
        """
        last = self.reader.last_id()
        mark = db.watermark(self.engine)
        c = db.conversations.c
        columns = (c.sender_id, c.last_event_id, c.outcomes)
        with self.engine.connect() as connection:
            if mark is None or last < mark:
                heads = self.reader.heads()
                cached = {r.sender_id: (r.last_event_id, r.outcomes) for r in connection.execute(select(*columns))}
            else:
                heads = self.reader.heads(after=max(0, mark - LOOKBACK))
                senders = list(heads)
                cached = {}
                for start in range(0, len(senders), REFRESH_BATCH):
                    query = select(*columns).where(c.sender_id.in_(senders[start : start + REFRESH_BATCH]))
                    cached.update({r.sender_id: (r.last_event_id, r.outcomes) for r in connection.execute(query)})
                # An open form turns into «abandonada» with time alone: those are looked at again too.
                for r in connection.execute(select(*columns).where(c.outcomes.contains(f",{IN_PROGRESS},"))):
                    cached[r.sender_id] = (r.last_event_id, r.outcomes)
                    heads.setdefault(r.sender_id, r.last_event_id)
        stale = [
            sender
            for sender, last_id in heads.items()
            if sender not in cached or cached[sender][0] != last_id or f",{IN_PROGRESS}," in (cached[sender][1] or "")
        ]
        for start in range(0, len(stale), REFRESH_BATCH):
            batch = stale[start : start + REFRESH_BATCH]
            rows: dict[Any, list[dict[str, Any]]] = {table: [] for table in db.CACHE_TABLES}
            for sender, events in self.reader.events_of(batch).items():
                summary = summarize(sender, events, now=now, abandon_after=self.abandon_after, zone=self.zone)
                for table, found in rows_of(summary).items():
                    rows[table].extend(found)
            with self.engine.begin() as connection:
                for table in db.CACHE_TABLES:
                    connection.execute(delete(table).where(table.c.sender_id.in_(batch)))
                    if rows[table]:
                        connection.execute(insert(table), rows[table])
        db.set_watermark(self.engine, last)
        return len(stale)

    # ------------------------------------------------------------ search
    def conditions(self, filters: Filters) -> list[Any]:
        """The filters as SQL conditions on ``review_conversations`` (the figures join their facts to it)."""
        return self._conditions(filters)

    def _conditions(self, filters: Filters) -> list[Any]:
        c = db.conversations.c
        zone = self.zone
        conditions: list[Any] = []
        if filters.date_from:
            conditions.append(
                c.started_at >= datetime.combine(filters.date_from, dtime.min, zone).astimezone(timezone.utc)
            )
        if filters.date_to:
            end = datetime.combine(filters.date_to + timedelta(days=1), dtime.min, zone).astimezone(timezone.utc)
            conditions.append(c.started_at < end)
        if filters.channel:
            conditions.append(c.channel == filters.channel)
        if filters.request_type:
            conditions.append(c.request_types.contains(f",{filters.request_type},"))
        if filters.outcome:
            conditions.append(c.outcomes.contains(f",{filters.outcome},"))
        if filters.country:
            conditions.append(c.country == filters.country)
        if not filters.include_empty:
            conditions.append(~((c.turns == 0) & (c.request_types == "") & (c.tickets == "")))
        # Every word must appear (in any order), accents and case aside.
        for word in normalize(filters.text).split():
            conditions.append(
                c.customer_text.contains(word, autoescape=True)
                | c.tickets.contains(word.upper(), autoescape=True)
                | func.lower(c.email).contains(word, autoescape=True)
            )
        return conditions

    def search(self, filters: Filters, page_size: int = PAGE_SIZE) -> tuple[list[Row], int]:
        found = self._conditions(filters)
        conditions = and_(*found) if found else True
        with self.engine.connect() as connection:
            total = int(
                connection.execute(select(func.count()).select_from(db.conversations).where(conditions)).scalar_one()
            )
            records = connection.execute(
                select(db.conversations)
                .where(conditions)
                .order_by(db.conversations.c.started_at.desc(), db.conversations.c.sender_id)
                .limit(page_size)
                .offset((filters.page - 1) * page_size)
            )
            return [_row(r) for r in records], total

    def get(self, sender_id: str) -> Optional[Row]:
        with self.engine.connect() as connection:
            record = connection.execute(
                select(db.conversations).where(db.conversations.c.sender_id == sender_id)
            ).first()
        return _row(record) if record is not None else None

    def channels(self) -> list[str]:
        with self.engine.connect() as connection:
            return sorted(
                r[0]
                for r in connection.execute(
                    select(db.conversations.c.channel).where(db.conversations.c.channel.isnot(None)).distinct()
                )
            )

    def stats(self, days: int = 14, today: Optional[date] = None) -> Stats:
        """The overview's figures: SQL totals over every conversation, days only over the charted ones."""
        zone = self.zone
        today = today or datetime.now(zone).date()
        first = today - timedelta(days=days - 1)
        stats = Stats(days=[first + timedelta(days=n) for n in range(days)])
        per_day: dict[date, int] = defaultdict(int)
        tickets_day: dict[date, int] = defaultdict(int)
        c = db.conversations.c
        redirected = func.sum(case((c.outcomes.contains(f",{REDIRECTED},"), 1), else_=0))
        since = datetime.combine(first, dtime.min, zone).astimezone(timezone.utc)
        with self.engine.connect() as connection:
            count, turns, missed, redirects = connection.execute(
                select(func.count(), func.sum(c.turns), func.sum(c.missed_turns), redirected)
            ).one()
            by_type = list(
                connection.execute(
                    select(c.last_request_type, c.outcome, func.count()).group_by(c.last_request_type, c.outcome)
                )
            )
            recent = list(connection.execute(select(c.started_at, c.outcomes, c.tickets).where(c.started_at >= since)))
        stats.conversations, stats.turns = int(count or 0), int(turns or 0)
        stats.missed_turns, stats.redirects = int(missed or 0), int(redirects or 0)
        for kind, outcome, found in by_type:
            stats.outcomes_by_type.setdefault(kind or "—", Counter())[outcome] += int(found)
        for started_at, outcomes, tickets in recent:
            day = as_utc(started_at).astimezone(zone).date()  # not None: filtered by started_at >= since
            per_day[day] += 1
            if f",{TICKET}," in (outcomes or ""):
                tickets_day[day] += len(_split(tickets))
        stats.conversations_per_day = [per_day[d] for d in stats.days]
        stats.tickets_per_day = [tickets_day[d] for d in stats.days]
        return stats
