"""The review pages a lead reads: the conversation list, a transcript, a ticket, the overview.

Each handler reads the request on the event loop and does its SQL (index
refresh, tracker events, access log) and rendering in a worker thread.
Customer data is masked unless the lead opened the full record, which is
logged and lasts ``FULL_RECORD_WINDOW``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Mapping
from urllib.parse import urlencode

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.privacy import mask_email, mask_phone
from bot.review import links
from bot.review.accounts import Session
from bot.review.analysis import LOW_CONFIDENCE, OUTCOME_LABELS, OUTCOME_ORDER, is_doubtful
from bot.review.auth import requires_lead
from bot.review.charts import day_bars, outcome_rows
from bot.review.index import PAGE_SIZE, Filters, Row
from bot.review.room import ReviewRoom, room_of
from bot.review.views import FULL_RECORD_ACTION, customer
from bot.transcripts import CUSTOMER

FULL_RECORD_WINDOW = timedelta(minutes=15)
NO_CONVERSATION = "No existe esa conversación."


def _filter_notices(args: Mapping[str, Any], filters: Filters) -> list[str]:
    """Why a filter the lead typed did not apply, instead of ignoring it silently."""
    notices = []
    for name, label, parsed in (("desde", "Desde", filters.date_from), ("hasta", "Hasta", filters.date_to)):
        raw = str(args.get(name) or "").strip()
        if raw and parsed is None:
            notices.append(f"La fecha «{raw}» de «{label}» no es válida (usa AAAA-MM-DD); no se aplicó.")
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        notices.append("«Desde» es posterior a «Hasta»: ningún día cabe en ese rango.")
    return notices


def _list_rows(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "row": row,
            "customer": customer(row.email, row.phone, row.sender_id, full=False),
            "path": links.conversation_path(row.sender_id),
        }
        for row in rows
    ]


def _full(room: ReviewRoom, session: Session, sender: str) -> bool:
    """Whether this lead opened the full record of ``sender`` recently enough to see it unmasked."""
    return room.accounts.has_recent_access(session.username, FULL_RECORD_ACTION, sender, FULL_RECORD_WINDOW)


# ------------------------------------------------------------------ list
@requires_lead
async def home(request: Request, session: Session) -> HTTPResponse:
    return response.redirect(f"{links.PREFIX}/conversaciones")


@requires_lead
async def conversations(request: Request, session: Session) -> HTTPResponse:
    return await asyncio.to_thread(_conversations, room_of(request), session, request.args)


def _conversations(room: ReviewRoom, session: Session, args: Mapping[str, Any]) -> HTTPResponse:
    index = room.index
    index.refresh()
    filters = Filters.from_args(args)
    rows, total = index.search(filters)
    pages_count = max(1, -(-total // PAGE_SIZE))
    if filters.page > pages_count:
        return response.redirect(f"{links.PREFIX}/conversaciones?{urlencode(filters.as_args(page=pages_count))}")
    return room.views.render(
        "conversations.html",
        session,
        notices=_filter_notices(args, filters),
        filters=filters,
        rows=_list_rows(rows),
        total=total,
        pages=pages_count,
        channels=index.channels(),
        catalog=room.views.catalog,
        outcomes=[(o, OUTCOME_LABELS[o]) for o in OUTCOME_ORDER],
        query=lambda **changes: urlencode(filters.as_args(**changes)),
    )


# ------------------------------------------------------------ transcript
@requires_lead
async def transcript(request: Request, session: Session, token: str) -> HTTPResponse:
    return await asyncio.to_thread(_transcript, room_of(request), session, token)


def _turns(room: ReviewRoom, sender: str, full: bool) -> list[dict[str, Any]]:
    found_labels = room.labels.for_conversation(sender)
    turns = []
    for u in room.reader.conversation(sender).utterances:
        low = u.speaker == CUSTOMER and not u.payload and is_doubtful(u.intent, u.confidence)
        turns.append(
            {
                "u": u,
                "text": room.views.mask(u.text, full),
                "low": low,
                "label": found_labels.get(u.event_id),
                "buttons": [title for title, _ in u.buttons],
            }
        )
    return turns


def _transcript(room: ReviewRoom, session: Session, token: str) -> HTTPResponse:
    sender = room.existing_conversation(token)
    if sender is None:
        return room.views.error(session, 404, NO_CONVERSATION)
    room.index.refresh()
    row = room.index.get(sender)
    full = _full(room, session, sender)
    intents = room.views.intent_choices
    return room.views.render(
        "transcript.html",
        session,
        token=token,
        row=row,
        turns=_turns(room, sender, full),
        full=full,
        customer=customer(row.email if row else None, row.phone if row else None, sender, full),
        intents=intents,
        intent_values={value for value, _ in intents},
        low_confidence=LOW_CONFIDENCE,
    )


@requires_lead
async def full_record(request: Request, session: Session, token: str) -> HTTPResponse:
    return await asyncio.to_thread(_full_record, room_of(request), session, token)


def _full_record(room: ReviewRoom, session: Session, token: str) -> HTTPResponse:
    sender = room.existing_conversation(token)
    if sender is None:
        return room.views.error(session, 404, NO_CONVERSATION)
    room.accounts.log_access(session.username, FULL_RECORD_ACTION, sender)
    return response.redirect(f"{links.PREFIX}/c/{token}")


@requires_lead
async def mark(request: Request, session: Session, token: str) -> HTTPResponse:
    form = request.form
    return await asyncio.to_thread(
        _mark, room_of(request), session, token, form.get("intent") or "", form.get("evento") or ""
    )


def _mark(room: ReviewRoom, session: Session, token: str, intent: str, event: str) -> HTTPResponse:
    sender = room.existing_conversation(token)
    if sender is None or intent not in {i for i, _ in room.views.intent_choices}:
        return room.views.error(session, 400, "Intent o conversación no válidos.")
    try:
        event_id = int(event or 0)
    except ValueError:
        event_id = 0
    utterance = next(
        (u for u in room.reader.conversation(sender).utterances if u.event_id == event_id and u.speaker == CUSTOMER),
        None,
    )
    if utterance is None:
        return room.views.error(session, 400, "Ese mensaje no existe en la conversación.")
    room.labels.mark(sender, event_id, utterance.text, utterance.intent, intent, session.username)
    return response.redirect(f"{links.PREFIX}/c/{token}#turno-{event_id}")


# ---------------------------------------------------------------- ticket
@requires_lead
async def ticket(request: Request, session: Session, key: str) -> HTTPResponse:
    return await asyncio.to_thread(_ticket, room_of(request), session, key)


def _ticket(room: ReviewRoom, session: Session, key: str) -> HTTPResponse:
    found = room.tickets.get(key)
    if found is None:
        return room.views.error(session, 404, f"No existe el ticket {key}.")
    full = _full(room, session, found.conversation_id)
    views = room.views
    return views.render(
        "ticket.html",
        session,
        ticket=found,
        full=full,
        email=found.email if full else mask_email(found.email),
        phone=(found.phone if full else mask_phone(found.phone or "")) if found.phone else "",
        description=views.mask(found.description or "", full),
        original=views.mask(found.original_text or "", full),
        transcript=links.conversation_path(found.conversation_id),
    )


# -------------------------------------------------------------- overview
@requires_lead
async def overview(request: Request, session: Session) -> HTTPResponse:
    return await asyncio.to_thread(_overview, room_of(request), session)


def _overview(room: ReviewRoom, session: Session) -> HTTPResponse:
    room.index.refresh()
    stats = room.index.stats()
    return room.views.render(
        "overview.html",
        session,
        stats=stats,
        days=day_bars(stats),
        rows=outcome_rows(stats, room.views.request_type_names),
        outcomes=[(o, OUTCOME_LABELS[o]) for o in OUTCOME_ORDER],
        access=room.accounts.access_log(20),
    )


def register(bp: Blueprint) -> None:
    bp.add_route(home, "/", methods=["GET"])
    bp.add_route(conversations, "/conversaciones", methods=["GET"])
    bp.add_route(transcript, "/c/<token:str>", methods=["GET"])
    bp.add_route(full_record, "/c/<token:str>/completo", methods=["POST"])
    bp.add_route(mark, "/c/<token:str>/etiqueta", methods=["POST"])
    bp.add_route(ticket, "/tickets/<key:str>", methods=["GET"])
    bp.add_route(overview, "/resumen", methods=["GET"])
