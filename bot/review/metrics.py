"""The figures of issue 15 (funnel, effort, understanding, containment, CSAT, the weekly report) for the pages.

Every figure is a few SQL aggregates over the review index (kept in step
with the tracker store by ``ConversationIndex.refresh``, which the pages call
first), filtered like the conversation list; medians and p90 are taken in
Python over one column of the filtered tickets. CSAT comes from the ticket
threads' answers (``CsatBook``), added up by ``bot.review.satisfaction``.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any, Optional, Protocol, Sequence

from sqlalchemy import and_, func, select

from bot.catalog import Catalog
from bot.review import db
from bot.review.analysis import ABANDONED, CANCELLED, DEFLECTED, HANDOFF, OUTCOME_LABELS, REDIRECTED, TICKET
from bot.review.index import ConversationIndex, Filters
from bot.review.intake import OTHER_PICK
from bot.review.labels import Labels
from bot.review.metrics_funnel import FunnelQueries
from bot.review.metrics_model import (
    Containment,
    Correction,
    Csat,
    Effort,
    EffortRow,
    Funnel,
    Period,
    SuggestionPick,
    Understanding,
    WeekContainment,
    WeekCsat,
    WeeklyReport,
    WeekUnderstanding,
)
from bot.review.satisfaction import Group, day_start, in_period, report
from bot.review.views import CHANNEL_LABELS
from bot.thread.model import CsatAnswer

# How conversations ended, in the order the containment chart stacks them.
CONTAINMENT = (TICKET, REDIRECTED, DEFLECTED, HANDOFF, CANCELLED, ABANDONED)
ALL = "Todas"
OTHER_LABEL = "Otra cosa"
CORRECTIONS_SHOWN = 20
WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_CHUNK = 500  # ids per IN (...) when CSAT answers are matched to countries


class RatedAnswers(Protocol):
    """Where the CSAT figures come from: the rated answers (``bot.thread.CsatBook``)."""

    def answers(self, since: Optional[datetime] = None) -> list[CsatAnswer]: ...


def nearest_rank(values: Sequence[float], share: float) -> float:
    """The value under which ``share`` of the sorted values fall (nearest rank: always one of them)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(share * len(ordered)) - 1)])


def week_period(week: str) -> Period:
    """«2026-W48» -> Monday to Sunday of that ISO week; ValueError with the reason in Spanish."""
    found = WEEK.match(week.strip())
    if not found:
        raise ValueError(f"La semana «{week}» no es válida: escríbela como 2026-W48 (año, W y número de semana).")
    try:
        start = date.fromisocalendar(int(found.group(1)), int(found.group(2)), 1)
    except ValueError:
        raise ValueError(f"La semana «{week}» no existe en ese año.") from None
    return Period(start=start, end=start + timedelta(days=6), label=week.strip())


def weeks_between(first: str, last: str) -> list[str]:
    """Every ISO week from ``first`` to ``last``: a week with nothing still shows, as zero."""
    start, end = week_period(first).start, week_period(last).start
    weeks = []
    while start <= end:
        year, number, _ = start.isocalendar()
        weeks.append(f"{year}-W{number:02d}")
        start += timedelta(days=7)
    return weeks


def _effort_row(key: str, label: str, rows: Sequence[Any]) -> EffortRow:
    turns = [float(r.ticket_turns or 0) for r in rows]
    minutes = [float(r.ticket_seconds or 0) / 60.0 for r in rows]
    return EffortRow(
        key=key,
        label=label,
        tickets=len(rows),
        turns_median=float(statistics.median(turns)) if turns else 0.0,
        turns_p90=nearest_rank(turns, 0.9),
        minutes_median=float(statistics.median(minutes)) if minutes else 0.0,
        minutes_p90=nearest_rank(minutes, 0.9),
        no_repeat_share=sum(1 for r in rows if not r.repeated) / len(rows) if rows else 0.0,
    )


