"""Signed web chat sessions.

The web server hands each widget a random conversation id with an HMAC
signature (``web:<random>.<signature>``); the Socket.IO channel accepts
only ids it can verify, so nobody can write into a conversation whose id
they did not receive. The key is ``settings.secrets.web_session_secret``
(``WEB_SESSION_SECRET`` or one kept under ``BOT_DATA_DIR``): the web
server and every Rasa server read the same.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Optional

from bot.channels.identity import WEB_PREFIX

_TOKEN = re.compile(rf"^({re.escape(WEB_PREFIX)}[A-Za-z0-9_-]{{16,64}})\.([A-Za-z0-9_-]{{43}})$")


class SessionSigner:
    """Issues and verifies signed session ids with one key."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("la clave de sesiones web no puede estar vacía")
        self._key = key.encode("utf-8")

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
        match = _TOKEN.fullmatch(token)
        if not match:
            return None
        sender_id, signature = match.groups()
        return sender_id if hmac.compare_digest(signature, self._signature(sender_id)) else None
