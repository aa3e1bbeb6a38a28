"""Microsoft Teams, through the Bot Framework, as a channel of the assistant.

Replaces Rasa's ``botframework`` connector, which cannot serve this project:
it downloads Microsoft's signing keys when it is constructed (the assistant
could not start offline, or at all while login.botframework.com is slow),
only knows the multi-tenant token endpoint that new Azure bots no longer get,
blocks the event loop with ``requests`` and turns Teams button clicks into
empty messages.

Here nothing touches the network until traffic arrives: the OpenID
configuration, its keys and the bot's access token are fetched on first use
and cached. Incoming requests are accepted only with a valid Bot Framework
JWT bound to the activity's ``serviceUrl``, from Teams (``msteams``), from
the bot's own tenant when it is single-tenant, and with a ``serviceUrl`` on
Microsoft's Bot Framework hosts: replies carry the bot's access token, so a
signed but unexpected host must never receive one. Files are fetched only
from Microsoft's hosts (SharePoint/OneDrive, the Bot Connector, Teams'
media service), never following a redirect off them, so a crafted activity
cannot make the assistant read internal addresses. Button clicks carry their
Rasa payload in ``value.payload``; files are stored with ``AttachmentStore``
and reach the form as attachment ids. Conversations are keyed by
``teams:<from.id>`` so a Teams customer's id can never collide with, or be
claimed through, another channel.

Messaging endpoint: ``https://<host>/webhooks/teams/webhook``.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import logging
import mimetypes
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping, Optional, Sequence, Text
from urllib.parse import quote

import aiohttp
import jwt
from jwt.algorithms import RSAAlgorithm
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from yarl import URL

from bot.attachments import AttachmentRefused, AttachmentStore, StoredAttachment, human_size
from bot.channels.common import DisabledChannel, StoresCustomerFiles, missing_credentials, screen_message, webhook_blueprint
from bot.channels.identity import TEAMS_PREFIX
from bot.http_retry import parse_retry_after, retryable_status

logger = logging.getLogger(__name__)

CHANNEL_NAME = "teams"
CHANNEL_ID = "msteams"  # the Bot Framework's channelId for Microsoft Teams
# Tracker keys of Teams customers: the channel's name, then Teams' user id.
# Other channels refuse sender ids with this prefix (bot.channels.identity,
# the one list of those shapes), so nobody can open (or read) a Teams
# customer's conversation through them.
SENDER_PREFIX = TEAMS_PREFIX
MAX_SENDER_ID_CHARS = 200  # Teams ids are ~90 chars; trackers store 255
DEFAULT_OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
TOKEN_URL_TEMPLATE = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
MULTI_TENANT = "botframework.com"
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"

HERO_CARD = "application/vnd.microsoft.card.hero"
FILE_DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"
ATTACH_TEXT = "/attach"  # payload of the form's `attach` intent: a file without words
# Teams shows at most six buttons on a hero card; longer menus become several cards.
MAX_CARD_BUTTONS = 6

TOKEN_LEEWAY_S = 300  # clock skew tolerated on exp/nbf, as Microsoft's SDKs do
KEYS_TTL_S = 24 * 3600  # Microsoft rotates signing keys; re-read them daily
UNKNOWN_KID_REFRESH_S = 60  # a forged kid must not make us hammer the key endpoint
ACCESS_TOKEN_MARGIN_S = 300  # renew the outgoing token this long before it expires
SEND_ATTEMPTS = 4
MAX_RETRY_DELAY_S = 30.0
API_TIMEOUT = aiohttp.ClientTimeout(total=30)
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120)
MAX_REDIRECTS = 3
MAX_URL_CHARS = 8192

# Where the Bot Connector lives (replies go to the activity's serviceUrl with
# the bot's access token): the public cloud's smba.trafficmanager.net (its
# regions are paths: /amer/, /emea/, /teams/...), the government clouds'
# smba.infra.{gcc,gov,dod}.teams.microsoft.{com,us} and the Bot Framework's
# own domains. Exactly smba.trafficmanager.net: anyone can create a
# *.trafficmanager.net host. An entry is a host, or "*." and a domain for its
# subdomains, optionally with ":port"; HTTPS on 443 unless the entry starts
# with "http://" or names a port.
SERVICE_HOSTS_ENV = "TEAMS_ALLOWED_SERVICE_HOSTS"
DEFAULT_SERVICE_HOSTS = (
    "smba.trafficmanager.net",
    "*.botframework.com",
    "*.botframework.us",
    "*.teams.microsoft.com",
    "*.teams.microsoft.us",
)
# Besides the service hosts, images pasted into channel posts live in Teams'
# media service; like the service hosts, it wants the bot's token.
MEDIA_HOSTS = ("*.asm.skype.com",)
# Files sent through Teams are pre-authenticated SharePoint/OneDrive links
# (commercial and government clouds); they never get the bot's token.
DOWNLOAD_HOSTS_ENV = "TEAMS_ALLOWED_DOWNLOAD_HOSTS"
DEFAULT_DOWNLOAD_HOSTS = ("*.sharepoint.com", "*.sharepoint.us")
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)
_MENTION = re.compile(r"<at\b[^>]*>.*?</at>", re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"[ \t\u00a0]{2,}")
_NEWLINES = re.compile(r"\s*\n\s*")
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)

Sleep = Callable[[float], Awaitable[None]]


class Unauthorized(Exception):
    """An incoming request that does not prove it comes from the Bot Framework."""


class ActivityRefused(Exception):
    """A genuinely signed activity the bot must not act on (other channel, tenant or host)."""


class TokenError(Exception):
    """The bot could not obtain its access token (wrong secret, tenant, network)."""


class UntrustedUrl(Exception):
    """A URL (or a redirect) off the allow-list: the assistant must not fetch it."""


# ------------------------------------------------------------ allowed hosts
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostRule:
    """One allowed origin: scheme, port and an exact host or a domain's subdomains.

    A wildcard never matches an IP literal nor the bare domain, and ports
    must match exactly, so an allowed name cannot be stretched to internal
    addresses or other services on the same machine.
    """

    scheme: str
    host: str  # the exact host, or for a wildcard the domain its subdomains end with
    port: int
    wildcard: bool = False

    @classmethod
    def parse(cls, entry: str) -> "HostRule":
        text = entry.strip().lower()
        scheme, separator, rest = text.partition("://")
        if not separator:
            scheme, rest = "https", text
        if scheme not in ("https", "http"):
            raise ValueError(f"scheme {scheme!r} is not http(s)")
        wildcard = rest.startswith("*.")
        if wildcard:
            rest = rest[2:]
        if not rest or any(c in rest for c in "/?#@\\*") or any(c.isspace() for c in rest):
            raise ValueError("not a host[:port]")
        url = URL(f"{scheme}://{rest}")
        if not url.host or url.port is None:
            raise ValueError("not a host[:port]")
        if wildcard and (_is_ip(url.host) or "." not in url.host):
            raise ValueError("wildcard too broad")
        return cls(scheme, url.host, url.port, wildcard)

    def matches(self, url: URL) -> bool:
        host = url.host or ""
        if url.scheme != self.scheme or url.port != self.port:
            return False
        if self.wildcard:
            return host.endswith("." + self.host) and not _is_ip(host)
        return host == self.host


def host_rules(entries: Iterable[str], source: str = "") -> tuple[HostRule, ...]:
    """The valid entries as rules; a bad entry is logged and skipped, never widened."""
    rules = []
    for entry in entries:
        if not entry.strip():
            continue
        try:
            rules.append(HostRule.parse(entry))
        except ValueError as exc:
            logger.error("Ignoring %r in %s: %s.", entry, source or "a Teams host list", exc)
    return tuple(rules)


def trusted_url(raw: Any, rules: Sequence[HostRule]) -> Optional[URL]:
    """``raw`` parsed as aiohttp will fetch it, if it is on the allow-list; else None.

    The URL checked is the URL fetched (one parser for both), and URLs
    carrying credentials or odd characters are refused outright: they are
    how parsers are made to disagree about the host.
    """
    if not isinstance(raw, str) or not raw or len(raw) > MAX_URL_CHARS:
        return None
    if any(ord(c) <= 0x20 or c in "\\\x7f" for c in raw):
        return None
    try:
        url = URL(raw)
        if not url.is_absolute() or url.scheme not in ("https", "http") or not url.host:
            return None
        if "@" in (url.raw_authority or ""):
            return None
        return url if any(rule.matches(url) for rule in rules) else None
    except (ValueError, TypeError):
        return None


def _host_of(raw: Any) -> str:
    """For logs: the host only, as download URLs carry short-lived credentials."""
    try:
        return URL(str(raw)).host or "?"
    except (ValueError, TypeError):
        return "?"


# --------------------------------------------------------------- configuration
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
        # Empty settings mean "Microsoft's defaults", so credentials.yml can
        # reference every variable while deployers set only what they need.
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
    def from_credentials(cls, credentials: Mapping[str, Any]) -> "TeamsConfig":
        """The channel's settings; host lists from credentials.yml or, absent there, the environment.

        A host list replaces Microsoft's defaults (sovereign clouds, tests):
        comma-separated entries as described at ``DEFAULT_SERVICE_HOSTS``.
        """

        def value(key: str) -> str:
            return str(credentials.get(key) or "").strip()

        def hosts(key: str, env: str) -> tuple[HostRule, ...]:
            return host_rules((value(key) or os.environ.get(env, "")).split(","), env)

        return cls(
            app_id=value("app_id"),
            app_password=value("app_password"),
            tenant_id=value("tenant_id"),
            openid_url=value("openid_url"),
            token_url=value("token_url"),
            service_hosts=hosts("allowed_service_hosts", SERVICE_HOSTS_ENV),
            download_hosts=hosts("allowed_download_hosts", DOWNLOAD_HOSTS_ENV),
        )


class _LoopResources:
    """An aiohttp session and locks for the running event loop.

    Sessions and locks belong to the loop that created them; Sanic may run
    the channel in a new loop (worker restarts, test servers), so they are
    recreated when the loop changes instead of being built at construction.
    """

    def __init__(self) -> None:
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._session: Optional[aiohttp.ClientSession] = None
        self._locks: dict[str, asyncio.Lock] = {}

    def _ensure_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._session, self._locks = loop, None, {}

    def session(self) -> aiohttp.ClientSession:
        self._ensure_loop()
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(trust_env=True, timeout=API_TIMEOUT)
        return self._session

    def lock(self, name: str) -> asyncio.Lock:
        self._ensure_loop()
        return self._locks.setdefault(name, asyncio.Lock())

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


# ------------------------------------------------------------ incoming tokens
@dataclass(frozen=True)
class _SigningKey:
    key: Any
    endorsements: tuple[str, ...]


class BotFrameworkAuth:
    """Verifies the JWT the Bot Framework puts on every request to the bot."""

    def __init__(self, config: TeamsConfig, http: _LoopResources, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.http = http
        self.clock = clock
        self._keys: dict[str, _SigningKey] = {}
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
            claims = jwt.decode(
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

    async def _signing_key(self, kid: str) -> _SigningKey:
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

    async def _fetch_keys(self) -> dict[str, _SigningKey]:
        session = self.http.session()
        async with session.get(self.config.openid_url) as reply:
            reply.raise_for_status()
            configuration = await reply.json(content_type=None)
        async with session.get(configuration["jwks_uri"]) as reply:
            reply.raise_for_status()
            jwks = await reply.json(content_type=None)
        keys: dict[str, _SigningKey] = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") != "RSA" or not jwk.get("kid"):
                continue
            try:
                public_key = RSAAlgorithm.from_jwk(json.dumps(jwk))
            except (jwt.PyJWTError, ValueError) as exc:
                logger.warning("Ignoring unusable Bot Framework key %s: %s", jwk.get("kid"), exc)
                continue
            keys[jwk["kid"]] = _SigningKey(public_key, tuple(jwk.get("endorsements") or ()))
        return keys


def bearer_token(authorization: Optional[str]) -> str:
    match = _BEARER.match(authorization or "")
    if not match:
        raise Unauthorized("no bearer token")
    return match.group(1)


def check_activity_claims(claims: Mapping[str, Any], signing_key: _SigningKey, activity: Mapping[str, Any]) -> None:
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
    if not isinstance(service_url, str) or not _same_url(claimed, service_url):
        raise Unauthorized("serviceUrl does not match the token")
    channel = str(activity.get("channelId") or "")
    if signing_key.endorsements and channel not in signing_key.endorsements:
        raise Unauthorized(f"key not endorsed for channel {channel!r}")


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def activity_tenants(activity: Mapping[str, Any]) -> set[str]:
    """Every tenant the activity names (Teams puts it in two places), lower-cased."""
    candidates = (
        _mapping(activity.get("conversation")).get("tenantId"),
        _mapping(_mapping(activity.get("channelData")).get("tenant")).get("id"),
    )
    return {c.strip().lower() for c in candidates if isinstance(c, str) and c.strip()}


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
        raise ActivityRefused(f"serviceUrl host {_host_of(activity.get('serviceUrl'))} is not a Bot Framework host")


def sender_id(activity: Mapping[str, Any]) -> Optional[str]:
    """The tracker key of the activity's sender, or None when it names nobody usable.

    An empty or odd id must not become a key: every such message would land
    in one conversation shared by strangers.
    """
    raw = _mapping(activity.get("from")).get("id")
    if not isinstance(raw, str) or not raw or len(raw) > MAX_SENDER_ID_CHARS:
        return None
    if not raw.isprintable() or any(c.isspace() for c in raw):
        return None
    return SENDER_PREFIX + raw


# ------------------------------------------------------------ Bot Connector
@dataclass(frozen=True)
class ConversationReference:
    """Where a reply goes: taken from the incoming activity, as Bot Framework requires."""

    service_url: str
    conversation_id: str
    bot: dict[str, Any]
    user: dict[str, Any]
    activity_id: Optional[str] = None

    @classmethod
    def from_activity(cls, activity: Mapping[str, Any]) -> "ConversationReference":
        conversation = _mapping(activity.get("conversation"))
        return cls(
            service_url=str(activity.get("serviceUrl") or ""),
            conversation_id=str(conversation.get("id") or ""),
            bot=_account(activity.get("recipient")),
            user=_account(activity.get("from")),
            activity_id=activity.get("id"),
        )

    @property
    def activities_url(self) -> str:
        conversation = quote(self.conversation_id, safe="")
        return f"{self.service_url.rstrip('/')}/v3/conversations/{conversation}/activities"


def _account(value: Any) -> dict[str, Any]:
    value = value if isinstance(value, Mapping) else {}
    return {k: value[k] for k in ("id", "name") if value.get(k)}


class BotConnector:
    """The bot's side of the Bot Connector API: its access token, replies and file downloads."""

    def __init__(self, config: TeamsConfig, http: _LoopResources, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.http = http
        self.clock = clock
        self.sleep: Sleep = asyncio.sleep
        self._token: Optional[str] = None
        self._token_expires_at = 0.0

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

    async def send(self, reference: ConversationReference, activity: dict[str, Any]) -> bool:
        """POST one activity; retries throttling and server errors, then logs and gives up.

        The reference's host is checked again here, where the token leaves:
        whatever builds a reference, the token goes only to the Bot Connector.
        """
        if trusted_url(reference.service_url, self.config.service_hosts) is None:
            logger.error("Teams reply not sent: %s is not a Bot Framework host.", _host_of(reference.service_url))
            return False
        url = reference.activities_url
        token_renewed = False
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                headers = {"Authorization": f"Bearer {await self.access_token()}"}
                async with self.http.session().post(url, json=activity, headers=headers) as reply:
                    if reply.status < 300:
                        return True
                    detail = (await reply.text())[:500]
                    retry_after = parse_retry_after(reply.headers.get("Retry-After"))
                    status = reply.status
            except TokenError as exc:
                logger.error("Teams reply not sent: no access token (%s).", exc)
                return False
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                status, detail, retry_after = 0, str(exc) or type(exc).__name__, None
            if status == 401 and not token_renewed:
                self.forget_token()  # revoked or rotated secret: one retry with a new token
                token_renewed = True
                continue
            if status and not retryable_status(status):
                logger.error("Teams refused a reply to %s: %s %s", reference.conversation_id, status, detail)
                return False
            if attempt < SEND_ATTEMPTS:
                delay = min(retry_after if retry_after is not None else 0.5 * 2 ** (attempt - 1), MAX_RETRY_DELAY_S)
                logger.warning("Teams reply failed (%s %s); retry %d in %.1fs.", status or "network", detail, attempt, delay)
                await self.sleep(delay)
        logger.error("Teams reply to %s not sent after %d attempts: %s %s", reference.conversation_id, SEND_ATTEMPTS, status, detail)
        return False

    async def download(
        self, url: str, hosts: Sequence[HostRule], max_bytes: int, with_token: bool
    ) -> tuple[bytes, str]:
        """The file's bytes and declared type; ``FileTooLarge`` past ``max_bytes``, without reading it all.

        ``UntrustedUrl`` when the URL, or any redirect, leaves ``hosts``:
        redirects are followed here, hop by hop, because aiohttp would follow
        them anywhere (and the token with them).
        """
        target = trusted_url(url, hosts)
        if target is None:
            raise UntrustedUrl(_host_of(url))
        headers = {"Authorization": f"Bearer {await self.access_token()}"} if with_token else {}
        session = self.http.session()
        for _ in range(MAX_REDIRECTS + 1):
            async with session.get(target, headers=headers, timeout=DOWNLOAD_TIMEOUT, allow_redirects=False) as reply:
                if reply.status in _REDIRECT_STATUSES:
                    target = _redirect_target(target, reply.headers.get("Location"), hosts)
                    continue
                reply.raise_for_status()
                if reply.content_length is not None and reply.content_length > max_bytes:
                    raise FileTooLarge()
                data = bytearray()
                async for chunk in reply.content.iter_chunked(64 * 1024):
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise FileTooLarge()
                return bytes(data), reply.headers.get("Content-Type", "")
        raise UntrustedUrl(f"more than {MAX_REDIRECTS} redirects")


def _redirect_target(current: URL, location: Optional[str], hosts: Sequence[HostRule]) -> URL:
    try:
        following = str(current.join(URL(location or "")))
    except (ValueError, TypeError):
        following = ""
    target = trusted_url(following, hosts) if location else None
    if target is None:
        raise UntrustedUrl(f"redirect from {current.host} to {_host_of(following)}")
    return target


class FileTooLarge(Exception):
    """A download stopped at the attachment size limit."""


# ------------------------------------------------------------------ output
def markdown_text(text: str) -> str:
    """Bot text as Teams markdown: each line its own paragraph.

    Teams joins lines separated by a single newline, and the mobile clients
    do not render markdown lists, so every line break becomes a paragraph.
    """
    return _NEWLINES.sub("\n\n", text.strip())


def card_text(text: str) -> str:
    """Bot text for a card: Teams renders card text as simple XML, not markdown."""
    return "<br>".join(html.escape(line, quote=False) for line in text.strip().splitlines())


def card_action(button: Mapping[str, Any]) -> dict[str, Any]:
    """A Rasa button as a Teams action whose click sends the payload back to Rasa."""
    title = str(button.get("title") or button.get("payload") or "")
    if button.get("url") or button.get("type") == "web_url":
        return {"type": "openUrl", "title": title, "value": button.get("url") or button.get("payload")}
    payload = str(button.get("payload") or title)
    return {"type": "messageBack", "title": title, "displayText": title, "text": title, "value": {"payload": payload}}


def hero_cards(text: Optional[str], buttons: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    actions = [card_action(b) for b in buttons]
    chunks = [actions[i : i + MAX_CARD_BUTTONS] for i in range(0, len(actions), MAX_CARD_BUTTONS)] or [[]]
    cards = []
    for index, chunk in enumerate(chunks):
        content: dict[str, Any] = {"buttons": chunk}
        if index == 0 and text:
            content["text"] = card_text(text)
        cards.append({"contentType": HERO_CARD, "content": content})
    return cards


class TeamsOutput(OutputChannel):
    """Sends the assistant's replies into the Teams conversation they answer."""

    def __init__(self, connector: BotConnector, reference: ConversationReference) -> None:
        self.connector = connector
        self.reference = reference

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    def activity(self, **fields: Any) -> dict[str, Any]:
        activity: dict[str, Any] = {
            "type": "message",
            "from": self.reference.bot,
            "recipient": self.reference.user,
            "conversation": {"id": self.reference.conversation_id},
        }
        if self.reference.activity_id:
            activity["replyToId"] = self.reference.activity_id
        activity.update(fields)
        return activity

    async def send_activity(self, activity: dict[str, Any]) -> bool:
        return await self.connector.send(self.reference, activity)

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self.send_activity(self.activity(text=markdown_text(text), textFormat="markdown"))

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        await self.send_activity(self.activity(attachmentLayout="list", attachments=hero_cards(text, buttons)))

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        card = {"contentType": HERO_CARD, "content": {"images": [{"url": image}]}}
        await self.send_activity(self.activity(attachments=[card]))

    async def send_attachment(self, recipient_id: Text, attachment: Text, **kwargs: Any) -> None:
        await self.send_text_message(recipient_id, f"Adjunto: {attachment}")

    async def send_elements(self, recipient_id: Text, elements: Iterable[dict[str, Any]], **kwargs: Any) -> None:
        cards = []
        for element in elements:
            card = hero_cards(element.get("subtitle") or element.get("text"), element.get("buttons") or [])[0]
            if element.get("title"):
                card["content"]["title"] = element["title"]
            if element.get("image_url"):
                card["content"]["images"] = [{"url": element["image_url"]}]
            cards.append(card)
        if cards:
            await self.send_activity(self.activity(attachmentLayout="carousel", attachments=cards))

    async def send_custom_json(self, recipient_id: Text, json_message: dict[str, Any], **kwargs: Any) -> None:
        """Lets responses carry Teams-specific activities (e.g. Adaptive Cards) unchanged."""
        await self.send_activity(self.activity(**json_message))


# ------------------------------------------------------------------- input
def incoming_text(activity: Mapping[str, Any]) -> str:
    """What Rasa reads: a clicked button's payload, else the typed text without @mentions."""
    value = activity.get("value")
    if isinstance(value, Mapping) and isinstance(value.get("payload"), str) and value["payload"].strip():
        return value["payload"].strip()
    text = _MENTION.sub(" ", str(activity.get("text") or ""))
    return _SPACES.sub(" ", text).strip()


def incoming_metadata(activity: Mapping[str, Any]) -> dict[str, Any]:
    conversation = _mapping(activity.get("conversation"))
    sender = _mapping(activity.get("from"))
    tenant = conversation.get("tenantId") or _mapping(_mapping(activity.get("channelData")).get("tenant")).get("id")
    return {
        "conversation_id": conversation.get("id"),
        "service_url": activity.get("serviceUrl"),
        "tenant_id": tenant,
        "aad_object_id": sender.get("aadObjectId"),
        "user_name": sender.get("name"),
    }


@dataclass(frozen=True)
class IncomingFile:
    name: str
    declared_type: Optional[str]
    url: str
    with_token: bool


def incoming_files(activity: Mapping[str, Any]) -> list[IncomingFile]:
    """Files a customer sent: Teams uploads and pasted images (not the HTML copy of the text)."""
    files: list[IncomingFile] = []
    images: list[Mapping[str, Any]] = []
    for attachment in activity.get("attachments") or ():
        if not isinstance(attachment, Mapping):
            continue
        content_type = str(attachment.get("contentType") or "")
        if content_type == FILE_DOWNLOAD_INFO:
            content = _mapping(attachment.get("content"))
            if content.get("downloadUrl"):
                name = str(attachment.get("name") or f"adjunto.{content.get('fileType') or ''}".rstrip("."))
                files.append(IncomingFile(name, mimetypes.guess_type(name)[0], str(content["downloadUrl"]), False))
        elif content_type.startswith("image/") and attachment.get("contentUrl"):
            images.append(attachment)
    for number, image in enumerate(images, start=1):
        name = str(image.get("name") or (f"imagen_{number}" if len(images) > 1 else "imagen"))
        files.append(IncomingFile(name, str(image["contentType"]), str(image["contentUrl"]), True))
    return files


def image_type(data: bytes, declared: str) -> Optional[str]:
    """The real type of a pasted image: Teams declares them as ``image/*``."""
    declared = declared.split(";")[0].strip().lower()
    if declared.startswith("image/") and declared != "image/*":
        return declared
    for magic, content_type in _IMAGE_MAGIC:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass
class ReceivedFiles:
    stored: list[StoredAttachment] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    def metadata(self) -> list[dict[str, Any]]:
        return [{"id": s.id, "name": s.name, "content_type": s.content_type, "size": s.size} for s in self.stored]


class TeamsInput(StoresCustomerFiles, InputChannel):
    """The Teams webhook: verifies Bot Framework requests and hands messages to Rasa."""

    @classmethod
    def name(cls) -> Text:
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[dict[str, Any]]) -> InputChannel:
        missing = missing_credentials(credentials, ("app_id", "app_password"))
        if missing:
            return DisabledChannel(CHANNEL_NAME, "Microsoft Teams", missing)
        return cls(TeamsConfig.from_credentials(credentials or {}))

    def __init__(self, config: TeamsConfig, attachment_store: Optional[AttachmentStore] = None) -> None:
        self.config = config
        self.http = _LoopResources()
        self.auth = BotFrameworkAuth(config, self.http)
        self.connector = BotConnector(config, self.http)
        self._attachment_store = attachment_store

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = webhook_blueprint("teams_webhook")

        @hook.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            return await self.handle_request(request, on_new_message)

        @hook.listener("after_server_stop")
        async def close_session(*_: Any) -> None:
            await self.http.close()

        return hook

    async def handle_request(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        authorization = request.headers.get("Authorization")
        if not _BEARER.match(authorization or ""):
            logger.warning("Teams request refused: no bearer token.")
            return response.json({"error": "unauthorized"}, status=401)
        try:
            activity = json.loads(request.body or b"")
        except ValueError:
            activity = None
        if not isinstance(activity, dict):
            return response.json({"error": "invalid activity"}, status=400)
        try:
            await self.auth.verify(authorization, activity)
        except Unauthorized as exc:
            logger.warning("Teams request refused: %s", exc)
            return response.json({"error": "unauthorized"}, status=401)
        try:
            check_activity(activity, self.config)
        except ActivityRefused as exc:
            logger.warning("Teams activity %r refused: %s", activity.get("id"), exc)
            return response.json({"error": "forbidden"}, status=403)

        if activity.get("type") != "message":
            logger.debug("Ignoring Teams activity of type %s.", activity.get("type"))
            return response.json({}, status=200)
        sender = sender_id(activity)
        if sender is None:
            logger.warning("Teams message %r refused: no usable sender id.", activity.get("id"))
            return response.json({"error": "invalid activity"}, status=400)
        try:
            await self.handle_message(activity, sender, on_new_message)
        except Exception:  # noqa: BLE001 - a failing turn must not make Teams resend the activity
            logger.exception("Error handling Teams message %s.", activity.get("id"))
        return response.json({}, status=200)

    async def handle_message(
        self, activity: Mapping[str, Any], sender_id: str, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        """One customer message to Rasa, keyed by ``sender_id``; replies follow the activity's reference."""
        reference = ConversationReference.from_activity(activity)
        output = TeamsOutput(self.connector, reference)
        text, refusal = screen_message(incoming_text(activity))
        if refusal:
            await output.send_text_message(sender_id, refusal)
            return
        text = text.strip()
        files = await self.receive_files(activity, sender_id)
        for refusal in files.refusals:
            await output.send_text_message(sender_id, refusal)
        if not text and files.stored:
            text = ATTACH_TEXT
        if not text:
            return  # nothing Rasa could read (an empty message, or only refused files)
        metadata = incoming_metadata(activity)
        if files.stored:
            metadata["attachments"] = files.metadata()
        message = UserMessage(
            text=text,
            output_channel=output,
            sender_id=sender_id,
            input_channel=self.name(),
            message_id=activity.get("id"),
            metadata=metadata,
        )
        await on_new_message(message)

    async def receive_files(self, activity: Mapping[str, Any], sender_id: str) -> ReceivedFiles:
        """The activity's files, stored as ``sender_id``'s: only that conversation may put them in a ticket."""
        received = ReceivedFiles()
        incoming = incoming_files(activity)
        if not incoming:
            return received
        store = self.attachment_store
        if len(incoming) > store.policy.max_files:
            logger.info("Teams message with %d files; keeping the first %d.", len(incoming), store.policy.max_files)
        for file in incoming[: store.policy.max_files]:
            try:
                received.stored.append(await self.receive_file(file, store, sender_id))
            except AttachmentRefused as refused:
                logger.info("Teams file %r refused: %s", file.name, refused.code)
                received.refusals.append(refused.message)
        return received

    async def receive_file(self, file: IncomingFile, store: AttachmentStore, owner: str) -> StoredAttachment:
        """Fetches and stores one file; pasted images with the bot's token, from its hosts only."""
        name, declared = file.name, file.declared_type
        if declared != "image/*":
            store.policy.content_type_for(name, declared)  # refuse a forbidden type before downloading it
        hosts = self.config.image_hosts if file.with_token else self.config.download_hosts
        try:
            data, served_type = await self.connector.download(file.url, hosts, store.policy.max_bytes, file.with_token)
        except UntrustedUrl as exc:
            logger.warning("Teams file %r not downloaded: untrusted source (%s).", name, exc)
            raise AttachmentRefused(
                "untrusted_source", f"No pude descargar el archivo «{name}»: no viene de Microsoft Teams."
            ) from None
        except FileTooLarge:
            raise AttachmentRefused(
                "too_large", f"El archivo «{name}» supera el máximo de {human_size(store.policy.max_bytes)}."
            ) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, TokenError) as exc:
            status = getattr(exc, "status", "")  # not the exception text: it holds the pre-authenticated URL
            logger.error("Could not download Teams file %r from %s: %s %s", name, _host_of(file.url), type(exc).__name__, status)
            raise AttachmentRefused(
                "download_failed", f"No pude descargar el archivo «{name}». Intenta enviarlo de nuevo."
            ) from exc
        if file.with_token:  # pasted image: its real type decides its name
            declared = image_type(data, served_type or declared or "") or declared
            extensions = store.policy.allowed_types.get(declared or "")
            if extensions and "." not in name:
                name += extensions[0]
        return await asyncio.to_thread(store.save, name, declared, data, owner)
