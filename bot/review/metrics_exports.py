"""The figures of issue 15 as CSV and JSON: the same numbers the pages draw, each download logged.

``metrics_csv`` / ``metrics_json`` turn one figure (``KINDS``: embudo,
esfuerzo, comprension, contencion, satisfaccion) of ``Metrics`` into a file;
``export_response`` answers a lead's download (masked examples, no cell a
spreadsheet would run as a formula, an entry in the access log); the figures' pages
(``intake_pages``) route their export links to it.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Callable, Mapping, Optional, Sequence
from urllib.parse import urlencode

from sanic import response
from sanic.response import HTTPResponse

from bot.review.accounts import Session
from bot.review.exports import _inert
from bot.review.index import Filters
from bot.review.links import conversation_path
from bot.review.metrics import Metrics
from bot.review.metrics_model import Effort, EffortRow, Example, Funnel, TypeFunnel
from bot.review.room import ReviewRoom
from bot.review.views import security_headers

Table = tuple[Sequence[str], list[dict[str, Any]]]
FUNNEL, EFFORT, UNDERSTANDING, CONTAINMENT, CSAT = "embudo", "esfuerzo", "comprension", "contencion", "satisfaccion"
KINDS = (FUNNEL, EFFORT, UNDERSTANDING, CONTAINMENT, CSAT)
FUNNEL_COLUMNS = (
    "tipo_de_solicitud", "codigo_paso", "paso", "llegaron", "preguntada", "respondida", "se_detuvo_aqui", "rechazos",
    "ejemplos",
)  # fmt: skip
EFFORT_COLUMNS = (
    "grupo", "clave", "nombre", "tickets", "turnos_mediana", "turnos_p90", "minutos_mediana", "minutos_p90",
    "sin_pregunta_repetida",
)  # fmt: skip
UNDERSTANDING_COLUMNS = (
    "seccion", "semana", "turnos", "entendidos", "baja_confianza", "no_entendidos", "intent_predicho",
    "intent_corregido", "tipo_de_solicitud", "nombre", "veces",
)  # fmt: skip
CSAT_COLUMNS = ("grupo", "semana", "clave", "nombre", "calificaciones", "promedio")
ACCESS_ACTION = "exportar_cifras"  # logged as «exportar_cifras_<figura>_<csv|json>»


def _example(e: Example) -> dict[str, Any]:
    return {"enlace": conversation_path(e.sender_id), "texto": e.text, "fecha": e.at.isoformat() if e.at else ""}


def _refusals_text(refusals: Mapping[str, int], labels: Mapping[str, str]) -> str:
    return "; ".join(
        f"{labels.get(r, r)}: {n}" for r, n in sorted(refusals.items(), key=lambda i: labels.get(i[0], i[0]))
    )


def _funnel_rows(funnel: TypeFunnel) -> list[dict[str, Any]]:
    base = {"tipo_de_solicitud": funnel.name, "llegaron": funnel.reached}
    rows = [
        {
            **base,
            "codigo_paso": s.question,
            "paso": s.label,
            "preguntada": s.asked,
            "respondida": s.answered,
            "se_detuvo_aqui": s.stopped_here,
            "rechazos": _refusals_text(s.refusals, s.refusal_labels),
            "ejemplos": " | ".join(e.text for e in s.examples),
        }
        for s in funnel.steps
    ]
    empty = {"preguntada": "", "rechazos": "", "ejemplos": ""}
    rows.append({**base, **empty, "codigo_paso": "resumen", "paso": "Resumen mostrado", "respondida": funnel.summary,
                 "se_detuvo_aqui": funnel.stopped_at_summary})  # fmt: skip
    rows.append({**base, **empty, "codigo_paso": "confirmada", "paso": "Confirmada", "respondida": funnel.confirmed,
                 "se_detuvo_aqui": ""})  # fmt: skip
    rows.append({**base, **empty, "codigo_paso": "ticket", "paso": "Ticket creado", "respondida": funnel.tickets,
                 "se_detuvo_aqui": ""})  # fmt: skip
    return rows


def _type_json(funnel: TypeFunnel) -> dict[str, Any]:
    return {
        "tipo_de_solicitud": funnel.request_type,
        "nombre": funnel.name,
        "llegaron": funnel.reached,
        "pasos": [
            {
                "pregunta": s.question,
                "nombre": s.label,
                "preguntada": s.asked,
                "respondida": s.answered,
                "se_detuvo_aqui": s.stopped_here,
                "rechazos": [
                    {"motivo": r, "nombre": s.refusal_labels.get(r, r), "veces": n} for r, n in s.refusals.items()
                ],
                "ejemplos": [_example(e) for e in s.examples],
            }
            for s in funnel.steps
        ],
        "resumen": funnel.summary,
        "confirmadas": funnel.confirmed,
        "tickets": funnel.tickets,
        "se_detuvieron_en_resumen": funnel.stopped_at_summary,
    }


def _effort_json(row: EffortRow) -> dict[str, Any]:
    return {
        "clave": row.key,
        "nombre": row.label,
        "tickets": row.tickets,
        "turnos_mediana": row.turns_median,
        "turnos_p90": row.turns_p90,
        "minutos_mediana": round(row.minutes_median, 2),
        "minutos_p90": round(row.minutes_p90, 2),
        "sin_pregunta_repetida": round(row.no_repeat_share, 4),
    }


def _effort_rows(effort: Effort) -> list[dict[str, Any]]:
    groups = [("general", [effort.overall]), ("tipo", list(effort.by_type)), ("canal", list(effort.by_channel))]
    rows = []
    for group, found in groups:
        for row in found:
            data = _effort_json(row)
            rows.append({"grupo": group, "clave": data.pop("clave"), **data})
    return rows


def _funnel(metrics: Metrics, filters: Filters) -> tuple[Table, dict[str, Any]]:
    funnel: Funnel = metrics.funnel(filters)
    rows = [row for f in (funnel.overall, *funnel.by_type) for row in _funnel_rows(f)]
    return (FUNNEL_COLUMNS, rows), {
        "general": _type_json(funnel.overall),
        "por_tipo": [_type_json(f) for f in funnel.by_type],
    }


def _effort(metrics: Metrics, filters: Filters) -> tuple[Table, dict[str, Any]]:
    effort = metrics.effort(filters)
    data = {
        "general": _effort_json(effort.overall),
        "por_tipo": [_effort_json(r) for r in effort.by_type],
        "por_canal": [_effort_json(r) for r in effort.by_channel],
    }
    return (EFFORT_COLUMNS, _effort_rows(effort)), data


def _understanding(metrics: Metrics, filters: Filters) -> tuple[Table, dict[str, Any]]:
    found = metrics.understanding(filters)
    weeks = [
        {"semana": w.week, "turnos": w.turns, "entendidos": w.understood, "baja_confianza": w.low_confidence,
         "no_entendidos": w.fallback}
        for w in found.weeks
    ]  # fmt: skip
    corrections = [{"intent_predicho": c.predicted, "intent_corregido": c.corrected, "veces": c.count}
                   for c in found.corrections]  # fmt: skip
    picks = [{"tipo_de_solicitud": s.request_type, "nombre": s.label, "veces": s.count} for s in found.suggestions]
    rows = (
        [{"seccion": "semana", **w} for w in weeks]
        + [{"seccion": "correccion", **c} for c in corrections]
        + [{"seccion": "sugerencia_elegida", **p} for p in picks]
    )
    return (UNDERSTANDING_COLUMNS, rows), {"semanas": weeks, "correcciones": corrections, "sugerencias_elegidas": picks}


def _containment(metrics: Metrics, filters: Filters) -> tuple[Table, dict[str, Any]]:
    found = metrics.containment(filters)
    weeks = [{"semana": w.week, **{o: w.counts.get(o, 0) for o in found.outcomes}} for w in found.weeks]
    data = {"resultados": [{"codigo": o, "nombre": found.labels[o]} for o in found.outcomes], "semanas": weeks}
    return (("semana", *found.outcomes), weeks), data


def _csat(metrics: Metrics, filters: Filters) -> tuple[Table, dict[str, Any]]:
    found = metrics.csat(filters)
    groups = {"semana": found.by_week, "tipo": found.by_type, "canal": found.by_channel}
    data = {
        group: [
            {"semana": r.week, "clave": r.key, "nombre": r.label, "calificaciones": r.ratings, "promedio": r.average}
            for r in rows
        ]
        for group, rows in groups.items()
    }
    rows = [{"grupo": group, **r} for group, found_rows in data.items() for r in found_rows]
    return (CSAT_COLUMNS, [{**r, "promedio": "" if r["promedio"] is None else r["promedio"]} for r in rows]), data


_BUILDERS: dict[str, Callable[[Metrics, Filters], tuple[Table, dict[str, Any]]]] = {
    FUNNEL: _funnel,
    EFFORT: _effort,
    UNDERSTANDING: _understanding,
    CONTAINMENT: _containment,
    CSAT: _csat,
}


def _built(kind: str, metrics: Metrics, filters: Filters) -> tuple[Table, dict[str, Any]]:
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise ValueError(f"No hay una cifra llamada «{kind}»: usa una de {', '.join(KINDS)}.")
    return builder(metrics, filters)


def metrics_csv(kind: str, metrics: Metrics, filters: Filters) -> str:
    """One figure as UTF-8 CSV text with a BOM (accents in spreadsheets); no cell is a formula."""
    (columns, rows), _ = _built(kind, metrics, filters)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows({key: _inert(value) for key, value in row.items()} for row in rows)
    return "\ufeff" + buffer.getvalue()


def metrics_json(kind: str, metrics: Metrics, filters: Filters) -> dict[str, Any]:
    """One figure as a JSON-ready dict (Spanish keys, the filters it covers under «filtros»)."""
    _, data = _built(kind, metrics, filters)
    return {"cifra": kind, "filtros": filters.as_args(), **data}


def export_response(room: ReviewRoom, session: Session, kind: str, fmt: str, args: Mapping[str, Any]) -> HTTPResponse:
    """A lead's download of one figure (blocking: call it in a worker thread); logged in the access log."""
    metrics: Optional[Metrics] = room.metrics
    if kind not in KINDS or fmt not in ("csv", "json") or metrics is None:
        return room.views.error(session, 404, "No existe esa exportación.")
    room.index.refresh()
    filters = Filters.from_args(args)
    room.accounts.log_access(session.username, f"{ACCESS_ACTION}_{kind}_{fmt}", urlencode(filters.as_args()) or "todas")
    if fmt == "csv":
        body = metrics_csv(kind, metrics, filters).encode("utf-8")
        headers = {"Content-Disposition": f'attachment; filename="{kind}.csv"'}
        return security_headers(response.raw(body, content_type="text/csv; charset=utf-8", headers=headers))
    data = metrics_json(kind, metrics, filters)
    return security_headers(response.json(data, dumps=lambda d: json.dumps(d, ensure_ascii=False)))
