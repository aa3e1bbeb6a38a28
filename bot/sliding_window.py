"""How many times one key may do something in any window of seconds: the one counter behind every rate limit.

Uploads and new chat sessions per client address (web server), chat
messages per conversation (socket.io channel), status mails per asking
conversation (mail threads) all count the same way. The counts live in the
process's memory: a restart forgets them, and several processes each keep
their own. No lock inside: callers run it on one event loop or hold theirs.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable


class SlidingWindow:
    """At most ``count`` events per key in any ``seconds``; a ``count`` of 0 turns the limit off."""

    def __init__(self, count: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.count = count
        self.seconds = seconds
        self.clock = clock
        self._recent: dict[str, deque[float]] = {}
        self._tidy_at = 1024

    def wait(self, key: str) -> float:
        """0 when one more event may happen now (it is counted), else the seconds until it may."""
        if self.count <= 0:
            return 0.0
        now = self.clock()
        times = self._recent.get(key)
        if times is None:
            if len(self._recent) >= self._tidy_at:
                self._forget_idle(now)
            times = self._recent[key] = deque()
        while times and times[0] <= now - self.seconds:
            times.popleft()
        if len(times) >= self.count:
            return max(times[0] + self.seconds - now, 0.001)
        times.append(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        """Drop keys idle for a window; amortised, so many keys never make each call slow."""
        for key in [k for k, t in self._recent.items() if not t or t[-1] <= now - self.seconds]:
            del self._recent[key]
        self._tidy_at = max(1024, 2 * len(self._recent))
