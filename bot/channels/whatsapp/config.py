"""The WhatsApp connector's settings, parsed once from credentials.yml and shared by its input and output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from bot.channels.common import credential_text
from bot.channels.identity import WHATSAPP_PREFIX

DEFAULT_API_URL = "https://api.twilio.com"
DEFAULT_CONTENT_API_URL = "https://content.twilio.com"
OFF = frozenset({"0", "false", "no", "off"})
REQUIRED_CREDENTIALS = ("account_sid", "auth_token", "whatsapp_number")


def with_prefix(address: str) -> str:
    """Twilio needs the ``whatsapp:`` prefix on both ends, or it sends an SMS."""
    address = (address or "").strip()
    return address if address.startswith(WHATSAPP_PREFIX) else WHATSAPP_PREFIX + address


@dataclass(frozen=True)
class WhatsAppConfig:
    """Twilio's account, the bot's number and where Twilio's webhook is published.

    Normalised here, once: the number always carries ``whatsapp:``, the API
    URL has no trailing slash, and an empty public URL is None (the
    request's own URL is then the one Twilio signed). ``interactive``:
    buttons as WhatsApp's reply buttons and lists (Content API), on unless
    switched off; the Content API has its own host.
    """

    account_sid: str
    auth_token: str
    whatsapp_number: str
    api_url: str = DEFAULT_API_URL
    public_url: Optional[str] = None
    content_api_url: str = DEFAULT_CONTENT_API_URL
    interactive: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "whatsapp_number", with_prefix(self.whatsapp_number))
        object.__setattr__(self, "api_url", (self.api_url or DEFAULT_API_URL).rstrip("/"))
        object.__setattr__(self, "content_api_url", (self.content_api_url or DEFAULT_CONTENT_API_URL).rstrip("/"))
        object.__setattr__(self, "public_url", self.public_url or None)

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any]) -> "WhatsAppConfig":
        return cls(
            account_sid=credential_text(credentials, "account_sid"),
            auth_token=credential_text(credentials, "auth_token"),
            whatsapp_number=credential_text(credentials, "whatsapp_number"),
            api_url=credential_text(credentials, "api_url"),
            public_url=credential_text(credentials, "public_url"),
            content_api_url=credential_text(credentials, "content_api_url"),
            interactive=credential_text(credentials, "interactive").lower() not in OFF,
        )

    @property
    def messages_url(self) -> str:
        return f"{self.api_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
