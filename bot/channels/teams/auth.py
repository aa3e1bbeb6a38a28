"""Who may talk to the bot: the Bot Framework's JWT on every request, then what the token does not vouch for.

Microsoft's signing keys are fetched on the first request, not at start-up
(the assistant must start offline, or while login.botframework.com is
slow), cached for a day and re-read for an unknown key id at most once a
minute, so a forged ``kid`` cannot make us hammer Microsoft.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import aiohttp
import jwt
from jwt.algorithms import RSAAlgorithm

from bot.channels.http import LoopSession
from bot.channels.teams.activity import activity_tenants
from bot.channels.teams.config import TeamsConfig
from bot.channels.teams.hosts import host_of, trusted_url

logger = logging.getLogger(__name__)

CHANNEL_ID = "msteams"  # the Bot Framework's channelId for Microsoft Teams
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
TOKEN_LEEWAY_S = 300  # clock skew tolerated on exp/nbf, as Microsoft's SDKs do
KEYS_TTL_S = 24 * 3600  # Microsoft rotates signing keys; re-read them daily
UNKNOWN_KID_REFRESH_S = 60  # a forged kid must not make us hammer the key endpoint

BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)


class Unauthorized(Exception):
    """An incoming request that does not prove it comes from the Bot Framework."""


class ActivityRefused(Exception):
    """A genuinely signed activity the bot must not act on (other channel, tenant or host)."""


@dataclass(frozen=True)
class SigningKey:
    key: Any
    endorsements: tuple[str, ...]


class BotFrameworkAuth:
    """Verifies the JWT the Bot Framework puts on every request to the bot."""

    def __init__(self, config: TeamsConfig, http: LoopSession, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.http = http
        self.clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: Optional[float] = None
        self._unknown_kid_refresh_at: Optional[float] = None

    async def verify(self, authorization: Optional[str], activity: Mapping[str, Any]) -> dict[str, Any]:
        """The token's claims, or ``Unauthorized`` saying why it was refused."""
        token = bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"malformed token: {exc}") from exc
        if header.get("alg") != "RS256":
            raise Unauthorized(f"unexpected algorithm {header.get('alg')!r}")
        signing_key = await self._signing_key(str(header.get("kid") or ""))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=signing_key.key,
                algorithms=["RS256"],
                audience=self.config.app_id,
                issuer=BOT_FRAMEWORK_ISSUER,
                leeway=TOKEN_LEEWAY_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        check_activity_claims(claims, signing_key, activity)
        return claims

    async def _signing_key(self, kid: str) -> SigningKey:
        if not kid:
            raise Unauthorized("token without key id")
        now = self.clock()
        if self._fetched_at is None or now - self._fetched_at > KEYS_TTL_S:
            await self._refresh(reason="expired" if self._fetched_at else "first request")
        elif kid not in self._keys and self._may_refresh_for_unknown_kid(now):
            await self._refresh(reason=f"unknown key id {kid}")
        if kid not in self._keys:
            raise Unauthorized(f"unknown key id {kid}")
        return self._keys[kid]

    def _may_refresh_for_unknown_kid(self, now: float) -> bool:
        if self._unknown_kid_refresh_at is not None and now - self._unknown_kid_refresh_at < UNKNOWN_KID_REFRESH_S:
            return False
        self._unknown_kid_refresh_at = now
        return True

    async def _refresh(self, reason: str) -> None:
        seen = self._fetched_at
        async with self.http.lock("keys"):
            if self._fetched_at != seen:
                return  # a concurrent request refreshed them while we waited
            try:
                self._keys = await self._fetch_keys()
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError) as exc:
                logger.error("Could not fetch Bot Framework signing keys (%s): %s", reason, exc)
                if not self._keys:
                    raise Unauthorized("signing keys unavailable") from exc
                return  # keep the keys we have; retry at the next expiry
            self._fetched_at = self.clock()
            logger.info("Bot Framework signing keys fetched (%s): %d keys.", reason, len(self._keys))

    async def _fetch_keys(self) -> dict[str, SigningKey]:
        session = self.http.session()
        async with session.get(self.config.openid_url) as reply:
            reply.raise_for_status()
            configuration = await reply.json(content_type=None)
        async with session.get(configuration["jwks_uri"]) as reply:
            reply.raise_for_status()
            jwks = await reply.json(content_type=None)
        keys: dict[str, SigningKey] = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") != "RSA" or not jwk.get("kid"):
                continue
            try:
                public_key = RSAAlgorithm.from_jwk(json.dumps(jwk))
            except (jwt.PyJWTError, ValueError) as exc:
                logger.warning("Ignoring unusable Bot Framework key %s: %s", jwk.get("kid"), exc)
                continue
            keys[jwk["kid"]] = SigningKey(public_key, tuple(jwk.get("endorsements") or ()))
        return keys


def bearer_token(authorization: Optional[str]) -> str:
    match = BEARER.match(authorization or "")
    if not match:
        raise Unauthorized("no bearer token")
    return match.group(1)


def check_activity_claims(claims: Mapping[str, Any], signing_key: SigningKey, activity: Mapping[str, Any]) -> None:
    """Binds the token to this activity, so a token for one service cannot be replayed with another.

    The ``serviceurl`` claim is where replies (carrying our access token) go;
    the Bot Connector always sets it, so a token without it is not one of
    its tokens. Endorsements restrict which channels a Microsoft key may
    sign for.
    """
    claimed = claims.get("serviceurl")
    if not isinstance(claimed, str) or not claimed:
        raise Unauthorized("token without serviceurl claim")
    service_url = activity.get("serviceUrl")
    if not isinstance(service_url, str) or claimed.rstrip("/") != service_url.rstrip("/"):
        raise Unauthorized("serviceUrl does not match the token")
    channel = str(activity.get("channelId") or "")
    if signing_key.endorsements and channel not in signing_key.endorsements:
        raise Unauthorized(f"key not endorsed for channel {channel!r}")


def check_activity(activity: Mapping[str, Any], config: TeamsConfig) -> None:
    """Refuses what a valid token does not vouch for: other channels, tenants and hosts.

    Microsoft signs activities of every channel and every tenant that talks
    to the bot; a single-tenant bot serves only its organisation, and its
    replies (with the access token) go only to Microsoft's hosts.
    """
    channel = activity.get("channelId")
    if channel != CHANNEL_ID:
        raise ActivityRefused(f"channel {channel!r} is not {CHANNEL_ID}")
    if config.tenant_id:
        tenants = activity_tenants(activity)
        if not tenants:
            raise ActivityRefused("activity without tenant")
        if tenants != {config.tenant_id.lower()}:
            raise ActivityRefused(f"tenant {sorted(tenants)!r} is not the bot's tenant")
    if trusted_url(activity.get("serviceUrl"), config.service_hosts) is None:
        raise ActivityRefused(f"serviceUrl host {host_of(activity.get('serviceUrl'))} is not a Bot Framework host")
