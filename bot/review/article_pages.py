"""The knowledge base as leads see it: /revision/articulos, with its CSV and JSON exports.

Per article and per request type, for the days chosen: offers, answers to
direct questions, links followed, «me sirvió», «sigo con la solicitud» and
the deflection rate (bot/review/deflection.py). The figures carry no
customer data (no conversation ids, no texts), so nothing needs masking; the
exports are logged like every other. A log that does not answer is said in
Spanish, with the cause logged for the operator.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Mapping, Optional
from urllib.parse import urlencode

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.kb.deflections import DeflectionError
from bot.review.accounts import Session
from bot.review.auth import requires_lead
from bot.review.deflection import Report, Tally, in_period, report
from bot.review.exports import EXPORT_LIMIT, _export
from bot.review.index import Filters
from bot.review.pages import _filter_notices
from bot.review.room import ReviewRoom, room_of
from bot.review.satisfaction import day_start
from bot.review.thread_pages import UNREADABLE, period

logger = logging.getLogger(__name__)

ARTICLE_COLUMNS = [
    "agrupacion", "clave", "nombre", "ofrecido", "respuestas_directas", "vistas", "me_sirvio",
    "sigo_con_la_solicitud", "conversaciones_con_articulos", "conversaciones_resueltas", "tasa_de_resolucion",
]  # fmt: skip
WHAT = "los registros de la base de conocimiento"


def figures(room: ReviewRoom, chosen: Filters) -> Report:
    """The period's figures (raises ``DeflectionError`` when the log does not answer)."""
    if room.deflections is None:
        raise DeflectionError("el registro de artículos no está configurado en el servidor web")
    zone = room.views.zone
    since = day_start(chosen.date_from, zone) if chosen.date_from else None
    events = in_period(room.deflections.events(since=since), zone, chosen.date_from, chosen.date_to)
    lookup = room.articles

    def title_of(article_id: str) -> Optional[str]:
        found = lookup.get(article_id) if lookup is not None else None
        return found.title if found is not None else None

    return report(events, title_of, room.views.request_type_names)


@requires_lead
async def articles(request: Request, session: Session) -> HTTPResponse:
    return await asyncio.to_thread(_articles, room_of(request), session, request.args)


def _articles(room: ReviewRoom, session: Session, args: Mapping[str, Any]) -> HTTPResponse:
    chosen = period(args)
    try:
        found = figures(room, chosen)
    except DeflectionError as exc:
        logger.error("No se pudieron leer los registros de la base de conocimiento: %s", exc)
        return room.views.error(session, 503, UNREADABLE.format(what=WHAT))
    return room.views.render(
        "articulos.html",
        session,
        notices=_filter_notices(args, chosen),
        filters=chosen,
        report=found,
        query=urlencode(chosen.as_args()),
    )


# ---------------------------------------------------------------- exports
def _row(grouping: str, tally: Tally) -> dict[str, Any]:
    return {
        "agrupacion": grouping,
        "clave": tally.key,
        "nombre": tally.label,
        "ofrecido": tally.offered,
        "respuestas_directas": tally.answered,
        "vistas": tally.viewed,
        "me_sirvio": tally.helpful,
        "sigo_con_la_solicitud": tally.declined,
        "conversaciones_con_articulos": tally.conversations,
        "conversaciones_resueltas": tally.resolved,
        "tasa_de_resolucion": round(tally.rate, 4),
    }


def rows(found: Report) -> list[dict[str, Any]]:
    """The page's tables as one list: the total, then each article, then each request type."""
    listed = [_row("total", found.overall)]
    listed += [_row("articulo", t) for t in found.by_article]
    listed += [_row("tipo_de_solicitud", t) for t in found.by_type]
    return listed[:EXPORT_LIMIT]


def _articles_export(room: ReviewRoom, session: Session, args: Mapping[str, Any], fmt: str) -> HTTPResponse:
    chosen = period(args)
    try:
        found = figures(room, chosen)
    except DeflectionError as exc:
        logger.error("No se pudieron exportar los registros de la base de conocimiento: %s", exc)
        return room.views.error(session, 503, UNREADABLE.format(what=WHAT))
    subject = urlencode(chosen.as_args()) or "todas"
    return _export(room, session, fmt, rows(found), ARTICLE_COLUMNS, "articulos", "exportar_articulos", subject)


@requires_lead
async def articles_csv(request: Request, session: Session) -> HTTPResponse:
    return await asyncio.to_thread(_articles_export, room_of(request), session, request.args, "csv")


@requires_lead
async def articles_json(request: Request, session: Session) -> HTTPResponse:
    return await asyncio.to_thread(_articles_export, room_of(request), session, request.args, "json")


def register(bp: Blueprint) -> None:
    bp.add_route(articles, "/articulos", methods=["GET"])
    bp.add_route(articles_csv, "/articulos.csv", methods=["GET"])
    bp.add_route(articles_json, "/articulos.json", methods=["GET"])
