"""Who is really on the other end of a request, as far as the proxies in front say.

Login throttling keys on the client's address. Behind the HTTPS proxy the
socket peer is the proxy for every lead, so throttling by it would let one
lead's typos (or one attacker) slow everybody down. Proxies append the address
they saw to ``X-Forwarded-For``; only the entries our own proxies wrote can be
believed, the rest is whatever the client typed. Sanic's own parsers are reused
with the configuration given here (``settings.web.proxies``), because changing
the server's ``app.config`` would also change what every other route believes.

- ``PROXIES_COUNT`` (default 0): how many proxies in front append to
  ``X-Forwarded-For``. 0 trusts only the socket peer; N takes the entry N
  positions from the right (what the outermost of our proxies saw).
- ``FORWARDED_SECRET``: a secret our proxy writes as ``by=`` or ``secret=``
  in an RFC 7239 ``Forwarded`` header; only elements carrying it are believed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Optional

from sanic.headers import parse_forwarded, parse_xforwarded
from sanic.request import Request

from bot.settings.web import ProxySettings

UNKNOWN_ADDRESS = "desconocida"


@dataclass(frozen=True)
class _SanicProxyConfig:
    """The attributes Sanic's header parsers read from ``app.config``."""

    PROXIES_COUNT: int
    FORWARDED_SECRET: Optional[str]
    REAL_IP_HEADER: Optional[str] = None  # a single header anyone can set: never trusted
    FORWARDED_FOR_HEADER: str = "X-Forwarded-For"


@dataclass(frozen=True)
class TrustedProxies:
    settings: ProxySettings = field(default_factory=ProxySettings)

    def _forwarded(self, request: Request) -> dict[str, Any]:
        config = _SanicProxyConfig(self.settings.count, self.settings.forwarded_secret)
        return dict(parse_forwarded(request.headers, config) or parse_xforwarded(request.headers, config) or {})

    def client_address(self, request: Request) -> str:
        """The address our outermost proxy saw, else the socket peer."""
        return str(self._forwarded(request).get("for") or request.ip or UNKNOWN_ADDRESS)

    def client_network(self, request: Request) -> str:
        """What one client controls: its IPv4 address, or its whole IPv6 /64.

        An IPv6 customer is handed a /64 and can pick a new address in it for
        every request, so counting single addresses would let it go round any
        throttle. Anything that is not an IP address (a UNIX socket, an
        obfuscated ``Forwarded`` name) is kept as it came.
        """
        return network_of(self.client_address(request))

    def scheme(self, request: Request) -> str:
        """``https`` when our proxy says the browser used it, so cookies can be ``Secure``."""
        return str(self._forwarded(request).get("proto") or request.scheme)


def network_of(address: str) -> str:
    """``address`` as a throttling key: IPv4 as is (also when IPv4-mapped), IPv6 as its /64."""
    try:
        parsed = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return str(parsed)
