"""Hosts the Teams connector trusts (the rest of its settings come from credentials.yml)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import env as read
from bot.settings.env import Env

SERVICE_HOSTS_ENV = "TEAMS_ALLOWED_SERVICE_HOSTS"
DOWNLOAD_HOSTS_ENV = "TEAMS_ALLOWED_DOWNLOAD_HOSTS"


@dataclass(frozen=True)
class TeamsHostSettings:
    """Raw host-list entries; empty means Microsoft's defaults (the channel parses and checks them)."""

    service_hosts: tuple[str, ...] = ()
    download_hosts: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Env) -> "TeamsHostSettings":
        return cls(read.items(env, SERVICE_HOSTS_ENV), read.items(env, DOWNLOAD_HOSTS_ENV))
