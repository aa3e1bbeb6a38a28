"""The Teams connector's settings: the bot's identity from credentials.yml, its host lists.

Empty values mean Microsoft's defaults, so credentials.yml can reference
every variable while deployers set only what they need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from bot.channels.common import credential_text
from bot.channels.teams.hosts import DEFAULT_DOWNLOAD_HOSTS, DEFAULT_SERVICE_HOSTS, MEDIA_HOSTS, HostRule, host_rules
from bot.settings.teams import DOWNLOAD_HOSTS_ENV, SERVICE_HOSTS_ENV, TeamsHostSettings

DEFAULT_OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
TOKEN_URL_TEMPLATE = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
MULTI_TENANT = "botframework.com"


@dataclass(frozen=True)
class TeamsConfig:
    app_id: str
    app_password: str
    tenant_id: str = ""
    openid_url: str = DEFAULT_OPENID_URL
    token_url: str = ""
    service_hosts: tuple[HostRule, ...] = ()
    download_hosts: tuple[HostRule, ...] = ()

    def __post_init__(self) -> None:
        if not self.openid_url:
            object.__setattr__(self, "openid_url", DEFAULT_OPENID_URL)
        if not self.token_url:
            tenant = self.tenant_id or MULTI_TENANT
            object.__setattr__(self, "token_url", TOKEN_URL_TEMPLATE.format(tenant=tenant))
        if not self.service_hosts:
            object.__setattr__(self, "service_hosts", host_rules(DEFAULT_SERVICE_HOSTS))
        if not self.download_hosts:
            object.__setattr__(self, "download_hosts", host_rules(DEFAULT_DOWNLOAD_HOSTS))

    @property
    def image_hosts(self) -> tuple[HostRule, ...]:
        """Where pasted images may come from: hosts trusted with the bot's token."""
        return self.service_hosts + host_rules(MEDIA_HOSTS)

    @classmethod
    def from_credentials(
        cls, credentials: Mapping[str, Any], hosts: Optional[TeamsHostSettings] = None
    ) -> "TeamsConfig":
        """The channel's settings; host lists from credentials.yml or, absent there, ``hosts`` (the environment's).

        A host list replaces Microsoft's defaults (sovereign clouds, tests):
        comma-separated entries as described at ``DEFAULT_SERVICE_HOSTS``.
        """
        configured = hosts or TeamsHostSettings()

        def rules(key: str, entries: tuple[str, ...], source: str) -> tuple[HostRule, ...]:
            listed = credential_text(credentials, key)
            return host_rules(listed.split(",") if listed else entries, source)

        return cls(
            app_id=credential_text(credentials, "app_id"),
            app_password=credential_text(credentials, "app_password"),
            tenant_id=credential_text(credentials, "tenant_id"),
            openid_url=credential_text(credentials, "openid_url"),
            token_url=credential_text(credentials, "token_url"),
            service_hosts=rules("allowed_service_hosts", configured.service_hosts, SERVICE_HOSTS_ENV),
            download_hosts=rules("allowed_download_hosts", configured.download_hosts, DOWNLOAD_HOSTS_ENV),
        )
