"""How the connectors talk HTTP to their providers (Twilio, the Bot Framework).

One aiohttp session per connector and event loop, one retry loop for
sending, one download that stops at the size limit. Provider rules (which
status is worth a retry, Retry-After, the backoff) come from ``bot.http_retry``, shared
with the JSM client.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, Optional, Union

import aiohttp
from yarl import URL

from bot.http_retry import RetryPolicy, parse_retry_after, retryable_status

API_TIMEOUT = aiohttp.ClientTimeout(total=30)
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120)
CHUNK_BYTES = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

Sleep = Callable[[float], Awaitable[None]]
Headers = Callable[[], Awaitable[Mapping[str, str]]]


class LoopSession:
    """An aiohttp session and named locks for the running event loop.

    Sessions and locks belong to the loop that created them; Sanic may run
    a channel in a new loop (worker restarts, test servers), so they are
    recreated when the loop changes instead of being built at construction.
    Sharing one session keeps connections to the provider open between
    messages instead of a TLS handshake per message.
    """

    def __init__(self, timeout: aiohttp.ClientTimeout = API_TIMEOUT, trust_env: bool = False) -> None:
        self.timeout = timeout
        self.trust_env = trust_env
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
            self._session = aiohttp.ClientSession(trust_env=self.trust_env, timeout=self.timeout)
        return self._session

    def lock(self, name: str) -> asyncio.Lock:
        self._ensure_loop()
        return self._locks.setdefault(name, asyncio.Lock())

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


# ------------------------------------------------------------------ sending
@dataclass(frozen=True)
class Delivery:
    """The last answer of a send: what the connector logs in its provider's terms."""

    status: int  # HTTP status; 0 when no answer came (network error, timeout)
    detail: str  # the answer's body (cut), or the network error
    attempts: int
    retry_after: Optional[float] = None
    body: str = ""  # an accepted answer's body (e.g. the id the provider gave the message)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def temporary(self) -> bool:
        """A failure worth retrying: no answer, throttling or a server error."""
        return self.status == 0 or retryable_status(self.status)


# Called before each retry with the failed delivery and the wait, for the connector's log.
OnRetry = Callable[[Delivery, float], None]
# Called with a failed delivery: True to repeat it at once (e.g. with a renewed token after a 401).
Renew = Callable[[Delivery], bool]


async def post_with_retries(
    http: LoopSession,
    url: Union[str, URL],
    policy: RetryPolicy,
    *,
    data: Any = None,
    json: Any = None,
    auth: Optional[aiohttp.BasicAuth] = None,
    headers: Optional[Headers] = None,
    renew: Optional[Renew] = None,
    on_retry: Optional[OnRetry] = None,
    sleep: Sleep = asyncio.sleep,
    detail_chars: int = 500,
) -> Delivery:
    """POST until the provider accepts, refuses for good or ``policy`` runs out; returns the last answer.

    ``headers`` is awaited before each attempt, so a renewed token is used;
    whatever it raises (no token at all) propagates: retrying cannot help.
    """
    delivery = Delivery(0, "", 0)
    for attempt in range(1, policy.attempts + 1):
        extra = dict(await headers()) if headers is not None else {}
        try:
            async with http.session().post(url, data=data, json=json, auth=auth, headers=extra) as reply:
                if reply.status < 300:
                    body = (await reply.read()).decode("utf-8", errors="replace")
                    return Delivery(reply.status, "", attempt, body=body)
                retry_after = parse_retry_after(reply.headers.get("Retry-After"))
                delivery = Delivery(reply.status, (await reply.text())[:detail_chars], attempt, retry_after)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            delivery = Delivery(0, repr(exc), attempt)
        if renew is not None and renew(delivery):
            continue
        if not delivery.temporary or attempt == policy.attempts:
            return delivery
        wait = policy.delay(attempt, delivery.retry_after)
        if on_retry is not None:
            on_retry(delivery, wait)
        await sleep(wait)
    return delivery


# ---------------------------------------------------------------- downloads
class FileTooLarge(Exception):
    """A download stopped at the size limit; ``size`` when the server announced it."""

    def __init__(self, size: Optional[int] = None) -> None:
        super().__init__(size)
        self.size = size


class UntrustedUrl(Exception):
    """A URL (or a redirect) the connector must not fetch."""


@dataclass(frozen=True)
class Download:
    data: bytes
    content_type: str  # as the server declared it; "" when it did not


# Checks a redirect's Location against where the connector may go: the next URL, or UntrustedUrl.
NextHop = Callable[[URL, Optional[str]], URL]


async def capped_download(
    session: aiohttp.ClientSession,
    url: Union[str, URL],
    max_bytes: int,
    *,
    auth: Optional[aiohttp.BasicAuth] = None,
    headers: Optional[Mapping[str, str]] = None,
    next_hop: Optional[NextHop] = None,
    max_redirects: int = 3,
) -> Download:
    """The file at ``url``, never reading more than ``max_bytes`` of it (``FileTooLarge``).

    Without ``next_hop`` aiohttp follows redirects itself (it drops ``auth``
    when the host changes); with it, each hop is followed here and checked
    first, so a redirect cannot take the request, or a token in ``headers``,
    anywhere else.
    """
    target = URL(url) if isinstance(url, str) else url
    hops = max_redirects if next_hop is not None else 0
    for _ in range(hops + 1):
        async with session.get(
            target, auth=auth, headers=headers, timeout=DOWNLOAD_TIMEOUT, allow_redirects=next_hop is None
        ) as reply:
            if next_hop is not None and reply.status in REDIRECT_STATUSES:
                target = next_hop(target, reply.headers.get("Location"))
                continue
            reply.raise_for_status()
            if reply.content_length is not None and reply.content_length > max_bytes:
                raise FileTooLarge(reply.content_length)
            data = bytearray()
            async for chunk in reply.content.iter_chunked(CHUNK_BYTES):
                data.extend(chunk)
                if len(data) > max_bytes:
                    raise FileTooLarge()
            return Download(bytes(data), reply.headers.get("Content-Type", ""))
    raise UntrustedUrl(f"more than {max_redirects} redirects")
