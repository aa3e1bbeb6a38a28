"""The funnel by question: of the conversations that reached a request type, how far each got and why not.

Three SQL aggregates over the cached facts (``review_requests`` and
``review_refusals`` joined to the filtered conversations) and one query for
the latest refused answers: a page over 100 000 conversations adds up rows,
it never reads a tracker event.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Optional, Sequence

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Engine

from bot.catalog import Catalog, RequestType
from bot.dialogue.slots import DESCRIPTION, KB_ANSWER, PHONE, PHONE_COUNTRY
from bot.review import db
from bot.review.intake import NOT_UNDERSTOOD, QUESTIONS, REFUSED_AT_SUBMIT
from bot.review.metrics_model import SUMMARY, Example, Funnel, QuestionStep, TypeFunnel
from bot.sqlengine import as_utc

EXAMPLES = 5
ALL_TYPES = "Todos los tipos"
# The form's own questions (the catalog names its fields).
QUESTION_LABELS = {PHONE_COUNTRY: "País del teléfono", KB_ANSWER: "Artículo sugerido"}
# Why an answer was refused, as the dialogue's responses say it (``utter_invalid_<question>_<reason>``).
REFUSAL_LABELS = {
    "empty": "Respuesta vacía",
    "missing_at": "Correo sin @",
    "invalid": "Valor no válido",
    "too_short": "Demasiado corto",
    "too_long": "Demasiado largo",
    "unsupported_country": "País que no atendemos",
    NOT_UNDERSTOOD: "Respuesta no entendida",
    REFUSED_AT_SUBMIT: "Rechazado al enviar",
}
_QUESTION_REFUSALS = {
    ("email", "invalid"): "Correo no válido",
    ("phone", "invalid"): "Teléfono no válido",
    ("phone", "too_short"): "Teléfono demasiado corto",
    ("phone", "too_long"): "Teléfono con demasiados dígitos",
    ("description", "too_short"): "Descripción demasiado corta",
    ("description", "too_long"): "Descripción demasiado larga",
    ("item", "invalid"): "Opción que no está en la lista",
    (PHONE_COUNTRY, "invalid"): "País que no se ofreció",
}


def refusal_label(question: str, reason: str) -> str:
    return _QUESTION_REFUSALS.get((question, reason)) or REFUSAL_LABELS.get(reason, reason)


def question_label(question: str, catalog: Catalog, request_type: Optional[RequestType] = None) -> str:
    spec = (request_type.field(question) if request_type else None) or catalog.field_defs.get(question)
    if spec is not None:
        return spec.short_label or spec.label
    return QUESTION_LABELS.get(question, question)


def questions_of(request_type: Optional[RequestType], asked: dict[str, int]) -> list[str]:
    """The steps of one type's funnel: its fields in the catalog's order, with the form's own questions.

    The phone's country is a step wherever the type asks a phone; the
    suggested article only where it was offered (the knowledge base may be off).
    """
    if request_type is None:
        return [q for q in QUESTIONS if asked.get(q)]
    steps: list[str] = []
    for spec in request_type.fields:
        steps.append(spec.id)
        if spec.id == DESCRIPTION and asked.get(KB_ANSWER):
            steps.append(KB_ANSWER)
        if spec.id == PHONE:
            steps.append(PHONE_COUNTRY)
    return steps


def _flag(column: Any) -> Any:
    return func.sum(case((column, 1), else_=0))


def _has(column: Any, question: str) -> Any:
    return func.sum(case((column.contains(f",{question},"), 1), else_=0))


class FunnelQueries:
    """The funnel's SQL over the review cache; ``conditions`` are the index's filters."""

    def __init__(self, engine: Engine, catalog: Catalog) -> None:
        self.engine = engine
        self.catalog = catalog

    def funnel(self, conditions: Sequence[Any], request_type: Optional[str]) -> Funnel:
        r, c = db.requests.c, db.conversations.c
        joined = db.requests.join(db.conversations, r.sender_id == c.sender_id)
        where = and_(True, *conditions, *([r.request_type == request_type] if request_type else []))
        columns = [
            r.request_type,
            func.count().label("reached"),
            _flag(r.summary).label("summary"),
            _flag(r.confirmed).label("confirmed"),
            _flag(r.ticket).label("tickets"),
            _flag(and_(r.last_question == SUMMARY, ~r.ticket)).label("stopped_at_summary"),
        ]
        for q in QUESTIONS:
            columns += [_has(r.asked, q).label(f"asked_{q}"), _has(r.answered, q).label(f"answered_{q}")]
        refusal = db.refusals.c
        with self.engine.connect() as connection:
            totals = list(
                connection.execute(select(*columns).select_from(joined).where(where).group_by(r.request_type))
            )
            stops = list(
                connection.execute(
                    select(r.request_type, r.last_question, func.count())
                    .select_from(joined)
                    .where(where, ~r.ticket, r.last_question.isnot(None))
                    .group_by(r.request_type, r.last_question)
                )
            )
            refused_where = and_(True, *conditions, *([refusal.request_type == request_type] if request_type else []))
            refused_from = db.refusals.join(db.conversations, refusal.sender_id == c.sender_id)
            refused = list(
                connection.execute(
                    select(refusal.request_type, refusal.question, refusal.reason, func.count())
                    .select_from(refused_from)
                    .where(refused_where)
                    .group_by(refusal.request_type, refusal.question, refusal.reason)
                )
            )
            latest = (
                select(
                    refusal.request_type,
                    refusal.question,
                    refusal.sender_id,
                    refusal.text,
                    refusal.at,
                    func.row_number()
                    .over(
                        partition_by=(refusal.request_type, refusal.question),
                        order_by=(refusal.at.desc(), refusal.id.desc()),
                    )
                    .label("n"),
                )
                .select_from(refused_from)
                .where(refused_where)
                .subquery()
            )
            examples = list(connection.execute(select(latest).where(latest.c.n <= EXAMPLES)))
        return self._assemble(totals, stops, refused, examples)

    def _assemble(self, totals: list[Any], stops: list[Any], refused: list[Any], examples: list[Any]) -> Funnel:
        stopped: dict[tuple[str, str], int] = {(s[0], s[1]): int(s[2]) for s in stops}
        refusals: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for kind, question, reason, count in refused:
            refusals[(kind or "", question)][reason] = int(count)
        shown: dict[tuple[str, str], list[Example]] = defaultdict(list)
        for row in examples:
            shown[(row.request_type or "", row.question)].append(Example(row.sender_id, row.text, as_utc(row.at)))
        order = {rt.id: n for n, rt in enumerate(self.catalog.request_types)}
        by_type = []
        for row in sorted(totals, key=lambda t: (order.get(t.request_type, len(order)), t.request_type)):
            kind = row.request_type
            request_type = self.catalog.request_type(kind)
            asked = {q: int(getattr(row, f"asked_{q}") or 0) for q in QUESTIONS}
            steps = tuple(
                QuestionStep(
                    question=q,
                    label=question_label(q, self.catalog, request_type),
                    asked=asked.get(q, 0),
                    answered=int(getattr(row, f"answered_{q}", 0) or 0),
                    stopped_here=stopped.get((kind, q), 0),
                    refusals=dict(refusals.get((kind, q), {})),
                    refusal_labels={reason: refusal_label(q, reason) for reason in refusals.get((kind, q), {})},
                    examples=tuple(shown.get((kind, q), ())),
                )
                for q in questions_of(request_type, asked)
            )
            by_type.append(
                TypeFunnel(
                    request_type=kind,
                    name=request_type.name if request_type else kind,
                    reached=int(row.reached),
                    steps=steps,
                    summary=int(row.summary or 0),
                    confirmed=int(row.confirmed or 0),
                    tickets=int(row.tickets or 0),
                    stopped_at_summary=int(row.stopped_at_summary or 0),
                )
            )
        return Funnel(overall=merged(by_type), by_type=tuple(by_type))


def merged(by_type: Sequence[TypeFunnel]) -> TypeFunnel:
    """All types together: every count summed, steps merged by question in the funnel's order."""
    steps: dict[str, list[QuestionStep]] = defaultdict(list)
    for funnel in by_type:
        for step in funnel.steps:
            steps[step.question].append(step)
    merged_steps = []
    for question in sorted(steps, key=lambda q: QUESTIONS.index(q) if q in QUESTIONS else len(QUESTIONS)):
        group = steps[question]
        refusals: dict[str, int] = defaultdict(int)
        labels: dict[str, str] = {}
        for step in group:
            for reason, count in step.refusals.items():
                refusals[reason] += count
            labels.update(step.refusal_labels)
        examples = sorted(
            (e for step in group for e in step.examples),
            key=lambda e: (e.at.timestamp() if e.at else 0.0, e.sender_id),
            reverse=True,
        )[:EXAMPLES]
        merged_steps.append(
            QuestionStep(
                question=question,
                label=group[0].label if len({s.label for s in group}) == 1 else QUESTION_LABELS.get(question, question),
                asked=sum(s.asked for s in group),
                answered=sum(s.answered for s in group),
                stopped_here=sum(s.stopped_here for s in group),
                refusals=dict(refusals),
                refusal_labels=labels,
                examples=tuple(examples),
            )
        )
    return TypeFunnel(
        request_type=None,
        name=ALL_TYPES,
        reached=sum(f.reached for f in by_type),
        steps=tuple(merged_steps),
        summary=sum(f.summary for f in by_type),
        confirmed=sum(f.confirmed for f in by_type),
        tickets=sum(f.tickets for f in by_type),
        stopped_at_summary=sum(f.stopped_at_summary for f in by_type),
    )
