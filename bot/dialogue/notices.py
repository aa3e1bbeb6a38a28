"""What the customer reads when the help desk speaks after the ticket, and what the conversation remembers of it.

A thread message from the help desk (an agent's comment, a status change,
the satisfaction question) reaches the customer outside a Rasa turn: the
follow-up worker or the web relay sends it. This module words it (Spanish,
naming the ticket, the agent's text as written with card numbers masked),
gives the variables of the WhatsApp template used outside the 24-hour
window, and says which tracker events record it in the conversation, so
the next thing the customer writes is read as an answer to it (the reply
and CSAT loops, bot/dialogue/followup.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

from bot.dialogue.turn import Button, payload
from bot.privacy import mask_cards
from bot.text import normalize
from bot.thread.model import COMMENT, CSAT, DONE, STATUS, ThreadMessage

# The loops the worker opens (their names are the domain's forms).
REPLY_FORM = "reply_form"
CSAT_FORM = "csat_form"
# The slots they use.
REPLY_TICKET = "reply_ticket"
REPLY_SINCE = "reply_since"
CSAT_TICKET = "csat_ticket"
REQUESTED_SLOT = "requested_slot"
REPLY_TEXT = "reply_text"
CSAT_RATING = "csat_rating"
# The intent a CSAT button carries.
RATE_INTENT = "rate"
RATING_TITLES = ("1 · Muy mala", "2 · Mala", "3 · Regular", "4 · Buena", "5 · Excelente")
# WhatsApp template variables are short: Twilio refuses long ones, and the template says the rest.
TEMPLATE_TEXT_CHARS = 300


@dataclass(frozen=True)
class Notice:
    """A message for the customer: text, optional buttons, and the ticket it is about."""

    ticket_key: str
    kind: str
    text: str
    buttons: tuple[Button, ...] = ()
    template_variables: Optional[dict[str, str]] = None


def _waiting(status: str, waiting_statuses: Iterable[str]) -> bool:
    return normalize(status) in {normalize(s) for s in waiting_statuses}


def render(message: ThreadMessage, waiting_statuses: Iterable[str] = ()) -> Notice:
    """The customer's message for one help-desk message, naming its ticket.

    The ticket is named by the message's title: «ECO-000123 · Falla en
    cargue archivos de cartera».
    """
    title = message.title
    if message.kind == COMMENT:
        who = (message.author or "").strip() or "El equipo de soporte"
        body = mask_cards(message.body.strip())
        text = f"💬 {title}\n{who} escribió:\n\n{body}\n\nPuedes responder aquí mismo."
        summary = body
    elif message.kind == STATUS:
        status = message.body.strip()
        text = f"🔔 {title}\nTu solicitud cambió de estado: {status}."
        if message.status_category == DONE:
            text += "\nSi algo quedó pendiente, escríbenos aquí."
        elif _waiting(status, waiting_statuses):
            text += "\nEl equipo de soporte espera tu respuesta: escríbela aquí mismo."
        summary = f"Tu solicitud cambió de estado: {status}."
    elif message.kind == CSAT:
        text = (
            f"⭐ {title}\n¿Cómo calificarías la ayuda que recibiste? "
            "Elige de 1 (muy mala) a 5 (excelente); si quieres, luego me cuentas por qué."
        )
        buttons = tuple(
            Button(label, payload(RATE_INTENT, ticket=message.ticket_key, rating=number))
            for number, label in enumerate(RATING_TITLES, start=1)
        )
        variables = {"1": title, "2": "¿Cómo calificarías la ayuda que recibiste? Responde con un número del 1 al 5."}
        return Notice(message.ticket_key, message.kind, text, buttons, variables)
    else:
        raise ValueError(f"no customer notice for a {message.kind!r} message")
    short = summary if len(summary) <= TEMPLATE_TEXT_CHARS else summary[: TEMPLATE_TEXT_CHARS - 1] + "…"
    return Notice(message.ticket_key, message.kind, text, (), {"1": title, "2": short})


def tracker_events(
    message: ThreadMessage, notice: Notice, active_loop: Optional[str], waiting_statuses: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """The events that record a delivered notice in the customer's conversation (Rasa's JSON event format).

    The notice itself becomes a bot event, so transcripts show it. An
    agent's comment or a «waiting for you» status puts the conversation in
    reply mode (the reply loop reads the next message); the satisfaction
    question opens the CSAT loop. A ticket form in progress is never
    interrupted: its loop stays and only the slots are set.
    """
    events: list[dict[str, Any]] = [
        {
            "event": "bot",
            "text": notice.text,
            "data": {"buttons": [{"title": b.title, "payload": b.payload} for b in notice.buttons] or None},
            "metadata": {"followup": {"ticket": message.ticket_key, "kind": message.kind, "message_id": message.id}},
        }
    ]
    free = active_loop in (None, REPLY_FORM, CSAT_FORM)

    def slot(name: str, value: Any) -> dict[str, Any]:
        return {"event": "slot", "name": name, "value": value}

    def loop(name: Optional[str], requested: Optional[str]) -> list[dict[str, Any]]:
        return [{"event": "active_loop", "name": name}, slot(REQUESTED_SLOT, requested)]

    if message.kind == CSAT:
        events.append(slot(CSAT_TICKET, message.ticket_key))
        if free:
            events += loop(CSAT_FORM, CSAT_RATING)
    elif message.kind == STATUS and message.status_category == DONE:
        events.append(slot(REPLY_TICKET, None))
        if active_loop == REPLY_FORM:
            events += loop(None, None)
    elif message.kind == COMMENT or (message.kind == STATUS and _waiting(message.body, waiting_statuses)):
        events += [slot(REPLY_TICKET, message.ticket_key), slot(REPLY_SINCE, message.id)]
        if free and active_loop != CSAT_FORM:
            events += loop(REPLY_FORM, REPLY_TEXT)
    return events
