"""The help desk's news to a Teams customer: a proactive message into their 1:1 chat with the bot.

The Bot Connector accepts a message the bot starts only in a conversation it
was given, so the channel keeps each customer's 1:1 conversation reference
(bot/channels/addresses.py) and this push posts to it, with the bot's token,
through the same ``BotConnector`` as the replies: its host check applies to
a stored reference exactly as to an incoming one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.channels.addresses import AddressBook, AddressError
from bot.channels.http import UntrustedUrl
from bot.channels.push import PushFailed, failure_of
from bot.channels.teams.activity import ConversationReference
from bot.channels.teams.cards import buttons_message
from bot.channels.teams.connector import BotConnector, TokenError
from bot.channels.teams.hosts import host_of
from bot.channels.teams.output import TeamsOutput, markdown_text
from bot.dialogue.notices import Notice
from bot.privacy import mask_sender

logger = logging.getLogger(__name__)

PROACTIVE = "proactive"
NO_REFERENCE = (
    "No hay una conversación 1:1 de Teams guardada para este cliente (nunca escribió al bot en un chat "
    "personal desde que se guardan): Teams no permite enviarle el mensaje. Responda por otro medio."
)


def proactive_activity(output: TeamsOutput, notice: Notice) -> dict[str, Any]:
    """The notice as the Teams output words replies: markdown text, or an Adaptive Card with its buttons."""
    reference = output.reference
    if notice.buttons:
        buttons = [{"title": b.title, "payload": b.payload} for b in notice.buttons]
        activity = output.activity(**buttons_message(notice.text, buttons))
    else:
        activity = output.activity(text=markdown_text(notice.text), textFormat="markdown")
    if reference.tenant_id:
        activity["conversation"]["tenantId"] = reference.tenant_id
        activity["channelData"] = {"tenant": {"id": reference.tenant_id}}
    return activity


class TeamsPush:
    """Sends the follow-up worker's notices to Teams customers."""

    def __init__(self, connector: BotConnector, addresses: AddressBook) -> None:
        self.connector = connector
        self.addresses = addresses

    async def send(self, conversation_id: str, notice: Notice) -> str:
        try:
            address = await asyncio.to_thread(self.addresses.get, conversation_id)
        except AddressError as exc:
            raise PushFailed(str(exc), temporary=True) from exc
        if address is None or address.reference is None:
            raise PushFailed(NO_REFERENCE, temporary=False)
        kept = address.reference
        reference = ConversationReference(  # no activity id: a new message, not a reply
            kept.service_url, kept.conversation_id, dict(kept.bot), dict(kept.user), tenant_id=kept.tenant_id
        )
        try:
            activity = proactive_activity(TeamsOutput(self.connector, reference), notice)
            delivery = await self.connector.deliver(reference, activity)
        except UntrustedUrl:
            raise PushFailed(
                f"La conversación de Teams guardada apunta a {host_of(reference.service_url)}, que no es un host "
                "permitido del Bot Framework: no se le envía el token del bot.",
                temporary=False,
            ) from None
        except TokenError as exc:
            raise PushFailed(f"El bot de Teams no obtuvo su token de acceso: {exc}", temporary=True) from exc
        if delivery.ok:
            return PROACTIVE
        logger.error(
            "Teams: proactive message to %s refused: %s %s",
            mask_sender(conversation_id),
            delivery.status,
            delivery.detail,
        )
        raise failure_of(delivery, "Teams no aceptó el mensaje", delivery.detail[:300])

    async def close(self) -> None:
        await self.connector.http.close()
