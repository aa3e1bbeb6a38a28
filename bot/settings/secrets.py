"""The project's secrets: from the environment, or generated once and kept under ``BOT_DATA_DIR``.

Resolved on first use, not when settings are read: a command that needs no
secret (``python -m bot catalog``) must not create files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from bot.kept_secrets import kept_secret
from bot.settings import env as read
from bot.settings.env import Env

REST_TOKEN_ENV, REST_TOKEN_FILE = "REST_TOKEN", "rest_token"
WEB_SESSION_ENV, WEB_SESSION_FILE = "WEB_SESSION_SECRET", "web_session_secret"
ACTIONS_TOKEN_ENV, ACTIONS_TOKEN_FILE = "ACTIONS_TOKEN", "actions_token"
RASA_API_TOKEN_ENV, RASA_API_TOKEN_FILE = "RASA_API_TOKEN", "rasa_api_token"
NAMES = {
    "rasa_api_token": (RASA_API_TOKEN_ENV, RASA_API_TOKEN_FILE),
    "actions_token": (ACTIONS_TOKEN_ENV, ACTIONS_TOKEN_FILE),
    "rest_token": (REST_TOKEN_ENV, REST_TOKEN_FILE),
    "web_session_secret": (WEB_SESSION_ENV, WEB_SESSION_FILE),
}


class Secrets:
    """Each secret: the configured value, else the kept one (generated on first use, 0600, never empty)."""

    def __init__(self, data_dir: Path, configured: Optional[dict[str, str]] = None) -> None:
        self.data_dir = data_dir
        self.configured = {k: v for k, v in (configured or {}).items() if v}
        self._values = dict(self.configured)

    @classmethod
    def from_env(cls, env: Env, data_dir: Path) -> "Secrets":
        return cls(data_dir, {name: read.text(env, variable) for name, (variable, _) in NAMES.items()})

    def _get(self, name: str) -> str:
        if name not in self._values:
            self._values[name] = kept_secret(self.data_dir, NAMES[name][1])
        return self._values[name]

    @property
    def rasa_api_token(self) -> str:
        return self._get("rasa_api_token")

    @property
    def actions_token(self) -> str:
        return self._get("actions_token")

    @property
    def rest_token(self) -> str:
        return self._get("rest_token")

    @property
    def web_session_secret(self) -> str:
        return self._get("web_session_secret")

    def as_env(self) -> dict[str, str]:
        """Every secret as the variables child processes read (by environment, never on a command line)."""
        return {variable: self._get(name) for name, (variable, _) in NAMES.items()}

    def __repr__(self) -> str:
        return f"Secrets({self.data_dir})"  # never the values
