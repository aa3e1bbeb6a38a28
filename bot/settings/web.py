"""The web server's settings: who may embed the chat, where browsers reach things, proxies, upload limits."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

from bot.settings import env as read
from bot.settings.env import Env


@dataclass(frozen=True)
class ProxySettings:
    """The proxies in front of the web server that may name the client's address.

    ``count`` 0 trusts only the socket peer: ``X-Forwarded-For`` is then
    anyone's to write. ``forwarded_secret`` is what a proxy writes in the
    RFC 7239 ``Forwarded`` header to be believed.
    """

    count: int = 0
    forwarded_secret: Optional[str] = None

    @classmethod
    def from_env(cls, env: Optional[Env] = None) -> "ProxySettings":
        env = os.environ if env is None else env
        raw = read.text(env, "PROXIES_COUNT")
        try:
            count = int(raw) if raw else 0
        except ValueError:
            count = -1
        if count < 0:
            raise read.SettingError(
                f"PROXIES_COUNT debe ser un número entero mayor o igual que 0 (valor actual: {raw!r}): "
                "cuántos proxies delante del servidor añaden la dirección del cliente a X-Forwarded-For."
            )
        return cls(count, read.text(env, "FORWARDED_SECRET") or None)


@dataclass(frozen=True)
class UploadLimits:
    """Limits against floods of uploads; 0 turns one off.

    The per-conversation quota counts the files of the last
    ``unattached_hours``, the time a file no ticket took may stay: so the
    disk one conversation can fill with loose files is bounded, and a
    long-lived conversation (a WhatsApp number) can still send files later.
    """

    rate_per_minute: int = 10
    max_files_per_conversation: int = 20
    max_bytes_per_conversation: int = 50 * 1024 * 1024
    unattached_hours: float = 24.0
    # Free disk the store always leaves: past it, files are refused, whoever sends them.
    min_free_bytes: int = 1024 * 1024 * 1024

    @classmethod
    def from_env(cls, env: Optional[Env] = None) -> "UploadLimits":
        env = os.environ if env is None else env
        return cls(
            rate_per_minute=int(read.non_negative(env, "UPLOAD_RATE_PER_MINUTE", cls.rate_per_minute)),
            max_files_per_conversation=int(
                read.non_negative(env, "UPLOAD_MAX_FILES_PER_CONVERSATION", cls.max_files_per_conversation)
            ),
            max_bytes_per_conversation=int(
                read.non_negative(env, "UPLOAD_MAX_BYTES_PER_CONVERSATION", cls.max_bytes_per_conversation)
            ),
            unattached_hours=read.non_negative(env, "UPLOAD_UNATTACHED_HOURS", cls.unattached_hours),
            min_free_bytes=int(read.non_negative(env, "UPLOAD_MIN_FREE_MB", cls.min_free_bytes / 2**20) * 2**20),
        )

    @property
    def window_seconds(self) -> float:
        return self.unattached_hours * 3600.0


def _positive_seconds(env: Env, name: str, default: float) -> float:
    value = read.non_negative(env, name, default)
    if value <= 0:
        raise read.SettingError(f"{name} debe ser un número de segundos mayor que 0 (valor actual: {value!r})")
    return value


@dataclass(frozen=True)
class WebSettings:
    embedding_origins: tuple[str, ...] = ()  # WEB_ALLOWED_ORIGINS: sites that embed the widget
    rasa_public_url: str = ""  # RASA_PUBLIC_URL: where browsers reach Rasa (empty: this host, RASA_PORT)
    public_url: str = ""  # WEB_PUBLIC_URL: this server as leads reach it (links in the CLI)
    proxies: ProxySettings = field(default_factory=ProxySettings)
    uploads: UploadLimits = field(default_factory=UploadLimits)
    # New web chat sessions one client address may open a minute (each is a new
    # conversation with its own upload quota); 0 turns the limit off.
    sessions_per_minute: int = 20
    # WEB_PUSH_SECONDS: how often each Rasa server looks for help-desk messages
    # for the web customers connected to it (bot/channels/web_push.py).
    push_seconds: float = 1.0

    @classmethod
    def from_env(cls, env: Env) -> "WebSettings":
        return cls(
            embedding_origins=tuple(o.rstrip("/") for o in read.items(env, "WEB_ALLOWED_ORIGINS")),
            rasa_public_url=read.text(env, "RASA_PUBLIC_URL").rstrip("/"),
            public_url=read.text(env, "WEB_PUBLIC_URL").rstrip("/"),
            proxies=ProxySettings.from_env(env),
            uploads=UploadLimits.from_env(env),
            sessions_per_minute=int(read.non_negative(env, "WEB_SESSIONS_PER_MINUTE", cls.sessions_per_minute)),
            push_seconds=_positive_seconds(env, "WEB_PUSH_SECONDS", cls.push_seconds),
        )

    def origins(self, web_port: int) -> tuple[str, ...]:
        """Origins allowed to call Rasa and this server from a browser: the chat page's own and the embedders'."""
        own = (f"http://localhost:{web_port}", f"http://127.0.0.1:{web_port}")
        return tuple(dict.fromkeys(own + self.embedding_origins))
