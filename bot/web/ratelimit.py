"""Who counts as one client for the web server's rate limits (uploads, new chat sessions).

Uploads are the one thing an anonymous visitor of the chat can make the
server store; a flood from one address is refused with «espera» before the
file is even read. The counting is ``bot.sliding_window.SlidingWindow``.
"""

from __future__ import annotations

from sanic.request import Request

from bot.review.proxies import TrustedProxies


def client_key(request: Request, proxies: TrustedProxies) -> str:
    """The client's address as our proxies report it (``PROXIES_COUNT``), IPv6 folded to its /64.

    With PROXIES_COUNT=0 (the default) it is the socket peer: a made-up
    X-Forwarded-For changes nothing. One IPv6 customer holds a whole /64, so
    counting single addresses would let them rotate past any limit.
    """
    return proxies.client_network(request)[:100]
