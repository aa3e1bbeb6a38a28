"""One customer turn, as the dialogue logic sees it.

Built from a tracker's plain data (the JSON the action server receives), so the
logic never imports Rasa and can be tested with hand-written turns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

from bot.text import clean_text

# Actions that run between a user message and the form without consuming it.
_TRANSPARENT_ACTIONS = {"action_listen", "action_extract_slots", "action_session_start"}
START_ACTION = "action_start_request"


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


def payload(intent: str, **entities: Any) -> str:
    """A button payload Rasa parses without NLU: ``/intent{"entity": "value"}``."""
    if not entities:
        return f"/{intent}"
    return f"/{intent}{json.dumps(entities, ensure_ascii=False, separators=(',', ':'))}"


@dataclass(frozen=True)
class Say:
    """A message to send: a domain response by name, with its variables."""

    response: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class Turn:
    """The latest customer message and how the form should read it.

    ``mode`` is "start" when the message opened the request (everything in it
    may prefill fields), "answer" when it replies to the question the form
    asked, and "resume" when another action already handled it (a side
    question), so the form must not read it again.
    """

    text: str
    intent: Optional[str] = None
    confidence: float = 0.0
    entities: tuple[Mapping[str, Any], ...] = ()
    intent_ranking: tuple[Mapping[str, Any], ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    mode: str = "answer"
    sender_id: str = ""
    message_id: Optional[str] = None
    timestamp: Optional[float] = None
    channel: str = ""

    @property
    def is_payload(self) -> bool:
        return self.text.startswith("/")

    def entity_values(self, name: str) -> list[Any]:
        return [e.get("value") for e in self.entities if e.get("entity") == name and e.get("value") is not None]

    def entity(self, name: str) -> Any:
        values = self.entity_values(name)
        return values[0] if values else None

    @classmethod
    def from_tracker(
        cls,
        sender_id: str,
        latest_message: Mapping[str, Any],
        events: Iterable[Mapping[str, Any]],
    ) -> "Turn":
        events = list(events)
        intent = latest_message.get("intent") or {}
        user_event: Mapping[str, Any] = next((e for e in reversed(events) if e.get("event") == "user"), {})
        channel = user_event.get("input_channel") or ""
        return cls(
            text=clean_text(str(latest_message.get("text") or "")),
            intent=intent.get("name"),
            confidence=float(intent.get("confidence") or 0.0),
            entities=tuple(latest_message.get("entities") or ()),
            intent_ranking=tuple(latest_message.get("intent_ranking") or ()),
            metadata=latest_message.get("metadata") or user_event.get("metadata") or {},
            mode=turn_mode(events),
            sender_id=sender_id,
            message_id=latest_message.get("message_id") or user_event.get("message_id"),
            timestamp=user_event.get("timestamp"),
            channel=channel,
        )


def turn_mode(events: list[Mapping[str, Any]]) -> str:
    """How the form should treat the latest user message; see ``Turn.mode``.

    The action server receives the events up to the form's own (synthetic)
    execution; any other action after the user message means the message was
    already handled, unless that action is the one that starts a request.
    """
    last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=-1)
    after = events[last_user + 1 :]
    actions = [e.get("name") for e in after if e.get("event") == "action"]
    if START_ACTION in actions:
        return "start"
    if actions:
        actions = actions[:-1]  # the form's own execution, appended by Rasa
    rejected = any(e.get("event") == "action_execution_rejected" for e in after)
    if rejected or any(a not in _TRANSPARENT_ACTIONS for a in actions):
        return "resume"
    return "answer"
