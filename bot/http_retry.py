"""Retry rules shared by everything that calls a provider's HTTP API
(Twilio, Bot Framework, JSM). Kept free of Rasa imports so the JSM delivery
worker, a plain process, can use it."""

from __future__ import annotations

import email.utils
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
