"""What leads see after the ticket: a ticket's thread, and the satisfaction (CSAT) answers.

The thread and the answers live in the tickets database (bot/thread); the
pages read them through ``room.thread`` and ``room.csat``, built once with
the review app. A key that names no ticket is a 404 before any query when
it cannot be a ticket key at all (hostile paths never reach SQL); a
database that does not answer is said in Spanish, with the cause logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Mapping, Optional
from urllib.parse import urlencode

from sanic import Blueprint
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.review import links
from bot.review.accounts import Session
from bot.review.auth import requires_lead
from bot.review.index import Filters
from bot.review.pages import _filter_notices, _full
from bot.review.room import ReviewRoom, room_of
from bot.review.satisfaction import COMMENTS_SHOWN, day_start, in_period, report
from bot.review.thread_view import entries, latest_status, rating_text
from bot.review.views import CHANNEL_LABELS
from bot.thread import ThreadError
from bot.thread.model import CsatAnswer
from bot.tickets.errors import TicketStoreError

logger = logging.getLogger(__name__)

# Our keys (ECO-000123) and the help desk's (SD-42): a prefix, a dash, a number. Anything else is no ticket.
TICKET_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,15}-[0-9]{1,12}$")
UNREADABLE = (
    "No se pudo leer {what}: la base de datos de tickets no responde. Inténtalo de nuevo en unos minutos; "
    "si sigue igual, avisa a quien administra el servidor."
)


def ticket_key(raw: str) -> Optional[str]:
    """The key a path names, in the store's spelling, or None when it cannot be one."""
    key = raw.strip().upper()
    return key if TICKET_KEY.match(key) else None


def _no_ticket(room: ReviewRoom, session: Session, raw: str) -> HTTPResponse:
    shown = raw if len(raw) <= 40 else raw[:39] + "…"  # escaped by the template like every text
    return room.views.error(session, 404, f"No existe el ticket {shown}.")


# ---------------------------------------------------------------- thread
@requires_lead
async def thread(request: Request, session: Session, key: str) -> HTTPResponse:
    return await asyncio.to_thread(_thread, room_of(request), session, key)


def _thread(room: ReviewRoom, session: Session, raw: str) -> HTTPResponse:
    key = ticket_key(raw)
    if key is None:
        return _no_ticket(room, session, raw)
    try:
        found = room.tickets.get(key)
        messages = room.thread.messages(key)
        answer = room.csat.get(key)
    except (ThreadError, TicketStoreError) as exc:
        logger.error("No se pudo leer el hilo del ticket %s: %s", key, exc)
        return room.views.error(session, 503, UNREADABLE.format(what=f"el hilo del ticket {key}"))
    if found is None and not messages:
        return _no_ticket(room, session, raw)
    conversation = found.conversation_id if found else messages[0].conversation_id
    full = _full(room, session, conversation)
    views = room.views
    title = messages[-1].title if messages else f"{key} · {found.request_type if found else ''}"
    status = latest_status(messages) or (found.status_label if found else "")
    return views.render(
        "thread.html",
        session,
        key=key,
        title=title,
        ticket=found,
        channel=found.channel if found else messages[0].channel,
        ticket_status=status,
        entries=entries(messages, views.local, lambda text: views.mask(text, full)),
        rating=rating_text(answer),
        answer=answer,
        comment=views.mask(answer.comment or "", full) if answer else "",
        full=full,
        transcript=links.conversation_path(conversation),
    )


# ------------------------------------------------------------------ CSAT
def period(args: Mapping[str, Any]) -> Filters:
    """The days a lead chose («desde», «hasta»); the other list filters mean nothing here."""
    chosen = Filters.from_args(args)
    return Filters(date_from=chosen.date_from, date_to=chosen.date_to)


def answers_in(room: ReviewRoom, chosen: Filters) -> list[CsatAnswer]:
    """The rated answers of the chosen days (raises ``ThreadError`` when the database fails)."""
    zone = room.views.zone
    since = day_start(chosen.date_from, zone) if chosen.date_from else None
    return in_period(room.csat.answers(since=since), zone, chosen.date_from, chosen.date_to)


@requires_lead
async def satisfaction(request: Request, session: Session) -> HTTPResponse:
    return await asyncio.to_thread(_satisfaction, room_of(request), session, request.args)


def _satisfaction(room: ReviewRoom, session: Session, args: Mapping[str, Any]) -> HTTPResponse:
    chosen = period(args)
    try:
        answers = answers_in(room, chosen)
    except ThreadError as exc:
        logger.error("No se pudieron leer las encuestas de satisfacción: %s", exc)
        return room.views.error(session, 503, UNREADABLE.format(what="las encuestas de satisfacción"))
    views = room.views
    found = report(answers, views.zone, views.request_type_names, CHANNEL_LABELS)
    return views.render(
        "csat.html",
        session,
        notices=_filter_notices(args, chosen),
        filters=chosen,
        report=found,
        comments=[
            {
                "answer": a,
                "type": views.request_type_names.get(a.request_type_id) or a.request_type,
                "comment": views.mask(a.comment or "", full=False),
            }
            for a in found.comments[:COMMENTS_SHOWN]
        ],
        hidden_comments=max(0, len(found.comments) - COMMENTS_SHOWN),
        query=urlencode(chosen.as_args()),
    )


def register(bp: Blueprint) -> None:
    bp.add_route(thread, "/tickets/<key:str>/hilo", methods=["GET"])
    bp.add_route(satisfaction, "/satisfaccion", methods=["GET"])
