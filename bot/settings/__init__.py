"""Every setting the project reads, from the environment, with the embedded defaults.

The only place that reads ``os.environ``: each process builds one
``Settings`` at start-up (``Settings.from_env()``) and hands each part the
group it needs, so the launcher, the servers, the CLI and the tests agree on
where data lives. Groups, one module each: ``secrets``, ``stores``,
``tickets`` (backend, JSM, outbox), ``mail``, ``web`` (origins, public URLs,
proxies, uploads), ``review``, ``teams``, ``runtime``, ``followup`` (the
follow-up worker: WhatsApp template, pace, channel credentials).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from bot.settings import env as read
from bot.settings.env import Env, SettingError
from bot.settings.followup import FollowupSettings
from bot.settings.kb import KbSettings
from bot.settings.mail import MailConfigError, MailSettings
from bot.settings.review import ReviewSettings
from bot.settings.runtime import RuntimeSettings, StoresSettings
from bot.settings.secrets import Secrets
from bot.settings.teams import TeamsHostSettings
from bot.settings.tickets import TicketsSettings
from bot.settings.web import WebSettings

__all__ = ["PROJECT_ROOT", "QUIET_RASA_ENV", "Settings", "SettingError", "quiet_rasa_env"]

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent

# Rasa's telemetry and its Sentry error reports would send data to third
# parties (and try the network) from every `rasa` process; off unless the
# deployer explicitly turns them on.
# Rasa 3.6's dependencies print dozens of DeprecationWarnings at start-up that
# no operator can act on and that hide the lines that matter (which channels
# are on, where the data is). PYTHONWARNINGS in the environment still wins.
QUIET_RASA_ENV = {"RASA_TELEMETRY_ENABLED": "false", "PYTHONWARNINGS": "ignore::DeprecationWarning"}


def quiet_rasa_env(base: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The environment for a child ``rasa`` process: the given one (or ours) with the quiet defaults."""
    env = dict(os.environ if base is None else base)
    for key, value in QUIET_RASA_ENV.items():
        env.setdefault(key, value)
    return env


def _mail(env: Env) -> tuple[Optional[MailSettings], str]:
    """Mail settings, or None with the reason: a mistake in ``SMTP_*`` turns mail off, never the assistant."""
    try:
        return MailSettings.from_env(env), ""
    except MailConfigError as exc:
        return None, str(exc)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    tickets_db_url: str
    tracker_db_url: str
    rasa_port: int
    actions_port: int
    web_port: int
    rasa_api_token: str  # as configured (RASA_API_TOKEN); secrets.rasa_api_token resolves the kept one
    model_path: Path
    secrets: Secrets = field(default=None, compare=False)  # type: ignore[assignment]  # set in __post_init__
    stores: StoresSettings = field(default_factory=StoresSettings)
    tickets: TicketsSettings = field(default_factory=TicketsSettings)
    mail: Optional[MailSettings] = None
    mail_error: str = ""  # why mail is off despite SMTP_HOST, for the log
    web: WebSettings = field(default_factory=WebSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    teams: TeamsHostSettings = field(default_factory=TeamsHostSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    followup: FollowupSettings = field(default_factory=FollowupSettings)
    kb: KbSettings = field(default_factory=KbSettings)

    def __post_init__(self) -> None:
        # Kept in step with data_dir and rasa_api_token, also after dataclasses.replace().
        old = self.secrets
        if (
            old is None
            or old.data_dir != self.data_dir
            or old.configured.get("rasa_api_token", "") != self.rasa_api_token
        ):
            configured = dict(old.configured) if old is not None else {}  # from the environment: any data_dir
            configured["rasa_api_token"] = self.rasa_api_token
            object.__setattr__(self, "secrets", Secrets(self.data_dir, configured))

    @classmethod
    def from_env(cls, environ: Optional[Env] = None) -> "Settings":
        env = os.environ if environ is None else environ
        data_dir = Path(read.text(env, "BOT_DATA_DIR") or PROJECT_ROOT / "var").resolve()
        mail, mail_error = _mail(env)
        return cls(
            data_dir=data_dir,
            tickets_db_url=read.text(env, "TICKETS_DB_URL") or f"sqlite:///{data_dir / 'tickets.db'}",
            # Where Rasa's tracker store lives (endpoints.yml); read by the review app.
            tracker_db_url=read.text(env, "TRACKER_DB_URL") or f"sqlite:///{data_dir / 'tracker.db'}",
            rasa_port=read.integer(env, "RASA_PORT", 5005),
            actions_port=read.integer(env, "ACTIONS_PORT", 5055),
            web_port=read.integer(env, "WEB_PORT", 8000),
            rasa_api_token=read.text(env, "RASA_API_TOKEN"),
            model_path=Path(read.text(env, "BOT_MODEL") or PROJECT_ROOT / "models" / "ecollect.tar.gz"),
            secrets=Secrets.from_env(env, data_dir),
            stores=StoresSettings.from_env(env),
            tickets=TicketsSettings.from_env(env, data_dir),
            mail=mail,
            mail_error=mail_error,
            web=WebSettings.from_env(env),
            review=ReviewSettings.from_env(env),
            teams=TeamsHostSettings.from_env(env),
            runtime=RuntimeSettings.from_env(env),
            followup=FollowupSettings.from_env(env),
            kb=KbSettings.from_env(env),
        )

    @property
    def review_db_url(self) -> str:
        return self.review.db_url or self.tickets_db_url

    @property
    def web_origins(self) -> tuple[str, ...]:
        return self.web.origins(self.web_port)
