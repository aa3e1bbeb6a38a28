"""Retry rules shared by everything that calls a provider's HTTP API
(Twilio, Bot Framework, JSM). Kept free of Rasa imports so the JSM delivery
worker, a plain process, can use it."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional


def retryable_status(status: int) -> bool:
    """Provider answers worth retrying: throttling and server errors."""
    return status == 429 or status >= 500


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds to wait from a Retry-After header (seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry what a provider says is temporary (429, 5xx, network)."""

    attempts: int = 4
    backoff_base: float = 1.0  # seconds before the first retry; doubled on each one
    max_wait: float = 30.0  # never wait longer than this for one retry, whatever Retry-After says

    def delay(self, attempt: int, retry_after: Optional[float]) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1): Retry-After, else the backoff."""
        wait = retry_after if retry_after is not None else self.backoff_base * 2 ** (attempt - 1)
        return min(wait, self.max_wait)
