"""The bot's side of the Bot Connector API: its access token, replies and file downloads.

The token comes from Entra ID on first use (never at start-up), is shared
by concurrent replies and renewed before it expires. It goes only to hosts
on the service list: every reply and every download checks its host where
the token leaves, whatever built the URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Callable, Mapping, Optional, Sequence

import aiohttp
from yarl import URL

from bot.channels.http import (
    Delivery,
    Download,
    LoopSession,
    Sleep,
    UntrustedUrl,
    capped_download,
    post_with_retries,
)
from bot.channels.teams.activity import ConversationReference
from bot.channels.teams.config import TeamsConfig
from bot.channels.teams.hosts import HostRule, host_of, trusted_url
from bot.http_retry import RetryPolicy

logger = logging.getLogger(__name__)

BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
ACCESS_TOKEN_MARGIN_S = 300  # renew the outgoing token this long before it expires
SEND_ATTEMPTS = 4
SEND_RETRIES = RetryPolicy(attempts=SEND_ATTEMPTS, backoff_base=0.5, max_wait=30.0)
MAX_REDIRECTS = 3


class TokenError(Exception):
    """The bot could not obtain its access token (wrong secret, tenant, network)."""


class BotConnector:
    """Sends replies with the bot's token and fetches the files customers send."""

    def __init__(self, config: TeamsConfig, http: LoopSession, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.http = http
        self.clock = clock
        self.sleep: Sleep = asyncio.sleep
        self._token: Optional[str] = None
        self._token_expires_at = 0.0

    # ------------------------------------------------------------ the token
    async def access_token(self) -> str:
        if self._token and self.clock() < self._token_expires_at:
            return self._token
        async with self.http.lock("token"):
            if self._token and self.clock() < self._token_expires_at:
                return self._token  # fetched by a concurrent request
            self._token, lifetime = await self._fetch_token()
            margin = min(ACCESS_TOKEN_MARGIN_S, lifetime / 2)
            self._token_expires_at = self.clock() + lifetime - margin
            return self._token

    def forget_token(self) -> None:
        self._token, self._token_expires_at = None, 0.0

    async def _bearer(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {await self.access_token()}"}

    async def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.config.app_id,
            "client_secret": self.config.app_password,
            "scope": BOT_FRAMEWORK_SCOPE,
        }
        try:
            async with self.http.session().post(self.config.token_url, data=form) as reply:
                status, raw = reply.status, await reply.text()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise TokenError(f"{self.config.token_url} unreachable: {exc}") from exc
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
            # Entra ID explains a wrong secret or tenant in error_description; never log the secret.
            error = (body.get("error_description") or body.get("error")) if isinstance(body, dict) else raw[:200]
            raise TokenError(f"{self.config.token_url} answered {status}: {error}")
        return str(body["access_token"]), float(body.get("expires_in") or 3600)

    # -------------------------------------------------------------- replies
    async def send(self, reference: ConversationReference, activity: dict[str, Any]) -> bool:
        """POST one activity; retries throttling and server errors, then logs and gives up."""
        try:
            delivery = await self.deliver(reference, activity)
        except UntrustedUrl:
            logger.error("Teams reply not sent: %s is not a Bot Framework host.", host_of(reference.service_url))
            return False
        except TokenError as exc:
            logger.error("Teams reply not sent: no access token (%s).", exc)
            return False
        if delivery.ok:
            return True
        if delivery.temporary:
            logger.error(
                "Teams reply to %s not sent after %d attempts: %s %s",
                reference.conversation_id,
                delivery.attempts,
                delivery.status,
                delivery.detail,
            )
        else:
            logger.error(
                "Teams refused a reply to %s: %s %s", reference.conversation_id, delivery.status, delivery.detail
            )
        return False

    async def deliver(self, reference: ConversationReference, activity: dict[str, Any]) -> Delivery:
        """POST one activity and return the Bot Connector's last answer (a reply or a proactive message).

        The reference's host is checked again here, where the token leaves:
        whatever builds a reference (an incoming activity, the address book),
        the token goes only to the Bot Connector (``UntrustedUrl`` otherwise).
        A 401 gets one retry with a new token (a revoked or rotated secret);
        ``TokenError`` when there is no token at all.
        """
        if trusted_url(reference.service_url, self.config.service_hosts) is None:
            raise UntrustedUrl(host_of(reference.service_url))
        renewed = False

        def renew(failed: Delivery) -> bool:
            nonlocal renewed
            if failed.status != 401 or renewed:
                return False
            self.forget_token()
            renewed = True
            return True

        def on_retry(failed: Delivery, wait: float) -> None:
            logger.warning(
                "Teams reply failed (%s %s); retry %d in %.1fs.",
                failed.status or "network",
                failed.detail,
                failed.attempts,
                wait,
            )

        return await post_with_retries(
            self.http,
            reference.activities_url,
            SEND_RETRIES,
            json=activity,
            headers=self._bearer,
            renew=renew,
            on_retry=on_retry,
            sleep=self.sleep,
        )

    # ------------------------------------------------------------ downloads
    async def download(self, url: str, hosts: Sequence[HostRule], max_bytes: int, with_token: bool) -> Download:
        """The file's bytes and declared type; ``FileTooLarge`` past ``max_bytes``, without reading it all.

        ``UntrustedUrl`` when the URL, or any redirect, leaves ``hosts``:
        redirects are followed hop by hop, because aiohttp would follow
        them anywhere (and the token with them).
        """
        target = trusted_url(url, hosts)
        if target is None:
            raise UntrustedUrl(host_of(url))

        def next_hop(current: URL, location: Optional[str]) -> URL:
            try:
                following = str(current.join(URL(location or "")))
            except (ValueError, TypeError):
                following = ""
            allowed = trusted_url(following, hosts) if location else None
            if allowed is None:
                raise UntrustedUrl(f"redirect from {current.host} to {host_of(following)}")
            return allowed

        headers = dict(await self._bearer()) if with_token else {}
        return await capped_download(
            self.http.session(), target, max_bytes, headers=headers, next_hop=next_hop, max_redirects=MAX_REDIRECTS
        )
