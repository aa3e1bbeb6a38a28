"""Addresses of review pages, shared by the web app and the CLI.

Conversation ids are whatever a channel chose ("whatsapp:+57300...", a REST
client's free text with slashes...), so URLs carry them as base64url.
"""

from __future__ import annotations

import base64
import binascii
from typing import Optional

from bot.settings import Settings
from bot.tickets import Ticket

PREFIX = "/revision"


def token_for(sender_id: str) -> str:
    return base64.urlsafe_b64encode(sender_id.encode("utf-8")).decode("ascii").rstrip("=")


def sender_for(token: str) -> Optional[str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        decoded = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    return decoded or None


def conversation_path(sender_id: str) -> str:
    return f"{PREFIX}/c/{token_for(sender_id)}"


def ticket_path(key: str) -> str:
    return f"{PREFIX}/tickets/{key}"


def thread_path(key: str) -> str:
    """The page of what came after the ticket: agent's comments, status changes, replies, CSAT."""
    return f"{PREFIX}/tickets/{key}/hilo"


def public_base(settings: Settings) -> str:
    """Where leads reach the web server (``WEB_PUBLIC_URL``, else this machine on ``WEB_PORT``)."""
    return settings.web.public_url or f"http://localhost:{settings.web_port}"


def transcript_url(sender_id: str, base: str) -> str:
    """The conversation's page; ``base`` is ``public_base(settings)``."""
    return base + conversation_path(sender_id)


def ticket_url(key: str, base: str) -> str:
    """The ticket's page; ``base`` is ``public_base(settings)``."""
    return base + ticket_path(key)


def ticket_links(settings: Settings, ticket: Ticket) -> dict[str, str]:
    """Both ways, for ``python -m bot tickets show``: the ticket's page and the conversation behind it."""
    base = public_base(settings)
    return {"ticket": ticket_url(ticket.key, base), "conversacion": transcript_url(ticket.conversation_id, base)}
