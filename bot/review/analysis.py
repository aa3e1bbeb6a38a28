"""What happened in a conversation, derived from its tracker events.

Leads filter conversations by outcome ("abandoned mid-form for Pago en
línea yesterday"), so each conversation is summarised once from Rasa's
events: which request types it touched, which tickets it produced, whether
an article of the knowledge base solved it, the customer cancelled, gave up
halfway, was redirected from a retired option, or was not understood.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Optional, Sequence
from zoneinfo import ZoneInfo

from bot.privacy import mask_cards
from bot.review.intake import IntakeFacts, IntakeTracker, iso_week
from bot.settings.review import ReviewSettings
from bot.text import clean_text

FORM = "ticket_form"
LOW_CONFIDENCE = 0.5  # the FallbackClassifier threshold in config.yml
# A conversation idle this long with a form open was abandoned; before that it
# may still be going on (``REVIEW_ABANDON_MINUTES``: settings.review.abandon_minutes).
ABANDON_AFTER = timedelta(minutes=ReviewSettings.abandon_minutes)

# Outcomes, in the order that decides the main one. A person asked for comes first: the ticket it
# opens for the agents (or the note on an open one) is how the assistant hands over, not an intake done.
HANDOFF = "derivada_persona"
TICKET = "ticket"
DEFLECTED = "resuelta_articulo"  # «Sí, esto me sirvió»: an article solved it, no ticket (slot kb_resolved)
ABANDONED = "abandonada"
CANCELLED = "cancelada"
REDIRECTED = "redirigida"
FALLBACK = "no_entendida"
IN_PROGRESS = "en_curso"
NO_REQUEST = "sin_solicitud"
OUTCOME_ORDER = (HANDOFF, TICKET, DEFLECTED, ABANDONED, CANCELLED, REDIRECTED, FALLBACK, IN_PROGRESS, NO_REQUEST)
OUTCOME_LABELS = {
    HANDOFF: "Derivada a una persona",
    TICKET: "Ticket creado",
    DEFLECTED: "Resuelta con un artículo",
    ABANDONED: "Abandonada en el formulario",
    CANCELLED: "Cancelada",
    REDIRECTED: "Opción eliminada (redirigida)",
    FALLBACK: "No entendida / fuera de alcance",
    IN_PROGRESS: "En curso",
    NO_REQUEST: "Sin solicitud",
}
UTC_ZONE = ZoneInfo("UTC")
# Intents that mean the assistant did not understand, or could not help.
MISSED_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})


def is_doubtful(intent: Optional[str], confidence: Any) -> bool:
    """A customer turn a lead should look at: low confidence, or the fallback
    (which Rasa records with the threshold itself as its confidence)."""
    return intent == "nlu_fallback" or float(confidence or 0) < LOW_CONFIDENCE


@dataclass
class Summary:
    sender_id: str
    last_event_id: int = 0
    started_at: Optional[datetime] = None
    last_at: Optional[datetime] = None
    channel: Optional[str] = None
    request_types: list[str] = field(default_factory=list)  # catalog ids, in order
    tickets: list[str] = field(default_factory=list)
    outcomes: set[str] = field(default_factory=set)
    email: Optional[str] = None
    phone: Optional[str] = None
    turns: int = 0
    missed_turns: int = 0
    low_confidence_turns: int = 0
    customer_text: str = ""
    week: Optional[str] = None  # ISO week of the start, on the team's clock («2026-W48»)
    intake: IntakeFacts = field(default_factory=IntakeFacts)

    @property
    def outcome(self) -> str:
        return next((o for o in OUTCOME_ORDER if o in self.outcomes), NO_REQUEST)

    @property
    def request_type(self) -> Optional[str]:
        return self.request_types[-1] if self.request_types else None


def _when(timestamp: Any) -> Optional[datetime]:
    return datetime.fromtimestamp(float(timestamp), tz=timezone.utc) if timestamp else None


def _utter(event: dict[str, Any]) -> Optional[str]:
    return ((event.get("metadata") or {}).get("utter_action")) or None


def summarize(
    sender_id: str,
    events: Sequence[dict[str, Any]],
    now: Optional[datetime] = None,
    abandon_after: timedelta = ABANDON_AFTER,
    zone: ZoneInfo = UTC_ZONE,
) -> Summary:
    """``zone``: the team's (``REVIEW_TIMEZONE``), whose ISO weeks the figures count in."""
    now = now or datetime.now(timezone.utc)
    summary = Summary(sender_id=sender_id)
    intake = IntakeTracker(sender_id, zone)
    texts: list[str] = []
    form_open = False
    request_open = False  # a request started and not yet ticketed or cancelled
    for event in events:
        summary.last_event_id = max(summary.last_event_id, int(event.get("_id") or 0))
        when = _when(event.get("timestamp"))
        if when:
            summary.started_at = min(summary.started_at or when, when)
            summary.last_at = max(summary.last_at or when, when)
        kind = event.get("event")
        if kind == "action":
            intake.action(event.get("name"))
        elif kind == "bot":
            intake.bot(_utter(event), when)
        if kind == "user":
            summary.channel = summary.channel or event.get("input_channel")
            text = clean_text(str(event.get("text") or ""))
            intent = ((event.get("parse_data") or {}).get("intent")) or {}
            intake.user(text, intent.get("name"), intent.get("confidence"), when)
            if text.startswith("/"):
                continue  # buttons and the widget's own greeting are not customer turns
            summary.turns += 1
            texts.append(text)
            if intent.get("name") in MISSED_INTENTS:
                summary.missed_turns += 1
            if is_doubtful(intent.get("name"), intent.get("confidence")):
                summary.low_confidence_turns += 1
        elif kind == "slot":
            name, value = event.get("name"), event.get("value")
            intake.slot(name, value, when)
            if name == "request_type" and value:
                if not summary.request_types or summary.request_types[-1] != value:
                    summary.request_types.append(str(value))
                request_open = True
            elif name == "ticket_key" and value:
                summary.tickets.append(str(value))
                summary.outcomes.add(TICKET)
                request_open = False
            elif name == "kb_resolved" and value is True:
                summary.outcomes.add(DEFLECTED)
                request_open = False
            elif name == "redirected_from" and value:
                summary.outcomes.add(REDIRECTED)
            elif name == "email" and value:
                summary.email = str(value)
            elif name == "phone" and value:
                summary.phone = str(value)
        elif kind == "active_loop":
            form_open = event.get("name") == FORM
        elif kind == "action" and event.get("name") == "action_redirect_retired":
            summary.outcomes.add(REDIRECTED)
        elif kind == "action" and event.get("name") == "action_suggest_request_types":
            summary.outcomes.add(FALLBACK)
        elif kind == "bot" and _utter(event) == "utter_request_cancelled":
            summary.outcomes.add(CANCELLED)
            request_open = False
    summary.intake = intake.finish()
    if summary.intake.handoff:
        summary.outcomes.add(HANDOFF)
    if summary.started_at is not None:
        summary.week = iso_week(summary.started_at, zone)
    if summary.missed_turns:
        summary.outcomes.add(FALLBACK)
    if form_open and request_open:
        idle = now - (summary.last_at or now)
        summary.outcomes.add(ABANDONED if idle >= abandon_after else IN_PROGRESS)
    summary.customer_text = mask_cards(" \n".join(texts))
    return summary


def customer_label(summary: Summary) -> str:
    """Who the customer is, as far as the conversation says (unmasked)."""
    return summary.email or summary.phone or summary.sender_id


def labels(outcomes: Iterable[str]) -> list[str]:
    return [OUTCOME_LABELS[o] for o in OUTCOME_ORDER if o in set(outcomes)]
