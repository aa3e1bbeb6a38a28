"""Where confirmed tickets go: the local store only, or Jira Service Management through the outbox."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from bot.settings import env as read
from bot.settings.env import Env, SettingError

BACKENDS = ("local", "jsm")
JSM_REQUIRED = ("JSM_SITE_URL", "JSM_SERVICE_DESK_ID", "JSM_EMAIL", "JSM_API_TOKEN")


@dataclass(frozen=True)
class JsmSettings:
    """JSM's site and the agent account the assistant acts as; empty values mean «not configured».

    Missing values are not an error here: the delivery worker reports them
    (and retries) so tickets flow as soon as the deployer fixes them.

    How agents' comments and status changes reach the project (issue 12):
    ``webhook_secret`` (``JSM_WEBHOOK_SECRET``) is the secret of the Jira
    admin webhook that posts to ``/webhooks/jsm``; unset, that route does not
    exist (404), because an unsigned webhook would let anyone write to a
    customer's chat. ``poll_seconds`` (``JSM_POLL_SECONDS``, 120 by default)
    is how often the follow-up worker reads the open requests' public
    comments and status, for sites where an admin webhook is not possible
    (and to catch what a lost webhook missed); 0 turns polling off.
    """

    site_url: str = ""
    service_desk_id: str = ""
    email: str = ""
    api_token: str = field(default="", repr=False)
    create_customers: bool = False
    mapping_file: Path = Path("jsm-mapping.yml")
    timeout: float = 20.0
    status_timeout: float = 4.0
    webhook_secret: str = field(default="", repr=False)
    poll_seconds: float = 120.0

    @classmethod
    def from_env(cls, env: Optional[Env] = None, data_dir: Optional[Path] = None) -> "JsmSettings":
        env = os.environ if env is None else env
        mapping = read.text(env, "JSM_MAPPING_FILE") or str((data_dir or Path("var")) / "jsm-mapping.yml")
        return cls(
            site_url=read.text(env, "JSM_SITE_URL").rstrip("/"),
            service_desk_id=read.text(env, "JSM_SERVICE_DESK_ID"),
            email=read.text(env, "JSM_EMAIL"),
            api_token=read.text(env, "JSM_API_TOKEN"),
            create_customers=read.flag(env, "JSM_CREATE_CUSTOMERS", False),
            mapping_file=Path(mapping),
            timeout=read.seconds(env, "JSM_TIMEOUT", 20.0),
            status_timeout=read.seconds(env, "JSM_STATUS_TIMEOUT", 4.0),
            webhook_secret=read.text(env, "JSM_WEBHOOK_SECRET"),
            poll_seconds=read.non_negative(env, "JSM_POLL_SECONDS", cls.poll_seconds),
        )

    def missing(self) -> list[str]:
        """The variables still to set before JSM can be called."""
        values = (self.site_url, self.service_desk_id, self.email, self.api_token)
        return [name for name, value in zip(JSM_REQUIRED, values, strict=True) if not value]


@dataclass(frozen=True)
class OutboxSettings:
    """How the delivery worker paces itself and backs off."""

    poll_seconds: float = 2.0
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    lease_seconds: float = 300.0
    batch: int = 5

    @classmethod
    def from_env(cls, env: Optional[Env] = None) -> "OutboxSettings":
        env = os.environ if env is None else env
        return cls(
            poll_seconds=read.seconds(env, "OUTBOX_POLL_SECONDS", cls.poll_seconds),
            retry_base_seconds=read.seconds(env, "OUTBOX_RETRY_BASE_SECONDS", cls.retry_base_seconds),
            retry_max_seconds=read.seconds(env, "OUTBOX_RETRY_MAX_SECONDS", cls.retry_max_seconds),
            lease_seconds=read.seconds(env, "OUTBOX_LEASE_SECONDS", cls.lease_seconds),
        )


@dataclass(frozen=True)
class TicketsSettings:
    backend: str = "local"
    jsm: JsmSettings = field(default_factory=JsmSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)

    @property
    def uses_jsm(self) -> bool:
        return self.backend == "jsm"

    @property
    def jsm_poll_seconds(self) -> float:
        """How often to poll JSM for agents' news; 0 (off) unless JSM is the help desk."""
        return self.jsm.poll_seconds if self.uses_jsm else 0.0

    @classmethod
    def from_env(cls, env: Env, data_dir: Path) -> "TicketsSettings":
        backend = read.text(env, "TICKETS_BACKEND", "local").lower()
        if backend not in BACKENDS:
            raise SettingError(f"TICKETS_BACKEND debe ser «local» o «jsm» (valor actual: {backend!r})")
        return cls(backend, JsmSettings.from_env(env, data_dir), OutboxSettings.from_env(env))
