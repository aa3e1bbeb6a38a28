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
  with a Spanish reason, and no conversation is touched. The sockets of
  verified conversations are what the web relay (``bot.channels.web_push``)
  sends the help desk's messages to.

Everything else is Rasa's own behaviour. The two library internals this
relies on (swapping Rasa's socket.io handlers, handing the cleaned REST body on
to Rasa's handler) live, checked, in ``bot.rasa_ext``.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.catalog import get_catalog
from bot.channels.common import MAX_MESSAGE_CHARS, TOO_LONG
from bot.channels.identity import owning_channel, valid_sender_id
from bot.channels.web_push import WebPushRelay
from bot.channels.web_session import SessionSigner
from bot.rasa_ext import request_json, socketio_handlers
from bot.settings import Settings
from bot.sliding_window import SlidingWindow
from bot.text import clean_text
from bot.thread import TicketThread

logger = logging.getLogger(__name__)

MAX_SENDER_CHARS = 255

# Metadata only a channel that verified its sender may set (WhatsApp, Teams).
CHANNEL_VOUCHED_METADATA = frozenset({"sender_phone", "aad_object_id", "tenant_id", "service_url", "message_sid"})
CHANNEL_LABELS = {"whatsapp": "WhatsApp", "teams": "Microsoft Teams", "socketio": "el chat web"}
SESSION_REFUSED = "session_refused"
SESSION_INVALID = "La sesión del chat no es válida. Empieza una conversación nueva."
TOO_FAST = "Estás enviando mensajes muy rápido. Espera un momento y vuelve a escribirme."


def rest_problem(body: Any) -> Optional[tuple[int, str]]:
    """Why a REST request body cannot be a message, as (status, Spanish reason)."""
    if not isinstance(body, dict):
        return 400, "El cuerpo debe ser un objeto JSON con «sender» y «message»."
    sender, message, metadata = body.get("sender"), body.get("message"), body.get("metadata")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS:
        return 400, f"«sender» debe ser un texto de 1 a {MAX_SENDER_CHARS} caracteres."
    if not valid_sender_id(sender):
        return 400, "«sender» no puede tener caracteres de control ni caracteres Unicode inválidos."
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


def client_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """What a REST or web client may say about its message: never what only a channel can vouch for.

    ``sender_phone`` is the number Twilio signed for; a client claiming one
    would have the form take it as verified. Attachments stay: they are
    resolved against the files this conversation uploaded.
    """
    return {key: value for key, value in metadata.items() if key not in CHANNEL_VOUCHED_METADATA}


def bearer_ok(authorization: Optional[str], token: str) -> bool:
    scheme, _, offered = (authorization or "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode())


class GuardedRestInput(RestInput):
    def __init__(self, token: Optional[str] = None) -> None:
        self._token = token

    @classmethod
    def name(cls) -> Text:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "GuardedRestInput":
        """Rasa builds the channel at start-up: the token comes from the settings then."""
        return cls(Settings.from_env().secrets.rest_token)

    @property
    def token(self) -> str:
        return self._token or ""

    def _extract_input_channel(self, req: Request) -> Text:
        return self.name()  # the caller's «input_channel» would let it pose as another channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = super().blueprint(on_new_message)
        request_json.verify()  # the cleaned body reaches Rasa's handler through Sanic's parsed JSON

        @hook.middleware("request")
        async def check(request: Request) -> Optional[HTTPResponse]:
            if request.method != "POST":
                return None  # every POST, whatever its path: Sanic routes «/webhook/» to the same handler
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
            cleaned = {**body, "metadata": client_metadata(body["metadata"])} if body.get("metadata") else dict(body)
            if isinstance(body.get("message"), str):
                cleaned["message"] = clean_text(body["message"])
            request_json.hand_on(request, cleaned)
            return None

        return hook


# Messages one web conversation may send a minute. Anyone can open a web chat;
# without a pace one browser tab could keep the NLU busy for every other
# customer. A person never types this fast.
MESSAGES_PER_MINUTE = 30


class GuardedSocketIOInput(SocketIOInput):
    signer: SessionSigner
    pace: SlidingWindow
    relay: Optional[WebPushRelay] = None  # None: this server pushes nothing (a channel built without settings)

    @classmethod
    def name(cls) -> Text:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "GuardedSocketIOInput":
        """Rasa's options from credentials.yml; the session key and the web relay from the settings, at start-up."""
        channel = super().from_credentials(credentials)
        settings = Settings.from_env()
        channel.signer = SessionSigner(settings.secrets.web_session_secret)
        channel.pace = SlidingWindow(MESSAGES_PER_MINUTE, 60.0)
        channel.relay = WebPushRelay(
            TicketThread(settings.tickets_db_url), get_catalog().waiting_statuses, interval=settings.web.push_seconds
        )
        return channel

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = super().blueprint(on_new_message)
        namespace = self.namespace or "/"
        rasa_handle_message = socketio_handlers.registered(self.sio, namespace, self.user_message_evt)

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
            if self.relay is not None:
                self.relay.connected(sid, sender_id)  # what the help desk said meanwhile, at once and in order

        async def guarded(sid: Text, data: Any) -> None:
            if not isinstance(data, dict) or not isinstance(data.get("message", ""), str):
                logger.info("socket.io: ignored a message that is not an object with a text")
                return
            sender_id = self.signer.verify(data.get("session_id"))
            if sender_id is None:
                await refuse(sid)
                return
            self.sio.enter_room(sid, sender_id, namespace=namespace)
            if self.relay is not None:
                self.relay.connected(sid, sender_id, flush=False)  # the next tick looks for it
            if self.pace.wait(sender_id):
                await self.sio.emit(self.bot_message_evt, {"text": TOO_FAST}, room=sender_id)
                return
            if len(data.get("message") or "") > MAX_MESSAGE_CHARS:
                await self.sio.emit(self.bot_message_evt, {"text": TOO_LONG}, room=sender_id)
                return
            metadata = data.get(self.metadata_key)
            clean = {
                "message": clean_text(data.get("message") or ""),
                "session_id": sender_id,  # Rasa's handler takes this as the conversation id
                self.metadata_key: client_metadata(metadata) if isinstance(metadata, dict) else {},
            }
            await rasa_handle_message(sid, clean)

        rasa_disconnect = socketio_handlers.registered(self.sio, namespace, "disconnect")

        async def disconnect(sid: Text) -> None:
            if self.relay is not None:
                self.relay.disconnected(sid)
            await rasa_disconnect(sid)

        socketio_handlers.replace_handler(self.sio, namespace, "session_request", session_request)
        socketio_handlers.replace_handler(self.sio, namespace, self.user_message_evt, guarded)
        socketio_handlers.replace_handler(self.sio, namespace, "disconnect", disconnect)
        if self.relay is not None:
            self.relay.attach(self.sio, namespace, self.bot_message_evt, hook)
        return hook
