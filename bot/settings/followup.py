"""The follow-up worker's settings: the WhatsApp template, its pace, and the channels' credentials.

The worker delivers the help desk's messages to WhatsApp and Teams outside
any Rasa turn, so it is not built by Rasa from credentials.yml: it reads the
same variables credentials.yml references (tests/test_push.py checks the
two lists agree) and hands them to the channels as the same credential
mappings Rasa would.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from typing import Optional

from bot.settings import env as read
from bot.settings.env import Env, SettingError

CONTENT_SID_ENV = "WHATSAPP_NOTIFY_CONTENT_SID"
# Twilio's Content Template SIDs (error 21655 for anything else).
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")

# credentials.yml key -> the variable it references, per channel.
WHATSAPP_VARIABLES = {
    "account_sid": "TWILIO_ACCOUNT_SID",
    "auth_token": "TWILIO_AUTH_TOKEN",
    "whatsapp_number": "TWILIO_WHATSAPP_NUMBER",
    "api_url": "TWILIO_API_URL",
    "public_url": "WHATSAPP_PUBLIC_URL",
    "content_api_url": "WHATSAPP_CONTENT_API_URL",
    "interactive": "WHATSAPP_INTERACTIVE",
}
TEAMS_VARIABLES = {
    "app_id": "TEAMS_APP_ID",
    "app_password": "TEAMS_APP_PASSWORD",
    "tenant_id": "TEAMS_TENANT_ID",
    "openid_url": "TEAMS_OPENID_URL",
    "token_url": "TEAMS_TOKEN_URL",
}


@dataclass(frozen=True)
class TwilioCredentials:
    """What credentials.yml gives ``bot.channels.whatsapp.WhatsAppInput``."""

    account_sid: str = ""
    auth_token: str = field(default="", repr=False)
    whatsapp_number: str = ""
    api_url: str = ""
    public_url: str = ""
    content_api_url: str = ""
    interactive: str = ""  # blank or true: buttons as WhatsApp reply buttons and lists

    @classmethod
    def from_env(cls, env: Env) -> "TwilioCredentials":
        return cls(**{key: read.text(env, name) for key, name in WHATSAPP_VARIABLES.items()})

    def as_credentials(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class TeamsCredentials:
    """What credentials.yml gives ``bot.channels.teams.TeamsInput``."""

    app_id: str = ""
    app_password: str = field(default="", repr=False)
    tenant_id: str = ""
    openid_url: str = ""
    token_url: str = ""

    @classmethod
    def from_env(cls, env: Env) -> "TeamsCredentials":
        return cls(**{key: read.text(env, name) for key, name in TEAMS_VARIABLES.items()})

    def as_credentials(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def content_sid(env: Env) -> str:
    """The approved template's SID, checked now: a typo would otherwise surface on the first late reply."""
    value = read.text(env, CONTENT_SID_ENV)
    if value and not CONTENT_SID.match(value):
        raise SettingError(
            f"{CONTENT_SID_ENV} debe ser el SID de una plantilla de contenido de Twilio: «HX» y 32 caracteres "
            f"hexadecimales (valor actual: {value!r})"
        )
    return value


@dataclass(frozen=True)
class FollowupSettings:
    """How the follow-up worker delivers the help desk's messages to the customers' channels."""

    whatsapp_content_sid: str = ""  # the approved template used outside WhatsApp's 24-hour window
    poll_seconds: float = 1.0
    batch: int = 64  # messages claimed per round: up to one per ticket, CONCURRENCY of them sent at once
    lease_seconds: float = 300.0  # longer than the slowest send (retries and Twilio's status check)
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 1800.0
    max_attempts: int = 10  # then the message is marked failed, with its last error
    whatsapp: TwilioCredentials = field(default_factory=TwilioCredentials)
    teams: TeamsCredentials = field(default_factory=TeamsCredentials)

    @classmethod
    def from_env(cls, env: Optional[Env] = None) -> "FollowupSettings":
        env = os.environ if env is None else env
        return cls(
            whatsapp_content_sid=content_sid(env),
            poll_seconds=read.seconds(env, "FOLLOWUP_POLL_SECONDS", cls.poll_seconds),
            batch=read.integer(env, "FOLLOWUP_BATCH", cls.batch, minimum=1),
            lease_seconds=read.seconds(env, "FOLLOWUP_LEASE_SECONDS", cls.lease_seconds),
            retry_base_seconds=read.seconds(env, "FOLLOWUP_RETRY_BASE_SECONDS", cls.retry_base_seconds),
            retry_max_seconds=read.seconds(env, "FOLLOWUP_RETRY_MAX_SECONDS", cls.retry_max_seconds),
            max_attempts=read.integer(env, "FOLLOWUP_MAX_ATTEMPTS", cls.max_attempts, minimum=1),
            whatsapp=TwilioCredentials.from_env(env),
            teams=TeamsCredentials.from_env(env),
        )
