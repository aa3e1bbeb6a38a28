"""The conversation list, a transcript and the CSAT answers as CSV or JSON files, each download logged.

Exports carry the same masked data as the pages. In CSV no cell can be read
as a spreadsheet formula: customer words such as «=HYPERLINK(...)» would run
when a lead opens the file.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import logging
from typing import Any, Mapping, Sequence
from urllib.parse import urlencode

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.review.accounts import Session
from bot.review.analysis import OUTCOME_LABELS
from bot.review.auth import requires_lead
from bot.review.index import Filters
from bot.review.room import ReviewRoom, room_of
from bot.review.satisfaction import week_of
from bot.review.thread_pages import answers_in, period
from bot.review.views import CHANNEL_LABELS, customer, security_headers
from bot.thread import ThreadError

logger = logging.getLogger(__name__)

EXPORT_LIMIT = 10_000
LIST_COLUMNS = [
    "conversacion", "inicio", "canal", "cliente", "tipo_de_solicitud", "resultado", "tickets", "turnos",
    "turnos_no_entendidos",
]  # fmt: skip
TRANSCRIPT_COLUMNS = ["hora", "quien", "texto", "intent", "confianza", "opciones"]
CSAT_COLUMNS = ["ticket", "tipo_de_solicitud", "canal", "calificacion", "respondida", "semana", "comentario"]

# What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: Any) -> Any:
    """A cell a spreadsheet shows as text: the leading quote (OWASP's advice) makes a formula plain text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_response(rows: list[dict[str, Any]], columns: Sequence[str], filename: str) -> HTTPResponse:
    """UTF-8 CSV with a BOM, so spreadsheet programs show accents correctly; no cell is a formula."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows({key: _inert(value) for key, value in row.items()} for row in rows)
    return security_headers(
        response.raw(
            ("\ufeff" + buffer.getvalue()).encode("utf-8"),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    )


def _export(
    room: ReviewRoom,
    session: Session,
    fmt: str,
    data: list[dict[str, Any]],
    columns: Sequence[str],
    name: str,
    action: str,
    subject: str,
) -> HTTPResponse:
    """One export as CSV or JSON, logged as «<action>_<fmt>» with what it covered."""
    room.accounts.log_access(session.username, f"{action}_{fmt}", subject)
    if fmt == "csv":
        return _csv_response(data, columns, f"{name}.csv")
    return security_headers(response.json(data, dumps=lambda d: json.dumps(d, ensure_ascii=False)))


# ------------------------------------------------------------------ list
def _list_rows(room: ReviewRoom, filters: Filters) -> list[dict[str, Any]]:
    rows, _ = room.index.search(dataclasses.replace(filters, page=1), page_size=EXPORT_LIMIT)
    views = room.views
    return [
        {
            "conversacion": (
                row.sender_id
                if not row.sender_id.startswith("whatsapp:")
                else customer(None, None, row.sender_id, False)
            ),
            "inicio": views.local(row.started_at, "%Y-%m-%d %H:%M:%S"),
            "canal": row.channel or "",
            "cliente": customer(row.email, row.phone, row.sender_id, full=False),
            "tipo_de_solicitud": views.request_type_names.get(row.last_request_type or "", ""),
            "resultado": OUTCOME_LABELS.get(row.outcome, row.outcome),
            "tickets": " ".join(row.tickets),
            "turnos": row.turns,
            "turnos_no_entendidos": row.missed_turns,
        }
        for row in rows
    ]


def _list_export(room: ReviewRoom, session: Session, args: Mapping[str, Any], fmt: str) -> HTTPResponse:
    room.index.refresh()
    filters = Filters.from_args(args)
    subject = urlencode(filters.as_args()) or "todas"
    return _export(
        room, session, fmt, _list_rows(room, filters), LIST_COLUMNS, "conversaciones", "exportar_lista", subject
    )


@requires_lead
async def conversations_csv(request: Request, session: Session) -> HTTPResponse:
    return await asyncio.to_thread(_list_export, room_of(request), session, request.args, "csv")


@requires_lead
async def conversations_json(request: Request, session: Session) -> HTTPResponse:
    return await asyncio.to_thread(_list_export, room_of(request), session, request.args, "json")


# ------------------------------------------------------------ transcript
def _transcript_rows(room: ReviewRoom, sender: str) -> list[dict[str, Any]]:
    views = room.views
    return [
        {
            "hora": views.local(u.at, "%Y-%m-%d %H:%M:%S"),
            "quien": u.speaker,
            "texto": views.mask(u.text, full=False),
            "intent": u.intent or "",
            "confianza": round(u.confidence, 3) if u.confidence is not None else "",
            "opciones": " | ".join(title for title, _ in u.buttons),
        }
        for u in room.reader.conversation(sender).utterances
    ]


def _transcript_export(room: ReviewRoom, session: Session, token: str, fmt: str) -> HTTPResponse:
    sender = room.existing_conversation(token)
    if sender is None:
        return room.views.error(session, 404, "No existe esa conversación.")
    rows = _transcript_rows(room, sender)
    return _export(room, session, fmt, rows, TRANSCRIPT_COLUMNS, "transcripcion", "exportar_transcripcion", sender)


@requires_lead
async def transcript_json(request: Request, session: Session, token: str) -> HTTPResponse:
    return await asyncio.to_thread(_transcript_export, room_of(request), session, token, "json")


@requires_lead
async def transcript_csv(request: Request, session: Session, token: str) -> HTTPResponse:
    return await asyncio.to_thread(_transcript_export, room_of(request), session, token, "csv")


# ------------------------------------------------------------------ CSAT
def _csat_rows(room: ReviewRoom, args: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
    chosen = period(args)
    views = room.views
    rows = []
    for answer in answers_in(room, chosen)[-EXPORT_LIMIT:]:
        year, week = week_of(answer.answered_at, views.zone) if answer.answered_at else (0, 0)
        rows.append(
            {
                "ticket": answer.ticket_key,
                "tipo_de_solicitud": views.request_type_names.get(answer.request_type_id) or answer.request_type,
                "canal": CHANNEL_LABELS.get(answer.channel, answer.channel),
                "calificacion": answer.rating,
                "respondida": views.local(answer.answered_at, "%Y-%m-%d %H:%M:%S"),
                "semana": f"{year}-W{week:02d}" if year else "",
                "comentario": views.mask(answer.comment or "", full=False),
            }
        )
    return rows, urlencode(chosen.as_args()) or "todas"


def _csat_export(room: ReviewRoom, session: Session, args: Mapping[str, Any], fmt: str) -> HTTPResponse:
    try:
        rows, subject = _csat_rows(room, args)
    except ThreadError as exc:
        logger.error("No se pudieron exportar las encuestas de satisfacción: %s", exc)
        return room.views.error(session, 503, "No se pudieron leer las encuestas: la base de datos no responde.")
    return _export(room, session, fmt, rows, CSAT_COLUMNS, "satisfaccion", "exportar_csat", subject)


@requires_lead
async def csat_csv(request: Request, session: Session) -> HTTPResponse:
    return await asyncio.to_thread(_csat_export, room_of(request), session, request.args, "csv")


@requires_lead
async def csat_json(request: Request, session: Session) -> HTTPResponse:
    return await asyncio.to_thread(_csat_export, room_of(request), session, request.args, "json")


def register(bp: Blueprint) -> None:
    bp.add_route(conversations_csv, "/conversaciones.csv", methods=["GET"])
    bp.add_route(conversations_json, "/conversaciones.json", methods=["GET"])
    bp.add_route(transcript_json, "/c/<token:str>/transcripcion.json", methods=["GET"])
    bp.add_route(transcript_csv, "/c/<token:str>/transcripcion.csv", methods=["GET"])
    bp.add_route(csat_csv, "/satisfaccion.csv", methods=["GET"])
    bp.add_route(csat_json, "/satisfaccion.json", methods=["GET"])