class Metrics:
    """The figures of the review index for one filter set; blocking SQL (pages call it in a worker thread)."""

    def __init__(
        self, index: ConversationIndex, catalog: Catalog, labels: Labels, csat: Optional[RatedAnswers] = None
    ) -> None:
        self.index = index
        self.catalog = catalog
        self.labels = labels
        self.csat_source = csat
        self.type_names = {rt.id: rt.name for rt in catalog.request_types}
        self._funnel = FunnelQueries(index.engine, catalog)

    def _where(self, filters: Filters) -> Any:
        return and_(True, *self.index.conditions(filters))

    # -------------------------------------------------------------- funnel
    def funnel(self, filters: Filters) -> Funnel:
        return self._funnel.funnel(self.index.conditions(filters), filters.request_type)

    # -------------------------------------------------------------- effort
    def effort(self, filters: Filters) -> Effort:
        c = db.conversations.c
        query = select(c.ticket_type, c.channel, c.ticket_turns, c.ticket_seconds, c.repeated).where(
            self._where(filters), c.ticket_turns.isnot(None)
        )
        if filters.request_type:
            query = query.where(c.ticket_type == filters.request_type)
        with self.index.engine.connect() as connection:
            rows = list(connection.execute(query))
        by_type: dict[str, list[Any]] = defaultdict(list)
        by_channel: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            by_type[row.ticket_type or ""].append(row)
            by_channel[row.channel or ""].append(row)
        return Effort(
            overall=_effort_row("", ALL, rows),
            by_type=tuple(
                _effort_row(key, self.type_names.get(key, key or "—"), group)
                for key, group in sorted(by_type.items(), key=lambda item: (-len(item[1]), item[0]))
            ),
            by_channel=tuple(
                _effort_row(key, CHANNEL_LABELS.get(key, key or "—"), group)
                for key, group in sorted(by_channel.items(), key=lambda item: (-len(item[1]), item[0]))
            ),
        )

    # ------------------------------------------------------- understanding
    def understanding(self, filters: Filters) -> Understanding:
        c, t, p, lab = db.conversations.c, db.turn_weeks.c, db.picks.c, db.labels.c
        where = self._where(filters)
        with self.index.engine.connect() as connection:
            weeks = list(
                connection.execute(
                    select(t.week, func.sum(t.turns), func.sum(t.understood), func.sum(t.low_confidence))
                    .add_columns(func.sum(t.fallback))
                    .select_from(db.turn_weeks.join(db.conversations, t.sender_id == c.sender_id))
                    .where(where)
                    .group_by(t.week)
                    .order_by(t.week)
                )
            )
            corrections = list(
                connection.execute(
                    select(lab.predicted_intent, lab.intent, func.count().label("n"))
                    .select_from(db.labels.join(db.conversations, lab.sender_id == c.sender_id))
                    .where(where, lab.predicted_intent.isnot(None), lab.predicted_intent != lab.intent)
                    .group_by(lab.predicted_intent, lab.intent)
                    .order_by(func.count().desc(), lab.predicted_intent, lab.intent)
                    .limit(CORRECTIONS_SHOWN)
                )
            )
            picks = list(
                connection.execute(
                    select(p.request_type, func.count().label("n"))
                    .select_from(db.picks.join(db.conversations, p.sender_id == c.sender_id))
                    .where(where)
                    .group_by(p.request_type)
                    .order_by(func.count().desc(), p.request_type)
                )
            )
        found = {w[0]: w for w in weeks}
        all_weeks = weeks_between(weeks[0][0], weeks[-1][0]) if weeks else []
        return Understanding(
            weeks=tuple(
                WeekUnderstanding(
                    week=week,
                    turns=int(found[week][1] or 0) if week in found else 0,
                    understood=int(found[week][2] or 0) if week in found else 0,
                    low_confidence=int(found[week][3] or 0) if week in found else 0,
                    fallback=int(found[week][4] or 0) if week in found else 0,
                )
                for week in all_weeks
            ),
            corrections=tuple(Correction(str(r[0]), str(r[1]), int(r[2])) for r in corrections),
            suggestions=tuple(
                SuggestionPick(
                    str(r[0]), OTHER_LABEL if r[0] == OTHER_PICK else self.type_names.get(r[0], r[0]), int(r[1])
                )
                for r in picks
            ),
        )

    def _pick_label(self, picked: str) -> str:
        return OTHER_LABEL if picked == OTHER_PICK else self.type_names.get(picked, picked)

    # --------------------------------------------------------- containment
    def containment(self, filters: Filters) -> Containment:
        c = db.conversations.c
        with self.index.engine.connect() as connection:
            rows = list(
                connection.execute(
                    select(c.week, c.outcome, func.count())
                    .where(self._where(filters), c.outcome.in_(CONTAINMENT), c.week.isnot(None))
                    .group_by(c.week, c.outcome)
                )
            )
        counts: dict[str, dict[str, int]] = defaultdict(lambda: {o: 0 for o in CONTAINMENT})
        for week, outcome, count in rows:
            counts[week][outcome] = int(count)
        weeks = sorted(counts)
        return Containment(
            outcomes=CONTAINMENT,
            labels={o: OUTCOME_LABELS[o] for o in CONTAINMENT},
            weeks=tuple(
                WeekContainment(week, dict(counts[week]) if week in counts else {o: 0 for o in CONTAINMENT})
                for week in (weeks_between(weeks[0], weeks[-1]) if weeks else [])
            ),
        )

    # ---------------------------------------------------------------- CSAT
    def csat(self, filters: Filters) -> Csat:
        if self.csat_source is None:
            return Csat((), (), ())
        zone = self.index.zone
        since = day_start(filters.date_from, zone) if filters.date_from else None
        answers = in_period(self.csat_source.answers(since), zone, filters.date_from, filters.date_to)
        if filters.channel:
            answers = [a for a in answers if a.channel == filters.channel]
        if filters.request_type:
            answers = [a for a in answers if a.request_type_id == filters.request_type]
        if filters.country:
            answers = self._in_country(answers, filters.country)
        found = report(answers, zone, self.type_names, CHANNEL_LABELS)

        def rows(groups: list[Group], week: bool) -> tuple[WeekCsat, ...]:
            return tuple(
                WeekCsat(
                    week=g.key if week else "",
                    key="" if week else g.key,
                    label=g.label,
                    ratings=g.count,
                    average=round(g.average, 4) if g.count else None,
                )
                for g in groups
            )

        return Csat(
            by_week=rows(found.by_week, True),
            by_type=rows(found.by_type, False),
            by_channel=rows(found.by_channel, False),
        )

    def _in_country(self, answers: list[CsatAnswer], country: str) -> list[CsatAnswer]:
        """The answers whose conversation the index places in ``country``."""
        ids = sorted({a.conversation_id for a in answers})
        c = db.conversations.c
        kept: set[str] = set()
        with self.index.engine.connect() as connection:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                kept.update(
                    r[0]
                    for r in connection.execute(select(c.sender_id).where(c.sender_id.in_(chunk), c.country == country))
                )
        return [a for a in answers if a.conversation_id in kept]

    # -------------------------------------------------------- weekly report
    def weekly(self, week: str, filters: Optional[Filters] = None) -> WeeklyReport:
        """That ISO week against the one before, in the team's time zone (``REVIEW_TIMEZONE``)."""
        this = week_period(week)
        start = this.start - timedelta(days=7)
        year, number, _ = start.isocalendar()
        previous = Period(start=start, end=start + timedelta(days=6), label=f"{year}-W{number:02d}")
        base = filters or Filters()
        periods = [replace(base, date_from=p.start, date_to=p.end, page=1) for p in (this, previous)]
        return WeeklyReport(
            week=this,
            previous=previous,
            funnel=(self.funnel(periods[0]), self.funnel(periods[1])),
            effort=(self.effort(periods[0]), self.effort(periods[1])),
            understanding=(self.understanding(periods[0]), self.understanding(periods[1])),
            containment=(self.containment(periods[0]), self.containment(periods[1])),
            csat=(self.csat(periods[0]), self.csat(periods[1])),
        )
