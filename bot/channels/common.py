"""What every connector of this project shares: the text check, the off switch and credentials.yml.

A channel whose secrets are absent must not stop the assistant: it is
replaced by a ``DisabledChannel`` that logs one line at start-up and answers
its webhook with 503, while the other channels run.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.settings import PROJECT_ROOT
from bot.text import clean_text

logger = logging.getLogger(__name__)

# One limit for every channel: longer messages are a paste accident or an
# attack, and would only slow the NLU down for everyone.
MAX_MESSAGE_CHARS = 10_000
TOO_LONG = (
    f"El mensaje es demasiado largo: el máximo es de {MAX_MESSAGE_CHARS} caracteres. "
    "Escríbelo más corto o en varias partes."
)

# The channels' settings as Rasa reads them; secrets are ``${VAR}`` references.
CREDENTIALS_FILE = PROJECT_ROOT / "credentials.yml"
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_COMMENT_LINE = re.compile(r"^\s*#.*$", re.MULTILINE)


def screen_message(text: Optional[str]) -> tuple[str, Optional[str]]:
    """The customer's text as Rasa may read it, and the Spanish refusal when it may not.

    Control characters go (PostgreSQL refuses NUL; terminals obey escapes);
    a text over the limit is refused, never cut: half a message would be
    misunderstood.
    """
    if text and len(text) > MAX_MESSAGE_CHARS:
        return "", TOO_LONG
    return clean_text(text), None


def credential_variables(path: Path = CREDENTIALS_FILE) -> tuple[str, ...]:
    """The environment variables ``path`` references as ``${VAR}``, in order of appearance.

    Rasa refuses to start when a referenced variable is unset, so the
    launcher sets absent ones to "" and each connector decides it is off.
    Read from the file itself, so a channel added there needs no second list.
    Commented-out lines are not read by Rasa, so they are skipped here too.
    """
    text = _COMMENT_LINE.sub("", path.read_text(encoding="utf-8"))
    return tuple(dict.fromkeys(_REFERENCE.findall(text)))


def credential_text(credentials: Optional[Mapping[str, Any]], key: str) -> str:
    """One credentials.yml value as text: unset, null and blank are all ""."""
    return str((credentials or {}).get(key) or "").strip()


def missing_credentials(credentials: Optional[Mapping[str, Any]], required: Iterable[str]) -> list[str]:
    return [key for key in required if not credential_text(credentials, key)]


class DisabledChannel(InputChannel):
    """Stands in for a channel whose secrets are not configured."""

    def __init__(self, channel_name: str, label: str, missing: list[str]) -> None:
        self._name = channel_name
        self.missing = missing
        logger.warning("Canal %s desactivado: faltan %s en el entorno.", label, ", ".join(missing))

    def name(self) -> Text:
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


def webhook_blueprint(name: str) -> Blueprint:
    """A connector's blueprint with the health route every channel answers (GET /)."""
    hook = Blueprint(name, __name__)

    @hook.route("/", methods=["GET"])
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    return hook
