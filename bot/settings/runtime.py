"""How the processes run: where the action server listens, Rasa's extensions, Redis."""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import env as read
from bot.settings.env import Env


@dataclass(frozen=True)
class RuntimeSettings:
    actions_host: str = "127.0.0.1"  # ACTIONS_HOST: only Rasa calls the action server
    # RASA_EXTENSIONS=off runs Rasa's stock runtime for the same bot (benchmarks);
    # the customer-facing safety net stays on either way.
    rasa_extensions: bool = True

    @classmethod
    def from_env(cls, env: Env) -> "RuntimeSettings":
        return cls(
            actions_host=read.text(env, "ACTIONS_HOST", "127.0.0.1"),
            rasa_extensions=read.flag(env, "RASA_EXTENSIONS", True),
        )


@dataclass(frozen=True)
class StoresSettings:
    redis_url: str = ""  # REDIS_URL: shared lock store for several Rasa servers; empty = in-memory lock

    @classmethod
    def from_env(cls, env: Env) -> "StoresSettings":
        return cls(redis_url=read.text(env, "REDIS_URL"))
