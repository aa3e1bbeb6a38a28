"""The Rasa server's HTTP API, as the follow-up worker needs it: read a conversation's loop, append events.

A message the help desk sends outside a Rasa turn must still be part of the
conversation: the transcript shows it, and the customer's next message is
read as an answer to it (bot/dialogue/notices.py ``tracker_events``). Rasa
3.6 (rasa/server.py) takes the token as the ``token`` query parameter and
appends events under the conversation's lock, so a customer writing at the
same moment is not lost.

Rasa does not percent-decode the conversation id in these paths, so an id is
sent as it is, and one that cannot travel in a URL path unchanged is refused
here (the channels' ids never need it: ``whatsapp:+57…``, ``teams:29:…``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, Optional, Sequence

import aiohttp
from yarl import URL

from bot.channels.http import LoopSession
from bot.privacy import mask_sender

logger = logging.getLogger(__name__)

RASA_TIMEOUT = aiohttp.ClientTimeout(total=15)
# What travels in a URL path unchanged (RFC 3986 unreserved and sub-delims, ":" and "@"), minus "/".
PATH_SAFE_ID = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@-]{1,255}$")


class ConversationError(Exception):
    """The Rasa server could not read or update a conversation; the message says why (Spanish)."""


class RasaUnavailable(ConversationError):
    """Rasa did not answer, or failed on its side (5xx): a restart or an outage, not this conversation's fault."""


class RasaConversations:
    """Reads and appends to conversations on the Rasa server at ``base_url``."""

    def __init__(self, base_url: str, token: str, http: Optional[LoopSession] = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.http = http if http is not None else LoopSession(timeout=RASA_TIMEOUT)

    def _url(self, conversation_id: str, tail: str) -> URL:
        if not PATH_SAFE_ID.match(conversation_id):
            raise ConversationError(
                f"El identificador de la conversación {mask_sender(conversation_id)!r} no puede ir en la ruta "
                "de la API de Rasa sin cambiar."
            )
        path = f"{self.base_url}/conversations/{conversation_id}/{tail}"
        return URL(path, encoded=True).with_query({"include_events": "NONE", "token": self.token})

    async def _call(self, method: str, url: URL, conversation_id: str, payload: Any = None) -> dict[str, Any]:
        what = "leer" if method == "GET" else "actualizar"
        try:
            async with self.http.session().request(method, url, json=payload) as reply:
                text = await reply.text()
                status = reply.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            why = repr(exc).replace(self.token, "***") if self.token else repr(exc)  # never the token in a log
            raise RasaUnavailable(
                f"No se pudo {what} la conversación {mask_sender(conversation_id)} en Rasa: {why}"
            ) from None
        if status != 200:
            raise (RasaUnavailable if status >= 500 else ConversationError)(
                f"Rasa no dejó {what} la conversación {mask_sender(conversation_id)}: HTTP {status} {text[:300]}"
            )
        try:
            body = json.loads(text) if text else {}
        except ValueError as exc:
            raise ConversationError(f"Rasa respondió algo que no es JSON al {what} la conversación") from exc
        return body if isinstance(body, dict) else {}

    async def active_loop(self, conversation_id: str) -> Optional[str]:
        """The loop (form) active in the conversation, or None."""
        state = await self._call("GET", self._url(conversation_id, "tracker"), conversation_id)
        loop = state.get("active_loop")
        name = loop.get("name") if isinstance(loop, dict) else None
        return name if isinstance(name, str) and name else None

    async def append(self, conversation_id: str, events: Sequence[dict[str, Any]]) -> None:
        """Append ``events`` (Rasa's JSON event format) to the conversation, in order."""
        if not events:
            return
        await self._call("POST", self._url(conversation_id, "tracker/events"), conversation_id, payload=list(events))

    async def close(self) -> None:
        await self.http.close()
