"""CSAT figures for leads: the average rating and how many answered, per request type, channel and week.

Weeks are ISO weeks on the support team's clock (``REVIEW_TIMEZONE``): an
answer given on Sunday night in Bogotá belongs to that week, not to the
Monday it already is in UTC. «Satisfechos» is the usual CSAT score: the
share of answers rating 4 or 5.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, Iterable, Optional
from zoneinfo import ZoneInfo

from bot.thread.model import CsatAnswer

SCALE = 5
SATISFIED = 4  # a rating from here up counts as satisfied
COMMENTS_SHOWN = 200  # on the page; the export has them all


@dataclass
class Group:
    """The answers of one request type, channel or week."""

    key: str
    label: str
    ratings: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.ratings)

    @property
    def average(self) -> float:
        return sum(self.ratings) / len(self.ratings) if self.ratings else 0.0

    @property
    def satisfied(self) -> float:
        """Share (0..1) of answers rating ``SATISFIED`` or more."""
        return sum(1 for r in self.ratings if r >= SATISFIED) / len(self.ratings) if self.ratings else 0.0

    @property
    def width(self) -> float:
        """The average as a share of the chart's width (0..100)."""
        return round(100.0 * self.average / SCALE, 2)

    def per_rating(self) -> list[int]:
        """How many answers gave 1, 2, 3, 4 and 5."""
        return [self.ratings.count(n) for n in range(1, SCALE + 1)]


@dataclass
class Report:
    overall: Group
    by_type: list[Group]
    by_channel: list[Group]
    by_week: list[Group]  # oldest first
    comments: list[CsatAnswer]  # answers with a comment, newest first


def average_text(value: float) -> str:
    """«4,3»: one decimal, the way Spanish writes it."""
    return f"{value:.1f}".replace(".", ",")


def week_of(moment: datetime, zone: ZoneInfo) -> tuple[int, int]:
    """ISO (year, week) of ``moment`` on the team's clock."""
    year, week, _ = moment.astimezone(zone).isocalendar()
    return year, week


def week_label(year: int, week: int) -> str:
    monday = date.fromisocalendar(year, week, 1)
    return f"Semana {week} de {year} (desde el lunes {monday.strftime('%d/%m')})"


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight of ``day`` on the team's clock, in UTC."""
    return datetime.combine(day, time.min, zone).astimezone(timezone.utc)


def in_period(
    answers: Iterable[CsatAnswer], zone: ZoneInfo, date_from: Optional[date], date_to: Optional[date]
) -> list[CsatAnswer]:
    """The rated answers given between both days (inclusive, team's days)."""
    start = day_start(date_from, zone) if date_from else None
    end = day_start(date_to + timedelta(days=1), zone) if date_to else None
    return [
        a
        for a in answers
        if a.rating is not None
        and a.answered_at is not None
        and (start is None or a.answered_at >= start)
        and (end is None or a.answered_at < end)
    ]


def _grouped(answers: list[CsatAnswer], key: Callable[[CsatAnswer], tuple[str, str]]) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    for answer in answers:
        code, label = key(answer)
        groups.setdefault(code, Group(code, label)).ratings.append(int(answer.rating or 0))
    return groups


def _busiest_first(groups: dict[str, Group]) -> list[Group]:
    return sorted(groups.values(), key=lambda g: (-g.count, g.label))


def report(
    answers: Iterable[CsatAnswer],
    zone: ZoneInfo,
    type_names: dict[str, str],
    channel_names: dict[str, str],
) -> Report:
    """Every figure of the CSAT page from the rated answers (already limited to the period)."""
    rated = [a for a in answers if a.rating is not None and a.answered_at is not None]
    overall = Group("todas", "Todas", [int(a.rating or 0) for a in rated])

    def by_type(a: CsatAnswer) -> tuple[str, str]:
        return a.request_type_id, type_names.get(a.request_type_id) or a.request_type or a.request_type_id or "—"

    def by_channel(a: CsatAnswer) -> tuple[str, str]:
        return a.channel, channel_names.get(a.channel, a.channel or "—")

    def by_week(a: CsatAnswer) -> tuple[str, str]:
        year, week = week_of(a.answered_at or datetime.min.replace(tzinfo=timezone.utc), zone)
        return f"{year}-W{week:02d}", week_label(year, week)

    comments = sorted(
        (a for a in rated if (a.comment or "").strip()),
        key=lambda a: a.answered_at or datetime.min.replace(tzinfo=timezone.utc),
        reverse=True,
    )
    return Report(
        overall=overall,
        by_type=_busiest_first(_grouped(rated, by_type)),
        by_channel=_busiest_first(_grouped(rated, by_channel)),
        by_week=sorted(_grouped(rated, by_week).values(), key=lambda g: g.key),
        comments=comments,
    )
