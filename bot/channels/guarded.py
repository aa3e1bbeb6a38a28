"""Rasa's REST and socket.io channels, with their input and their caller checked first.

Rasa 3.6's REST channel answers anyone, takes the caller's ``sender`` and
``input_channel`` as given, answers 500 to a JSON body that is not an object
and accepts messages of any length; its socket.io channel takes any
``session_id`` as the conversation, and crashes on payloads that are not
objects. Here:

- REST is an integration channel: it requires ``Authorization: Bearer
  <REST_TOKEN>``, refuses sender ids of another channel's shape with a 403
  (never renames them), and the channel name is always ``rest``.
- socket.io accepts only session ids signed by the web server
  (``bot.channels.web_session``); anything else gets ``session_refused``
  with a Spanish reason, and no conversation is touched.

Everything else is Rasa's own behaviour.
"""

from __future__ import annotations

import hmac
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
from bot.channels.identity import owning_channel
from bot.channels.web_session import SessionSigner
from bot.kept_secrets import secret
from bot.settings import Settings
from bot.text import clean_text

logger = logging.getLogger(__name__)

MAX_SENDER_CHARS = 255
REST_TOKEN_ENV = "REST_TOKEN"
REST_TOKEN_FILE = "rest_token"

CHANNEL_LABELS = {"whatsapp": "WhatsApp", "teams": "Microsoft Teams", "socketio": "el chat web"}
SESSION_REFUSED = "session_refused"
SESSION_INVALID = "La sesión del chat no es válida o caducó. Empieza una conversación nueva."


def rest_token() -> str:
    """The REST channel's bearer token: ``REST_TOKEN``, or the one kept under ``BOT_DATA_DIR``."""
    return secret(REST_TOKEN_ENV, Settings.from_env().data_dir, REST_TOKEN_FILE)


def rest_problem(body: Any) -> Optional[tuple[int, str]]:
    """Why a REST request body cannot be a message, as (status, Spanish reason)."""
    if not isinstance(body, dict):
        return 400, "El cuerpo debe ser un objeto JSON con «sender» y «message»."
    sender, message, metadata = body.get("sender"), body.get("message"), body.get("metadata")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS:
        return 400, f"«sender» debe ser un texto de 1 a {MAX_SENDER_CHARS} caracteres."
    if clean_text(sender) != sender:
        return 400, "«sender» no puede tener caracteres de control."
    owner = owning_channel(sender)
    if owner is not None:
        return 403, (
            f"«sender» tiene la forma de una conversación de {CHANNEL_LABELS.get(owner, owner)}: "
            "la API REST no puede escribir en conversaciones de otros canales. Usa otro identificador."
        )
    if message is not None and not isinstance(message, str):
        return 400, "«message» debe ser un texto."
    if isinstance(message, str) and len(message) > MAX_MESSAGE_CHARS:
        return 413, TOO_LONG
    if metadata is not None and not isinstance(metadata, dict):
        return 400, "«metadata» debe ser un objeto JSON."
    return None


def bearer_ok(authorization: Optional[str], token: str) -> bool:
    scheme, _, offered = (authorization or "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode())


class GuardedRestInput(RestInput):
    def __init__(self, token: Optional[str] = None) -> None:
        self._token = token

    @classmethod
    def name(cls) -> Text:
        return "rest"

    @property
    def token(self) -> str:
        if self._token is None:  # read on first use: tests and deployments set the environment first
            self._token = rest_token()
        return self._token

    def _extract_input_channel(self, req: Request) -> Text:
        return self.name()  # the caller's «input_channel» would let it pose as another channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = super().blueprint(on_new_message)

        @hook.middleware("request")
        async def check(request: Request) -> Optional[HTTPResponse]:
            if request.method != "POST" or not request.path.endswith("/webhook"):
                return None
            if not bearer_ok(request.headers.get("Authorization"), self.token):
                return response.json(
                    {"error": "Falta el token de la API REST o no es válido (cabecera «Authorization: Bearer …»)."},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="rest"'},
                )
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
    _signer: Optional[SessionSigner] = None

    @classmethod
    def name(cls) -> Text:
        return "socketio"

    @property
    def signer(self) -> SessionSigner:
        if self._signer is None:
            self._signer = SessionSigner.from_env(Settings.from_env().data_dir)
        return self._signer

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = super().blueprint(on_new_message)
        namespace = self.namespace or "/"
        handlers = self.sio.handlers[namespace]
        original = handlers[self.user_message_evt]

        async def refuse(sid: Text) -> None:
            await self.sio.emit(SESSION_REFUSED, {"error": SESSION_INVALID}, room=sid)

        async def session_request(sid: Text, data: Any) -> None:
            token = data.get("session_id") if isinstance(data, dict) else None
            sender_id = self.signer.verify(token)
            if sender_id is None:
                logger.info("socket.io: refused a session that the web server did not sign")
                await refuse(sid)
                return
            self.sio.enter_room(sid, sender_id, namespace=namespace)
            await self.sio.emit("session_confirm", token, room=sid)

        async def guarded(sid: Text, data: Any) -> None:
            if not isinstance(data, dict) or not isinstance(data.get("message", ""), str):
                logger.info("socket.io: ignored a message that is not an object with a text")
                return
            sender_id = self.signer.verify(data.get("session_id"))
            if sender_id is None:
                await refuse(sid)
                return
            self.sio.enter_room(sid, sender_id, namespace=namespace)
            if len(data.get("message") or "") > MAX_MESSAGE_CHARS:
                await self.sio.emit(self.bot_message_evt, {"text": TOO_LONG}, room=sender_id)
                return
            metadata = data.get(self.metadata_key)
            clean = {
                "message": clean_text(data.get("message") or ""),
                "session_id": sender_id,  # Rasa's handler takes this as the conversation id
                self.metadata_key: metadata if isinstance(metadata, dict) else {},
            }
            await original(sid, clean)

        handlers["session_request"] = session_request
        handlers[self.user_message_evt] = guarded
        return hook
