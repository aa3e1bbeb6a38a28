"""Which channel owns a conversation id.

A conversation id (Rasa's sender id) names the channel that wrote it, and
only that channel may write it again: WhatsApp ids are the number Twilio
signed for, Teams ids the user the Bot Framework token vouched for, web ids
the session the web server signed. The REST channel, open to integrations,
may use any other id. This module is the one list of those shapes, so the
channels refuse each other's ids and the status lookup knows which ids are
verified identities.
"""

from __future__ import annotations

from typing import Optional

WHATSAPP_PREFIX = "whatsapp:"
TEAMS_PREFIX = "teams:"
WEB_PREFIX = "web:"

# Rasa channel name -> the prefix of the ids it writes.
PREFIXES = {"whatsapp": WHATSAPP_PREFIX, "teams": TEAMS_PREFIX, "socketio": WEB_PREFIX}


def owning_channel(sender_id: str) -> Optional[str]:
    """The channel whose ids look like ``sender_id``, or None for a free (REST) id.

    Compared without case and surrounding spaces, so «WhatsApp:+57…» and
    « whatsapp:…» are not a way around it. Teams' own raw ids ("29:…",
    "8:orgid:…") are refused too: they name a Teams user.
    """
    folded = sender_id.strip().lower()
    for channel, prefix in PREFIXES.items():
        if folded.startswith(prefix):
            return channel
    head, _, _ = folded.partition(":")
    if head.isdigit() and folded != head:
        return "teams"
    return None


def valid_sender_id(sender_id: str, max_chars: int = 255) -> bool:
    """An id a tracker store can key on: printable, no spaces around it, not too long.

    ``isprintable`` also refuses lone surrogates («\\ud800»): they cannot be
    encoded for the database, and Rasa takes that error for a missing schema
    and stops the server.
    """
    return 0 < len(sender_id) <= max_chars and sender_id == sender_id.strip() and sender_id.isprintable()


def is_verified(sender_id: str, channel: Optional[str]) -> bool:
    """Whether the id was written by the channel whose shape it has (a verified identity)."""
    owner = owning_channel(sender_id)
    return owner is not None and owner == channel
