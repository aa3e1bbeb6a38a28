"""What JSM agents read about a ticket: its summary, its details and the conversation transcript.

Card numbers are masked in everything here before it leaves our systems.
The summary starts with the local key, which is how a retried delivery
finds the request an unanswered attempt already created.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Callable, Optional

from bot.catalog import Catalog
from bot.privacy import mask_cards
from bot.tickets.model import Ticket
from bot.transcripts import TrackerReader, transcript_text

SUMMARY_MAX = 255
COMMENT_MAX = 30000  # JSM comments hold 32 767 characters
TRANSCRIPT_TITLE = "Transcripción de la conversación con el asistente virtual"


def summary_of(ticket: Ticket) -> str:
    """The JSM summary: starts with the local key, which is how a retry finds its own request."""
    title = ticket.request_type + (f": {ticket.item}" if ticket.item else "")
    return mask_cards(f"[{ticket.key}] {title}")[:SUMMARY_MAX]


def _label(catalog: Catalog, field_id: str, fallback: str) -> str:
    spec = catalog.field_defs.get(field_id)
    text = (spec.short_label or spec.label) if spec else fallback
    return text[:1].upper() + text[1:]


def details_of(ticket: Ticket, catalog: Catalog) -> str:
    """Everything the customer gave, for the request description (cards masked)."""
    retired = catalog.retired_option(ticket.redirected_from)
    rows = [
        ("Categoría", ticket.category),
        (catalog.label("request_type"), ticket.request_type),
        (_label(catalog, "item", "ítem"), ticket.item),
        (_label(catalog, "email", "correo"), ticket.email),
        (_label(catalog, "phone", "teléfono"), ticket.phone),
        ("Canal", ticket.channel),
        ("Conversación", ticket.conversation_id),
        ("Texto original del cliente", ticket.original_text),
        ("Pidió inicialmente", retired.name if retired else None),
        ("Adjuntos", ", ".join(a.name for a in ticket.attachments) or None),
    ]
    lines = [ticket.description, ""] if ticket.description else []
    lines.append(f"Solicitud registrada por el asistente virtual como {ticket.key}.")
    lines += [f"{label}: {value}" for label, value in rows if value]
    if ticket.articles_shown:  # what the customer already read before asking (bot/dialogue/articles.py)
        lines += ["", ticket.articles_shown]
    return mask_cards("\n".join(lines))


def transcript_of(ticket: Ticket, reader: TrackerReader) -> str:
    """The conversation up to the ticket's creation, cards masked before it leaves our systems."""
    cutoff = ticket.created_at + timedelta(minutes=2)
    utterances = [u for u in reader.conversation(ticket.conversation_id).utterances if u.at <= cutoff]
    return mask_cards(transcript_text(utterances)) if utterances else ""


def transcripts_from(reader: TrackerReader) -> Callable[[Ticket], str]:
    """The delivery's source of transcripts: Rasa's tracker store through ``reader``."""
    return lambda ticket: transcript_of(ticket, reader)


def comment_of(ticket: Ticket, transcript: str, details: Optional[str], notes: list[str]) -> str:
    head = f"{TRANSCRIPT_TITLE} — {ticket.key} (canal {ticket.channel}). Los números de tarjeta se ocultaron."
    parts = [head]
    if details:
        parts.append(details)  # the request type has no description field in JSM
    parts += notes
    body = transcript or "No hay transcripción disponible de esta conversación."
    room = COMMENT_MAX - sum(len(p) + 2 for p in parts) - 60
    if len(body) > room:
        body = "[… inicio de la conversación omitido por su longitud …]\n" + body[-room:]
    parts.append(body)
    return "\n\n".join(parts)
