"""Reading conversations back from the tracker store Rasa writes.

Rasa Open Source stores every event (table ``events``) but offers no way to
list or read conversations. Support leads (the review app) and agents (the
transcript attached to a JSM request) need them, so this module reads the
same database Rasa writes, read-only, with the schema of Rasa 3.6's
``SQLTrackerStore``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Optional, Sequence

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.settings import Settings
from bot.text import clean_text

_metadata = MetaData()
# Rasa 3.6 SQLTrackerStore's table, declared (not reflected) so a missing
# database reads as "no conversations yet" instead of failing.
EVENTS = Table(
    "events",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)

CUSTOMER = "cliente"
ASSISTANT = "asistente"


class TranscriptError(RuntimeError):
    """The tracker store could not be read."""


@dataclass(frozen=True)
class Utterance:
    """One message of a conversation, as a person reads it."""

    event_id: int
    at: datetime
    speaker: str  # CUSTOMER or ASSISTANT
    text: str
    intent: Optional[str] = None
    confidence: Optional[float] = None
    payload: Optional[str] = None  # the button payload behind a click
    buttons: tuple[tuple[str, str], ...] = ()  # (title, payload) offered by the assistant
    channel: Optional[str] = None
    message_id: Optional[str] = None


@dataclass
class Conversation:
    sender_id: str
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def utterances(self) -> list[Utterance]:
        return list(utterances(self.events))

    @property
    def started_at(self) -> Optional[datetime]:
        stamps = [float(e["timestamp"]) for e in self.events if e.get("timestamp")]
        return _when(min(stamps)) if stamps else None

    @property
    def channel(self) -> Optional[str]:
        return next(
            (e.get("input_channel") for e in self.events if e.get("event") == "user" and e.get("input_channel")), None
        )


def _when(timestamp: Optional[float]) -> datetime:
    return datetime.fromtimestamp(float(timestamp or 0), tz=timezone.utc)


def _buttons(event: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    data = event.get("data") or {}
    raw = data.get("buttons") or data.get("quick_replies") or []
    return tuple((str(b.get("title", "")), str(b.get("payload", ""))) for b in raw if isinstance(b, dict))


def utterances(events: Iterable[dict[str, Any]]) -> Iterator[Utterance]:
    """Customer and assistant messages in order; a clicked button shows its title."""
    offered: dict[str, str] = {}
    for event in events:
        kind = event.get("event")
        if kind == "bot":
            buttons = _buttons(event)
            if buttons:
                offered = {payload: title for title, payload in buttons}
            if event.get("text") or buttons:
                yield Utterance(
                    event_id=int(event.get("_id") or 0),
                    at=_when(event.get("timestamp")),
                    speaker=ASSISTANT,
                    text=str(event.get("text") or ""),
                    buttons=buttons,
                )
        elif kind == "user":
            text = clean_text(str(event.get("text") or ""))
            parse = event.get("parse_data") or {}
            intent = parse.get("intent") or {}
            payload = text if text.startswith("/") else None
            shown = offered.get(text, text) if payload else text
            yield Utterance(
                event_id=int(event.get("_id") or 0),
                at=_when(event.get("timestamp")),
                speaker=CUSTOMER,
                text=shown,
                intent=intent.get("name"),
                confidence=float(intent["confidence"]) if intent.get("confidence") is not None else None,
                payload=payload,
                channel=event.get("input_channel"),
                message_id=event.get("message_id") or parse.get("message_id"),
            )


def transcript_text(items: Sequence[Utterance], zone_label: str = "UTC") -> str:
    """The conversation as plain text, for a ticket comment or an export."""
    lines = []
    for u in items:
        who = "Cliente" if u.speaker == CUSTOMER else "Asistente"
        lines.append(f"[{u.at:%Y-%m-%d %H:%M:%S} {zone_label}] {who}: {u.text}")
        if u.buttons:
            lines.append("    Opciones: " + " | ".join(title for title, _ in u.buttons))
    return "\n".join(lines)


class TrackerReader:
    """Read-only access to Rasa's SQL tracker store."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine = create_engine(url, future=True, pool_pre_ping=True)

    @classmethod
    def from_settings(cls) -> "TrackerReader":
        return cls(Settings.from_env().tracker_db_url)

    def _rows(self, query: Any) -> list[Any]:
        try:
            with self._engine.connect() as connection:
                return list(connection.execute(query))
        except SQLAlchemyError as exc:
            if "no such table" in str(exc):
                return []  # Rasa has not written anything yet
            raise TranscriptError(f"no se pudo leer el registro de conversaciones: {exc}") from exc

    def events(self, sender_id: str) -> list[dict[str, Any]]:
        rows = self._rows(
            select(EVENTS.c.id, EVENTS.c.data).where(EVENTS.c.sender_id == sender_id).order_by(EVENTS.c.id)
        )
        found = []
        for row in rows:
            event = json.loads(row.data or "{}")
            event["_id"] = row.id
            found.append(event)
        return found

    def events_of(self, sender_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Events of several conversations in one query (the review index's refresh)."""
        found: dict[str, list[dict[str, Any]]] = {sender: [] for sender in sender_ids}
        if not sender_ids:
            return found
        rows = self._rows(
            select(EVENTS.c.id, EVENTS.c.sender_id, EVENTS.c.data)
            .where(EVENTS.c.sender_id.in_(sender_ids))
            .order_by(EVENTS.c.sender_id, EVENTS.c.id)
        )
        for row in rows:
            event = json.loads(row.data or "{}")
            event["_id"] = row.id
            found[row.sender_id].append(event)
        return found

    def conversation(self, sender_id: str) -> Conversation:
        return Conversation(sender_id, self.events(sender_id))

    def heads(self, after: int = 0) -> dict[str, int]:
        """Last event id of every conversation with an event past ``after``: what changed since a previous look."""
        query = select(EVENTS.c.sender_id, func.max(EVENTS.c.id)).group_by(EVENTS.c.sender_id)
        if after:
            query = query.where(EVENTS.c.id > after)
        return {row[0]: int(row[1]) for row in self._rows(query)}

    def last_id(self) -> int:
        """The newest event's id (0 with none): a store started anew has a smaller one than before."""
        rows = self._rows(select(func.max(EVENTS.c.id)))
        return int(rows[0][0] or 0) if rows else 0

    def sender_ids(self, since: Optional[datetime] = None) -> list[tuple[str, float, float]]:
        """(sender id, first and last event time) for every conversation, newest first."""
        query = (
            select(EVENTS.c.sender_id, func.min(EVENTS.c.timestamp), func.max(EVENTS.c.timestamp))
            .group_by(EVENTS.c.sender_id)
            .order_by(func.max(EVENTS.c.timestamp).desc())
        )
        if since is not None:
            query = query.having(func.max(EVENTS.c.timestamp) >= since.timestamp())
        return [(r[0], float(r[1] or 0), float(r[2] or 0)) for r in self._rows(query)]
