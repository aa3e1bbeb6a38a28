"""Putting the project's socket.io handlers where Rasa registered its own.

Replaces, per channel, handlers that ``rasa.core.channels.socketio.
SocketIOInput.blueprint`` registers on its python-socketio server: used by
``bot.channels.guarded.GuardedSocketIOInput`` for ``session_request``, the
user message event and ``disconnect`` (the web relay, bot/channels/web_push.py,
forgets a socket there). Rasa's handler for an event is read from
``AsyncServer.handlers[namespace][event]`` (python-socketio's internal
registry; there is no public getter) and the replacement registered with the
public ``AsyncServer.on``.

Why: Rasa's socket.io channel takes any ``session_id`` as the conversation and
crashes on payloads that are not objects; the blueprint builds its server and
handlers in one method, so the only way to check the input first, and then
hand it to Rasa's own message handler, is to swap the handlers it registered.
Security: always used.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from rasa.core.channels.socketio import SocketIOInput
from socketio import AsyncServer

from bot.rasa_ext.patching import expect_release, expect_signature, mismatch

PATCH = "socketio_handlers"

Handler = Callable[..., Awaitable[Any]]

ON = "socketio.AsyncServer.on"
ON_SIGNATURE = "(self, event, handler=None, namespace=None)"
BLUEPRINT = "rasa.core.channels.socketio.SocketIOInput.blueprint"
BLUEPRINT_SIGNATURE = (
    "(self, on_new_message: Callable[[rasa.core.channels.channel.UserMessage], Awaitable[Any]]) "
    "-> sanic.blueprints.Blueprint"
)


def check(on: Any, blueprint: Any) -> None:
    """Raises PatchMismatch unless python-socketio and Rasa register handlers the way this module expects."""
    expect_release(PATCH, "rasa")
    expect_release(PATCH, "python-socketio")
    expect_signature(PATCH, ON, on, ON_SIGNATURE)
    expect_signature(PATCH, BLUEPRINT, blueprint, BLUEPRINT_SIGNATURE)


def verify() -> None:
    """``check`` against the python-socketio and Rasa installed."""
    check(AsyncServer.on, SocketIOInput.blueprint)


def registered(sio: AsyncServer, namespace: str, event: str) -> Handler:
    """The handler registered for ``event``; PatchMismatch if python-socketio keeps it elsewhere."""
    handlers = getattr(sio, "handlers", None)
    found = handlers.get(namespace, {}).get(event) if isinstance(handlers, dict) else None
    if not callable(found):
        where = f"AsyncServer.handlers[{namespace!r}]"
        raise mismatch(PATCH, f"python-socketio no guarda el manejador de «{event}» en {where}")
    return found


def replace_handler(sio: AsyncServer, namespace: str, event: str, handler: Handler) -> Handler:
    """Register ``handler`` for ``event`` in place of Rasa's, and return Rasa's."""
    verify()
    original = registered(sio, namespace, event)
    sio.on(event, handler, namespace=namespace)
    if registered(sio, namespace, event) is not handler:
        raise mismatch(PATCH, f"AsyncServer.on no sustituyó el manejador de «{event}»")
    return original
