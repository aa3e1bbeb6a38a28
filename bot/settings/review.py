"""The review app's settings (support leads' transcripts and figures)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import env as read
from bot.settings.env import Env


@dataclass(frozen=True)
class ReviewSettings:
    db_url: str = ""  # REVIEW_DB_URL: accounts and marks; empty = the tickets database
    session_hours: float = 8.0
    secure_cookies: bool = False  # forced Secure cookies even without a proxy saying HTTPS
    timezone: str = "America/Bogota"  # whose days the date filters mean
    abandon_minutes: float = 30.0  # an open form idle this long counts as abandoned
    chromium: str = ""  # CHROMIUM: the browser that prints the weekly report as PDF (else the usual paths)

    @classmethod
    def from_env(cls, env: Env) -> "ReviewSettings":
        return cls(
            db_url=read.text(env, "REVIEW_DB_URL"),
            session_hours=read.seconds(env, "REVIEW_SESSION_HOURS", cls.session_hours),
            secure_cookies=read.flag(env, "REVIEW_SECURE_COOKIES", False),
            timezone=read.text(env, "REVIEW_TIMEZONE", cls.timezone),
            abandon_minutes=read.seconds(env, "REVIEW_ABANDON_MINUTES", cls.abandon_minutes),
            chromium=read.text(env, "CHROMIUM"),
        )
