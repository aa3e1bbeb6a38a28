"""Rasa's REST and socket.io channels, with their input checked first.

Rasa 3.6's REST channel answers 500 to a JSON body that is not an object
and accepts messages of any length; its socket.io handler crashes on
payloads that are not objects. These subclasses refuse such input with a
4xx (REST) or a Spanish message (socket.io) before Rasa sees it; everything
else is Rasa's own behaviour.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.common import MAX_MESSAGE_CHARS, TOO_LONG
from bot.text import clean_text

logger = logging.getLogger(__name__)

MAX_SENDER_CHARS = 255


def rest_problem(body: Any) -> Optional[tuple[int, str]]:
    """Why a REST request body cannot be a message, as (status, Spanish reason)."""
    if not isinstance(body, dict):
        return 400, "El cuerpo debe ser un objeto JSON con «sender» y «message»."
    sender, message, metadata = body.get("sender"), body.get("message"), body.get("metadata")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS:
        return 400, f"«sender» debe ser un texto de 1 a {MAX_SENDER_CHARS} caracteres."
    if message is not None and not isinstance(message, str):
        return 400, "«message» debe ser un texto."
    if isinstance(message, str) and len(message) > MAX_MESSAGE_CHARS:
        return 413, TOO_LONG
    if metadata is not None and not isinstance(metadata, dict):
        return 400, "«metadata» debe ser un objeto JSON."
    return None


class GuardedRestInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = super().blueprint(on_new_message)

        @hook.middleware("request")
        async def check(request: Request) -> Optional[HTTPResponse]:
            if request.method != "POST" or not request.path.endswith("/webhook"):
                return None
            try:
                body = request.json
            except InvalidUsage:
                return response.json({"error": "El cuerpo no es JSON válido (UTF-8)."}, status=400)
            problem = rest_problem(body)
            if problem is not None:
                return response.json({"error": problem[1]}, status=problem[0])
            if isinstance(body.get("message"), str):
                body["message"] = clean_text(body["message"])  # Rasa reads this same parsed body
            return None

        return hook


class GuardedSocketIOInput(SocketIOInput):
    @classmethod
    def name(cls) -> Text:
        return "socketio"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = super().blueprint(on_new_message)
        namespace = self.namespace or "/"
        original = self.sio.handlers[namespace][self.user_message_evt]

        async def guarded(sid: Text, data: Any) -> None:
            if not isinstance(data, dict) or not isinstance(data.get("message", ""), str):
                logger.info("socket.io: ignored a message that is not an object with a text")
                return
            if len(data.get("message") or "") > MAX_MESSAGE_CHARS:
                room = data.get("session_id") if self.session_persistence and data.get("session_id") else sid
                await self.sio.emit(self.bot_message_evt, {"text": TOO_LONG}, room=room)
                return
            data["message"] = clean_text(data.get("message") or "")
            await original(sid, data)

        self.sio.handlers[namespace][self.user_message_evt] = guarded
        return hook
