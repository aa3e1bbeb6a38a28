"""How many uploads one client may send a minute, and who counts as one client.

Uploads are the one thing an anonymous visitor of the chat can make the
server store; a flood from one address is refused with «espera» before the
file is even read.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

from sanic.request import Request

from bot.review.proxies import TrustedProxies


def client_key(request: Request, proxies: TrustedProxies) -> str:
    """The client's address as our proxies report it (``PROXIES_COUNT``), IPv6 folded to its /64.

    With PROXIES_COUNT=0 (the default) it is the socket peer: a made-up
    X-Forwarded-For changes nothing. One IPv6 customer holds a whole /64, so
    counting single addresses would let them rotate past any limit.
    """
    return proxies.client_network(request)[:100]


class UploadRateLimit:
    """At most ``per_minute`` uploads per client address in any 60 seconds; 0 turns it off.

    The count lives in this process's memory: it is per web server process
    (``python -m bot web`` runs one). Several processes behind a balancer
    admit that many times the rate, and a restart forgets the counts. Only
    the event loop calls it, so it needs no lock.
    """

    WINDOW = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._recent: dict[str, deque[float]] = {}
        self._tidy_at = 1024

    def admit(self, client: str) -> float:
        """0 when the upload may go ahead (it is counted), else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        times = self._recent.get(client)
        if times is None:
            if len(self._recent) >= self._tidy_at:
                self._forget_idle(now)
            times = self._recent[client] = deque()
        while times and times[0] <= now - self.WINDOW:
            times.popleft()
        if len(times) >= self.per_minute:
            return max(times[0] + self.WINDOW - now, 0.001)
        times.append(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        """Drop clients idle for a window; amortised, so many clients never make each upload slow."""
        for client in [c for c, t in self._recent.items() if not t or t[-1] <= now - self.WINDOW]:
            del self._recent[client]
        self._tidy_at = max(1024, 2 * len(self._recent))
