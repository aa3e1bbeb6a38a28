"""Signed web chat sessions.

The web server hands each widget a random conversation id with an HMAC
signature (``web:<random>.<signature>``); the Socket.IO channel accepts
only ids it can verify, so nobody can write into a conversation whose id
they did not receive. The key is ``WEB_SESSION_SECRET`` or one generated
and kept under ``BOT_DATA_DIR``; both servers read the same.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from pathlib import Path
from typing import Optional

from bot.channels.identity import WEB_PREFIX
from bot.kept_secrets import secret

SECRET_ENV = "WEB_SESSION_SECRET"
SECRET_FILE = "web_session_secret"

_TOKEN = re.compile(rf"^({re.escape(WEB_PREFIX)}[A-Za-z0-9_-]{{16,64}})\.([A-Za-z0-9_-]{{43}})$")


class SessionSigner:
    """Issues and verifies signed session ids with one key."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("la clave de sesiones web no puede estar vacía")
        self._key = key.encode("utf-8")

    @classmethod
    def from_env(cls, data_dir: Path) -> "SessionSigner":
        return cls(secret(SECRET_ENV, data_dir, SECRET_FILE))

    def _signature(self, sender_id: str) -> str:
        digest = hmac.new(self._key, sender_id.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")

    def issue(self) -> str:
        """A new session: the token the widget keeps (the conversation id is its first part)."""
        sender_id = f"{WEB_PREFIX}{secrets.token_urlsafe(18)}"
        return f"{sender_id}.{self._signature(sender_id)}"

    def verify(self, token: object) -> Optional[str]:
        """The conversation id a valid token names, else None."""
        if not isinstance(token, str):
            return None
        match = _TOKEN.match(token)
        if not match:
            return None
        sender_id, signature = match.groups()
        return sender_id if hmac.compare_digest(signature, self._signature(sender_id)) else None
