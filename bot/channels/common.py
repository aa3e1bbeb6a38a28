"""What every connector of this project shares.

A channel whose secrets are absent must not stop the assistant: it is
replaced by a ``DisabledChannel`` that logs one line at start-up and answers
its webhook with 503, while the other channels run.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterable, Mapping, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.attachments import AttachmentStore
from bot.text import clean_text

logger = logging.getLogger(__name__)

# One limit for every channel: longer messages are a paste accident or an
# attack, and would only slow the NLU down for everyone.
MAX_MESSAGE_CHARS = 10_000
TOO_LONG = f"El mensaje es demasiado largo: el máximo es de {MAX_MESSAGE_CHARS} caracteres. Escríbelo más corto o en varias partes."


def screen_message(text: Optional[str]) -> tuple[str, Optional[str]]:
    """The customer's text as Rasa may read it, and the Spanish refusal when it may not.

    Control characters go (PostgreSQL refuses NUL; terminals obey escapes);
    a text over the limit is refused, never cut: half a message would be
    misunderstood.
    """
    if text and len(text) > MAX_MESSAGE_CHARS:
        return "", TOO_LONG
    return clean_text(text), None

# Environment variables referenced from credentials.yml. Rasa refuses to start
# when a referenced variable is unset, so the launcher sets absent ones to ""
# and each connector decides it is off.
CHANNEL_ENV = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_WHATSAPP_NUMBER",
    "TWILIO_API_URL",
    "WHATSAPP_PUBLIC_URL",
    "TEAMS_APP_ID",
    "TEAMS_APP_PASSWORD",
    "TEAMS_TENANT_ID",
    "TEAMS_OPENID_URL",
    "TEAMS_TOKEN_URL",
)


def missing_credentials(credentials: Optional[Mapping[str, Any]], required: Iterable[str]) -> list[str]:
    credentials = credentials or {}
    return [key for key in required if not str(credentials.get(key) or "").strip()]


class DisabledChannel(InputChannel):
    """Stands in for a channel whose secrets are not configured."""

    def __init__(self, channel_name: str, label: str, missing: list[str]) -> None:
        self._name = channel_name
        self.missing = missing
        logger.warning("Canal %s desactivado: faltan %s en el entorno.", label, ", ".join(missing))

    def name(self) -> Text:  # type: ignore[override]
        return self._name

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint(f"{self._name}_disabled", __name__)

        @hook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "disabled", "missing": self.missing}, status=503)

        @hook.route("/webhook", methods=["GET", "POST"])
        async def webhook(_: Request) -> HTTPResponse:
            return response.json({"error": "canal desactivado", "missing": self.missing}, status=503)

        return hook


class StoresCustomerFiles:
    """Mixin for connectors that keep the files customers send.

    The store is built on first use: it reads the catalog and the data
    directory, which tests and deployments set up after the channel exists.
    """

    _attachment_store: Optional[AttachmentStore] = None

    @property
    def attachment_store(self) -> AttachmentStore:
        if self._attachment_store is None:
            self._attachment_store = AttachmentStore.from_settings()
        return self._attachment_store


def webhook_blueprint(name: str) -> Blueprint:
    """A connector's blueprint with the health route every channel answers (GET /)."""
    hook = Blueprint(name, __name__)

    @hook.route("/", methods=["GET"])
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    return hook
