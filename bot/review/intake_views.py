"""What the intake pages and the weekly report show: the metrics' dataclasses turned into table rows and charts.

Pure functions over ``bot.review.metrics_model`` values: the pages, the
report and the tests all go through them, so a number in a chart is the one
in the table under it. Words are Spanish (leads read them); nothing here
reads a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from bot.review.intake_charts import (
    HBarChart,
    PlotChart,
    hbars,
    number,
    percent,
    share_lines,
    short_week,
    stacked_columns,
)
from bot.review.metrics_model import (
    Containment,
    Csat,
    Effort,
    EffortRow,
    Funnel,
    QuestionStep,
    TypeFunnel,
    Understanding,
)


def share(part: int, whole: int) -> Optional[float]:
    return part / whole if whole else None


def share_text(part: int, whole: int) -> str:
    value = share(part, whole)
    return percent(value) if value is not None else "—"


# ------------------------------------------------------------------ funnel
@dataclass(frozen=True)
class FunnelRow:
    step: str
    label: str
    count: int
    of_reached: str
    asked: Optional[int] = None
    stopped: Optional[int] = None
    refused: Optional[int] = None


def funnel_rows(funnel: TypeFunnel) -> list[FunnelRow]:
    """Reached, each question answered, summary, confirmed, ticket: the funnel's bars in order."""
    rows = [
        FunnelRow(
            "llegaron", "Llegaron al tipo de solicitud", funnel.reached, share_text(funnel.reached, funnel.reached)
        )
    ]
    rows += [
        FunnelRow(
            step.question,
            f"Respondieron: {step.label}",
            step.answered,
            share_text(step.answered, funnel.reached),
            asked=step.asked,
            stopped=step.stopped_here,
            refused=sum(step.refusals.values()),
        )  # fmt: skip
        for step in funnel.steps
    ]
    rows += [
        FunnelRow("resumen", "Vieron el resumen", funnel.summary, share_text(funnel.summary, funnel.reached),
                  stopped=funnel.stopped_at_summary),
        FunnelRow("confirmada", "Confirmaron", funnel.confirmed, share_text(funnel.confirmed, funnel.reached)),
        FunnelRow("ticket", "Ticket creado", funnel.tickets, share_text(funnel.tickets, funnel.reached)),
    ]  # fmt: skip
    return rows


def funnel_chart(funnel: TypeFunnel) -> HBarChart:
    rows = funnel_rows(funnel) if funnel.reached else []
    return hbars(
        f"Embudo: {funnel.name}",
        "Conversaciones",
        [(r.label, float(r.count), f"{r.count} ({r.of_reached})") for r in rows],
    )


@dataclass(frozen=True)
class Refusal:
    type_name: str
    question: str
    reason: str
    count: int


def refusals(funnels: Sequence[TypeFunnel]) -> list[Refusal]:
    """Every refused answer by type, question and reason, most frequent first."""
    found = [
        Refusal(f.name, step.label, step.refusal_labels.get(code, code), count)
        for f in funnels
        for step in f.steps
        for code, count in step.refusals.items()
        if count
    ]
    return sorted(found, key=lambda r: (-r.count, r.type_name, r.question))


def examples(funnels: Sequence[TypeFunnel]) -> list[tuple[TypeFunnel, QuestionStep]]:
    """The (type, question) pairs with refused answers to show."""
    return [(f, step) for f in funnels for step in f.steps if step.examples]


def funnel_context(funnel: Funnel) -> dict[str, Any]:
    return {
        "overall": funnel.overall,
        "overall_rows": funnel_rows(funnel.overall),
        "overall_chart": funnel_chart(funnel.overall),
        "types": [{"funnel": f, "rows": funnel_rows(f), "chart": funnel_chart(f)} for f in funnel.by_type if f.reached],
        "refusals": refusals(funnel.by_type),
        "examples": examples(funnel.by_type),
    }


# ------------------------------------------------------------------ effort
def _effort_charts(rows: Sequence[EffortRow], grouping: str) -> tuple[HBarChart, HBarChart]:
    listed = [r for r in rows if r.tickets]
    turns = hbars(
        f"Turnos del cliente hasta el ticket, por {grouping}",
        "Turnos (barra: mediana · marca: p90)",
        [(r.label, r.turns_median, number(r.turns_median)) for r in listed],
        [(r.turns_p90, number(r.turns_p90)) for r in listed],
    )
    minutes = hbars(
        f"Minutos desde el primer mensaje hasta el ticket, por {grouping}",
        "Minutos (barra: mediana · marca: p90)",
        [(r.label, r.minutes_median, number(r.minutes_median)) for r in listed],
        [(r.minutes_p90, number(r.minutes_p90)) for r in listed],
    )
    return turns, minutes


