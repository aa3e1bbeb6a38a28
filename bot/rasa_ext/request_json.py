"""Handing Rasa's REST handler the body a middleware checked and cleaned.

Relies on ``sanic.request.Request.json``: Sanic 21.12 parses the body once
into ``Request.parsed_json`` and returns that same object on every later
read, so a request middleware that sets it decides what the route handler
(``rasa.core.channels.rest.RestInput``'s ``receive``) reads. Used by
``bot.channels.guarded.GuardedRestInput`` to pass on the message with its
control characters removed.

Why: Rasa's REST blueprint reads the message inside its own route; a
middleware is the only place to check and clean it first, and this is the only
way to hand the cleaned body on. ``check`` builds a request and verifies the
reliance itself, not just a signature. Security: always used.
"""

from __future__ import annotations

from typing import Any

from sanic.compat import Header
from sanic.request import Request

from bot.rasa_ext.patching import expect_release, mismatch

PATCH = "request_json"


def check(request_class: Any) -> None:
    """Raises PatchMismatch unless ``request.json`` returns what ``parsed_json`` holds."""
    expect_release(PATCH, "sanic")
    if "parsed_json" not in getattr(request_class, "__slots__", ()):
        raise mismatch(PATCH, "sanic.request.Request ya no tiene el atributo parsed_json")
    try:
        probe = request_class(b"/webhook", Header(), "1.1", "POST", None, None)
        body = {"message": "hola"}
        probe.parsed_json = body
        handed_on = probe.json is body
    except Exception as exc:  # any failure here means Sanic is not the one this module relies on
        raise mismatch(PATCH, f"no se pudo comprobar sanic.request.Request.json ({exc!r})") from exc
    if not handed_on:
        raise mismatch(PATCH, "sanic.request.Request.json ya no devuelve el cuerpo guardado en parsed_json")


def verify() -> None:
    """``check`` against the Sanic installed."""
    check(Request)


def hand_on(request: Request, body: Any) -> None:
    """From now on ``request.json``, where Rasa's handler reads the message, returns ``body``."""
    request.parsed_json = body
