"""The figures leads read about intake (issue 15), as plain values: computed by ``bot.review.metrics``, drawn
by the pages.

The contract between the two: the metrics module fills these from the
conversation index (incrementally kept, so a page over 100 000
conversations is a few SQL aggregates), the pages and the weekly report
only render them, and the CSV/JSON exports serialise the same objects, so a
chart, its table and its export can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Optional

# The steps of the funnel after the form's questions (the questions are the catalog's field ids,
# plus ``phone_country`` when asked).
SUMMARY = "resumen"  # the summary was shown
CONFIRMED = "confirmada"  # the customer said «sí» to it
TICKET = "ticket"  # a ticket was created


@dataclass(frozen=True)
class Example:
    """One refused answer, masked, linked to its transcript (``sender_id``)."""

    sender_id: str
    text: str
    at: Optional[datetime]


@dataclass(frozen=True)
class QuestionStep:
    """One question of a request type's form, over the conversations that reached the type.

    ``asked``: conversations asked it; ``answered``: conversations where it got a valid value (asked or filled from
    the opening message or the channel); ``stopped_here``: conversations whose last question asked was this one and
    that ended without a ticket; ``refusals``: reason code -> refused answers (``refusal_labels`` words them in
    Spanish); ``examples``: the latest refused answers (at most 5).
    """

    question: str
    label: str
    asked: int
    answered: int
    stopped_here: int
    refusals: dict[str, int] = field(default_factory=dict)
    refusal_labels: dict[str, str] = field(default_factory=dict)
    examples: tuple[Example, ...] = ()


@dataclass(frozen=True)
class TypeFunnel:
    """The funnel of one request type (``request_type`` None: all types together, steps merged by question)."""

    request_type: Optional[str]
    name: str
    reached: int
    steps: tuple[QuestionStep, ...]
    summary: int
    confirmed: int
    tickets: int
    stopped_at_summary: int  # saw the summary, no ticket


@dataclass(frozen=True)
class Funnel:
    overall: TypeFunnel
    by_type: tuple[TypeFunnel, ...]


@dataclass(frozen=True)
class EffortRow:
    """Effort to a ticket: customer turns and minutes from the first message, median and p90.

    ``no_repeat_share``: share of these tickets created with no question asked twice.
    """

    key: str
    label: str
    tickets: int
    turns_median: float
    turns_p90: float
    minutes_median: float
    minutes_p90: float
    no_repeat_share: float


@dataclass(frozen=True)
class Effort:
    overall: EffortRow
    by_type: tuple[EffortRow, ...]
    by_channel: tuple[EffortRow, ...]


@dataclass(frozen=True)
class WeekUnderstanding:
    """Customer turns of one ISO week (``2026-W48``): understood, low confidence, fallback (shares over ``turns``)."""

    week: str
    turns: int
    understood: int
    low_confidence: int
    fallback: int


@dataclass(frozen=True)
class Correction:
    """Intents leads corrected in the review app: what the NLU said, what the lead set, how often."""

    predicted: str
    corrected: str
    count: int


@dataclass(frozen=True)
class SuggestionPick:
    """A suggestion button customers picked after a low-confidence turn: which types get confused."""

    request_type: str
    label: str
    count: int


@dataclass(frozen=True)
class Understanding:
    weeks: tuple[WeekUnderstanding, ...]
    corrections: tuple[Correction, ...]
    suggestions: tuple[SuggestionPick, ...]


@dataclass(frozen=True)
class WeekContainment:
    """Conversations of one ISO week by how they ended (outcome id -> count; ids and labels in ``Containment``)."""

    week: str
    counts: dict[str, int]


@dataclass(frozen=True)
class Containment:
    outcomes: tuple[str, ...]  # ticket, redirected, article, person, cancelled, abandoned (in this order)
    labels: dict[str, str]
    weeks: tuple[WeekContainment, ...]


@dataclass(frozen=True)
class WeekCsat:
    week: str
    key: str  # a request type id or a channel, "" for all
    label: str
    ratings: int
    average: Optional[float]


@dataclass(frozen=True)
class Csat:
    by_week: tuple[WeekCsat, ...]
    by_type: tuple[WeekCsat, ...]
    by_channel: tuple[WeekCsat, ...]


@dataclass(frozen=True)
class Period:
    """The days a report covers, in the team's time zone."""

    start: date
    end: date  # inclusive
    label: str  # e.g. "2026-W48"


@dataclass(frozen=True)
class WeeklyReport:
    """Everything above for one ISO week and the week before it, for ``python -m bot review report``."""

    week: Period
    previous: Period
    funnel: tuple[Funnel, Funnel]
    effort: tuple[Effort, Effort]
    understanding: tuple[Understanding, Understanding]
    containment: tuple[Containment, Containment]
    csat: tuple[Csat, Csat]