def effort_context(effort: Effort) -> dict[str, Any]:
    return {
        "overall": effort.overall,
        "groups": [
            {"id": "por-tipo", "title": "Por tipo de solicitud", "heading": "Tipo de solicitud",
             "rows": [r for r in effort.by_type if r.tickets], "charts": _effort_charts(effort.by_type, "tipo")},
            {"id": "por-canal", "title": "Por canal", "heading": "Canal",
             "rows": [r for r in effort.by_channel if r.tickets], "charts": _effort_charts(effort.by_channel, "canal")},
        ],
    }  # fmt: skip


# ----------------------------------------------------------- understanding
@dataclass(frozen=True)
class WeekShares:
    week: str
    turns: int
    understood: int
    low_confidence: int
    fallback: int

    @property
    def shares(self) -> tuple[str, str, str]:
        return (
            share_text(self.understood, self.turns),
            share_text(self.low_confidence, self.turns),
            share_text(self.fallback, self.turns),
        )


def understanding_chart(found: Understanding) -> Optional[PlotChart]:
    weeks = [w for w in found.weeks if w.turns]
    if not weeks:
        return None
    return share_lines(
        "Turnos del cliente entendidos, con baja confianza y no entendidos, por semana",
        "Semana ISO",
        [short_week(w.week) for w in weeks],
        [
            ("entendidos", "Entendidos", [share(w.understood, w.turns) for w in weeks]),
            ("baja_confianza", "Baja confianza", [share(w.low_confidence, w.turns) for w in weeks]),
            ("no_entendidos", "No entendidos", [share(w.fallback, w.turns) for w in weeks]),
        ],
    )


def understanding_context(found: Understanding) -> dict[str, Any]:
    corrections = sorted(found.corrections, key=lambda c: (-c.count, c.predicted, c.corrected))
    suggestions = sorted(found.suggestions, key=lambda s: (-s.count, s.label))
    return {
        "weeks": [WeekShares(w.week, w.turns, w.understood, w.low_confidence, w.fallback) for w in found.weeks],
        "chart": understanding_chart(found),
        "corrections": corrections,
        "corrections_chart": hbars(
            "Intents más corregidos por los líderes",
            "Correcciones",
            [(f"{c.predicted} → {c.corrected}", float(c.count), str(c.count)) for c in corrections],
        ),
        "suggestions": suggestions,
        "suggestions_chart": hbars(
            "Botones de sugerencia que eligieron los clientes",
            "Veces elegido",
            [(s.label, float(s.count), str(s.count)) for s in suggestions],
        ),
    }


# ------------------------------------------------------------- containment
def containment_chart(found: Containment) -> Optional[PlotChart]:
    weeks = [w for w in found.weeks if sum(w.counts.values())]
    if not weeks:
        return None
    return stacked_columns(
        "Cómo terminaron las conversaciones, por semana",
        "Semana ISO",
        [(short_week(w.week), w.counts) for w in weeks],
        [(o, found.labels.get(o, o)) for o in found.outcomes],
    )


def containment_context(found: Containment) -> dict[str, Any]:
    return {
        "outcomes": [(o, found.labels.get(o, o)) for o in found.outcomes],
        "weeks": [
            {"week": w.week, "counts": w.counts, "total": sum(w.counts.get(o, 0) for o in found.outcomes)}
            for w in found.weeks
        ],
        "chart": containment_chart(found),
    }


# -------------------------------------------------------------------- CSAT
def csat_context(found: Csat) -> dict[str, Any]:
    rated = [w for w in found.by_week if w.ratings and w.average is not None]
    return {
        "groups": [
            {"id": "csat-semana", "title": "Por semana", "heading": "Semana", "rows": list(found.by_week)},
            {
                "id": "csat-tipo",
                "title": "Por tipo de solicitud",
                "heading": "Tipo de solicitud",
                "rows": list(found.by_type),
            },
            {"id": "csat-canal", "title": "Por canal", "heading": "Canal", "rows": list(found.by_channel)},
        ],  # fmt: skip
        "chart": hbars(
            "Promedio de satisfacción (1 a 5) por semana",
            "Promedio de 1 a 5",
            [(w.label or w.week, float(w.average or 0), number(w.average or 0)) for w in rated],
        ),
    }
