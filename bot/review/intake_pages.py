"""The intake figures as leads read them: /revision/embudo, /esfuerzo, /comprension, /contencion and their exports.

Each page asks ``room.metrics`` (bot/review/metrics.py, kept incrementally
from the conversation index) for one figure under the lead's filters, and
renders it through ``intake_views`` as an SVG chart with the same numbers in
a table. Filters come from the query string and are hostile until parsed
(``Filters.from_args``); a value that names nothing known is said, never a
5xx. The exports (``<page>.csv`` / ``<page>.json``) are the metrics' own
(``metrics_exports.export_response``): the same dataclasses serialised, each
download logged like the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import date
from typing import Any, Callable, Mapping, Optional
from urllib.parse import urlencode

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.review import intake_views, metrics_exports
from bot.review.accounts import Session
from bot.review.auth import requires_lead
from bot.review.index import Filters
from bot.review.pages import _filter_notices
from bot.review.room import ReviewRoom, room_of
from bot.review.views import CHANNEL_LABELS, Views

logger = logging.getLogger(__name__)

EARLIEST, LATEST = date(1970, 1, 1), date(9000, 12, 31)
UNAVAILABLE = (
    "No se pudieron calcular las cifras: la base de datos no responde. Inténtalo de nuevo en unos minutos; "
    "si sigue igual, avisa a quien administra el servidor."
)


@dataclasses.dataclass(frozen=True)
class Kind:
    """One intake page: the metric it asks for, how its figures become a template's context, its words."""

    page: str  # the path, and the figure's name for the metrics' exports (``metrics_exports.KINDS``)
    metric: str  # the ``Metrics`` method
    template: str
    context: Callable[[Any], dict[str, Any]]


KINDS = {
    k.page: k
    for k in (
        Kind(metrics_exports.FUNNEL, "funnel", "embudo.html", intake_views.funnel_context),
        Kind(metrics_exports.EFFORT, "effort", "esfuerzo.html", intake_views.effort_context),
        Kind(metrics_exports.UNDERSTANDING, "understanding", "comprension.html", intake_views.understanding_context),
        Kind(metrics_exports.CONTAINMENT, "containment", "contencion.html", intake_views.containment_context),
    )
}  # fmt: skip


def _plausible(day: Optional[date]) -> Optional[date]:
    """A day the clock arithmetic can handle (9999-12-31 plus a day overflows): else no filter, and a notice."""
    return day if day is not None and EARLIEST <= day <= LATEST else None


def intake_filters(args: Mapping[str, Any]) -> Filters:
    """The list's filters that mean something for figures: days, channel, country, request type."""
    chosen = Filters.from_args(args)
    return dataclasses.replace(
        chosen, date_from=_plausible(chosen.date_from), date_to=_plausible(chosen.date_to),
        outcome=None, text=None, page=1, include_empty=False,
    )  # fmt: skip


def choices(views: Views, channels: list[str]) -> dict[str, list[tuple[str, str]]]:
    """The filters' options: the channels seen (and the known ones), the catalog's countries and request types."""
    known = sorted(set(channels) | set(CHANNEL_LABELS))
    return {
        "channels": [(c, CHANNEL_LABELS.get(c, c)) for c in known],
        "countries": [(c.id, c.name) for c in views.catalog.countries],
        "types": sorted(((rt.id, rt.name) for rt in views.catalog.request_types), key=lambda item: item[1]),
    }


def notices(args: Mapping[str, Any], filters: Filters, options: dict[str, list[tuple[str, str]]]) -> list[str]:
    """Dates that did not parse, and a channel, country or type that names nothing: said, not silently empty."""
    found = _filter_notices(args, filters)
    for value, key, what in (
        (filters.channel, "channels", "El canal"),
        (filters.country, "countries", "El país"),
        (filters.request_type, "types", "El tipo de solicitud"),
    ):
        if value and value not in {v for v, _ in options[key]}:
            found.append(f"{what} «{value}» no existe: no hay cifras con ese filtro.")
    return found


def render_page(
    views: Views,
    session: Optional[Session],
    kind: Kind,
    figures: Any,
    filters: Filters,
    args: Mapping[str, Any],
    channels: list[str],
) -> HTTPResponse:
    """One intake page from its figures (a ``metrics_model`` value): chart, table, filters, export links."""
    options = choices(views, channels)
    return views.render(
        kind.template,
        session,
        page=kind.page,
        data=kind.context(figures),
        filters=filters,
        country=filters.country,
        choices=options,
        notices=notices(args, filters, options),
        query=urlencode(filters.as_args()),
    )


def _figures(room: ReviewRoom, kind: Kind, filters: Filters) -> Any:
    metrics = room.metrics
    if metrics is None:
        raise LookupError("room.metrics no está configurado")
    room.index.refresh()  # the figures are sums over the index: new conversations first
    return getattr(metrics, kind.metric)(filters)


def _page(room: ReviewRoom, session: Session, args: Mapping[str, Any], kind: Kind) -> HTTPResponse:
    filters = intake_filters(args)
    try:
        figures = _figures(room, kind, filters)
        channels = room.index.channels()
    except (SQLAlchemyError, LookupError) as exc:
        logger.error("No se pudieron calcular las cifras de «%s»: %s", kind.page, exc)
        return room.views.error(session, 503, UNAVAILABLE)
    return render_page(room.views, session, kind, figures, filters, args, channels)


def _export(room: ReviewRoom, session: Session, args: Mapping[str, Any], kind: Kind, fmt: str) -> HTTPResponse:
    """The metrics' own export of the page's figure (same filters, masked, logged as «exportar_cifras_...»)."""
    try:
        checked = intake_filters(args).as_args()  # the page's filters, hostile dates already set aside
        return metrics_exports.export_response(room, session, kind.page, fmt, checked)
    except SQLAlchemyError as exc:
        logger.error("No se pudieron exportar las cifras de «%s»: %s", kind.page, exc)
        return room.views.error(session, 503, UNAVAILABLE)


def _handlers(kind: Kind) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """The page and its two exports, each behind the lead's login."""

    @requires_lead
    async def page(request: Request, session: Session) -> HTTPResponse:
        return await asyncio.to_thread(_page, room_of(request), session, request.args, kind)

    @requires_lead
    async def csv_export(request: Request, session: Session) -> HTTPResponse:
        return await asyncio.to_thread(_export, room_of(request), session, request.args, kind, "csv")

    @requires_lead
    async def json_export(request: Request, session: Session) -> HTTPResponse:
        return await asyncio.to_thread(_export, room_of(request), session, request.args, kind, "json")

    return page, csv_export, json_export


def register(bp: Blueprint) -> None:
    for kind in KINDS.values():
        page, csv_export, json_export = _handlers(kind)
        bp.add_route(page, f"/{kind.page}", methods=["GET"], name=f"intake_{kind.page}")
        bp.add_route(csv_export, f"/{kind.page}.csv", methods=["GET"], name=f"intake_{kind.page}_csv")
        bp.add_route(json_export, f"/{kind.page}.json", methods=["GET"], name=f"intake_{kind.page}_json")
