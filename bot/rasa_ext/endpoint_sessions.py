"""One kept HTTP connection pool per endpoint instead of a new one per call.

Replaces ``rasa.utils.endpoints.EndpointConfig.session``.

Why: Rasa opens (and closes) a new aiohttp session, hence a new TCP
connection, for every call to the action server: 12% of the Rasa process's
CPU in the ``make bench-load`` profile. Here each endpoint keeps one session
per event loop, and ``async with endpoint.session()`` (how
``EndpointConfig.request``, its only caller with the model server's, uses it)
no longer closes it. Idle connections are dropped by the client after 30 s,
before the action server's keep-alive limit (60 s, ``bot.action_server``), so
a reused connection is never one the server already closed.
Performance: installed only with ``RASA_EXTENSIONS`` on (the default).
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from typing import Any, Callable

import aiohttp
from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

from bot.rasa_ext.patching import applied, expect_release, expect_signature, replace

PATCH = "endpoint_sessions"
IDLE_SECONDS = 30

SESSION = "rasa.utils.endpoints.EndpointConfig.session"
SESSION_SIGNATURE = "(self) -> aiohttp.client.ClientSession"
# The caller whose `async with self.session() as session:` the kept session relies on.
REQUEST = "rasa.utils.endpoints.EndpointConfig.request"
REQUEST_SIGNATURE = (
    "(self, method: str = 'post', subpath: Optional[str] = None, content_type: Optional[str] = 'application/json', "
    "compress: bool = False, **kwargs: Any) -> Optional[Any]"
)


class KeptSession:
    """What ``session()`` returns: ``async with`` hands out the kept session and leaves it open."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self.session

    async def __aexit__(self, *exc: object) -> None:
        return None


def check(session: Any, request: Any) -> None:
    """Raises PatchMismatch unless Rasa opens sessions the way this module was written for."""
    expect_release(PATCH, "rasa")
    expect_signature(PATCH, SESSION, session, SESSION_SIGNATURE)
    expect_signature(PATCH, REQUEST, request, REQUEST_SIGNATURE)


def install() -> bool:
    if applied(EndpointConfig, "session") == PATCH:
        return False
    check(EndpointConfig.session, EndpointConfig.request)
    return replace(PATCH, EndpointConfig, "session", _kept)


def _new_session(endpoint: EndpointConfig) -> aiohttp.ClientSession:
    """The session Rasa would open for this endpoint, with a connector that keeps connections."""
    basic_auth = endpoint.basic_auth
    auth = aiohttp.BasicAuth(basic_auth["username"], basic_auth["password"]) if basic_auth else None
    return aiohttp.ClientSession(
        headers=endpoint.headers,
        auth=auth,
        timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
        connector=aiohttp.TCPConnector(keepalive_timeout=IDLE_SECONDS),
    )


def _kept(session: Callable[[EndpointConfig], Any]) -> Callable[[EndpointConfig], Any]:
    # Endpoint -> (event loop -> session). Keyed by id because EndpointConfig
    # defines __eq__ without __hash__; the entry goes when the endpoint does, so
    # an id reused by a later endpoint never finds another endpoint's session.
    kept: dict[int, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}

    @functools.wraps(session)
    def kept_session(self: EndpointConfig) -> Any:
        loop = asyncio.get_event_loop()
        per_loop = kept.get(id(self))
        if per_loop is None:
            per_loop = kept[id(self)] = weakref.WeakKeyDictionary()
            weakref.finalize(self, kept.pop, id(self), None)
        current = per_loop.get(loop)
        if current is None or current.closed:
            current = per_loop[loop] = _new_session(self)
        return KeptSession(current)

    return kept_session
