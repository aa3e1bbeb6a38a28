"""A ticket's thread as a lead reads it: who spoke to whom, what was said, and whether it arrived.

The thread (bot/thread) keeps delivery codes («delivered», via «template»);
leads need words: «entregado por WhatsApp (plantilla)», «fallido: <motivo>».
Every text here is the customer's or the agent's and stays text: the
template escapes it, and cards, e-mails and phones are masked like the
rest of the review app.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Optional

from bot.thread.model import (
    COMMENT,
    CSAT,
    DELIVERED,
    FAILED,
    HANDOFF,
    LOCAL,
    PENDING,
    SENDING,
    STATUS,
    TO_CUSTOMER,
    TO_DESK,
    CsatAnswer,
    ThreadMessage,
)

# Which way a message went, as leads say it.
TO_CUSTOMER_LABEL = "Equipo de soporte → cliente"
TO_DESK_LABEL = "Cliente → equipo de soporte"
NOTE_LABEL = "Nota interna"

KIND_LABELS = {
    (TO_CUSTOMER, COMMENT): "Comentario del agente",
    (TO_CUSTOMER, STATUS): "Cambio de estado",
    (TO_CUSTOMER, CSAT): "Encuesta de satisfacción",
    (TO_DESK, COMMENT): "Respuesta del cliente",
    (TO_DESK, HANDOFF): "El cliente pidió hablar con una persona",
    (TO_DESK, CSAT): "Respuesta de la encuesta",
}
CSAT_QUESTION = "Pregunta al cliente: ¿Cómo calificarías la ayuda que recibiste? (de 1 a 5)"

# «entregado por …»: the customer's channel, in the words of the sentence.
DELIVERED_BY = {"socketio": "chat web", "whatsapp": "WhatsApp", "teams": "Teams", "rest": "API REST"}
VIA_DETAILS = {"template": "plantilla aprobada, fuera de las 24 horas"}
ERROR_CHARS = 500  # an error can be a whole HTTP body; the lead needs its start

Clock = Callable[[Optional[datetime]], str]
Masker = Callable[[str], str]


@dataclass(frozen=True)
class Entry:
    """One message of the thread page, in words."""

    id: int
    at: str
    direction: str  # TO_CUSTOMER_LABEL, TO_DESK_LABEL or NOTE_LABEL
    side: str  # a CSS class: "soporte", "cliente", "nota"
    kind: str
    author: str
    body: str
    attachments: tuple[str, ...]
    state: str  # "entregado", "pendiente", "fallido", ...: also a CSS class
    state_text: str  # the state with how and when: «entregado por WhatsApp · 2026-11-29 10:32»
    reason: str  # why it failed or is being retried (masked), else ""


def is_note(message: ThreadMessage) -> bool:
    """Handoffs and CSAT answers reach the help desk as internal notes, never the customer."""
    return message.direction == TO_DESK and message.kind != COMMENT


def _reason(message: ThreadMessage, mask: Masker) -> str:
    error = (message.last_error or "").strip()
    if len(error) > ERROR_CHARS:
        error = error[: ERROR_CHARS - 1] + "…"
    return mask(error)


def delivery(message: ThreadMessage, clock: Clock) -> tuple[str, str]:
    """The delivery state's word (for the CSS class too) and the sentence a lead reads."""
    status = message.delivery_status
    if status == DELIVERED:
        if message.direction == TO_DESK:
            text = "entregado a Jira Service Management"
        else:
            text = "entregado por " + DELIVERED_BY.get(message.channel, message.channel)
        if message.via in VIA_DETAILS:
            text += f" ({VIA_DETAILS[message.via]})"
        if message.delivered_at:
            text += " · " + clock(message.delivered_at)
        return "entregado", text
    if status == LOCAL:
        return "local", "en el hilo local (sin JSM: el equipo lo lee con «python -m bot tickets thread»)"
    if status == FAILED:
        return "fallido", "fallido"
    if status == SENDING:
        return "enviando", "enviando"
    if status == PENDING and message.attempts and message.next_attempt_at:
        return "pendiente", f"pendiente · nuevo intento {clock(message.next_attempt_at)}"
    return "pendiente", "pendiente"


def _body(message: ThreadMessage, mask: Masker) -> str:
    if message.direction == TO_CUSTOMER and message.kind == CSAT:
        return CSAT_QUESTION
    if message.direction == TO_CUSTOMER and message.kind == STATUS:
        return f"Nuevo estado: {message.body}"
    return mask(message.body)


def entries(messages: list[ThreadMessage], clock: Clock, mask: Masker) -> list[Entry]:
    """The thread in the order it was kept; ``mask`` hides what the lead may not see in full."""
    found = []
    for message in messages:
        if message.direction == TO_CUSTOMER:
            direction, side = TO_CUSTOMER_LABEL, "soporte"
        elif is_note(message):
            direction, side = NOTE_LABEL, "nota"
        else:
            direction, side = TO_DESK_LABEL, "cliente"
        state, state_text = delivery(message, clock)
        found.append(
            Entry(
                id=message.id,
                at=clock(message.happened_at or message.created_at),
                direction=direction,
                side=side,
                kind=KIND_LABELS.get((message.direction, message.kind), message.kind),
                author=(message.author or "").strip() if message.direction == TO_CUSTOMER else "",
                body=_body(message, mask),
                attachments=tuple(a.name for a in message.attachments),
                state=state,
                state_text=state_text,
                reason=_reason(message, mask) if state in ("fallido", "pendiente") else "",
            )
        )
    return found


def latest_status(messages: list[ThreadMessage]) -> Optional[str]:
    """The ticket's status as the customer last heard it, if the thread has one."""
    statuses = [m.body for m in messages if m.direction == TO_CUSTOMER and m.kind == STATUS]
    return statuses[-1] if statuses else None


def rating_text(answer: Optional[CsatAnswer]) -> str:
    """The CSAT answer in a few words, for the thread's header."""
    if answer is None:
        return "sin encuesta (se pregunta cuando el ticket se resuelve)"
    if answer.rating is None:
        return "preguntada, sin respuesta aún"
    return f"{answer.rating} de 5"
