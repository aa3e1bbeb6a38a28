"""What can go wrong in the tickets room, sorted by what the caller does next.

One module, importing nothing of the project, so every caller (the dialogue
answering a customer, the delivery worker, the CLI) can catch these without
pulling in the database or the HTTP client. ``str()`` is Spanish: support
leads read it in ``python -m bot tickets list``.
"""

from __future__ import annotations

from typing import Optional


class TicketStoreError(RuntimeError):
    """The store could not be reached or written; nothing was half-written."""


class JsmError(RuntimeError):
    """JSM did not do what was asked."""

    retryable = False

    def __init__(self, message: str, status: Optional[int] = None, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class JsmUnavailable(JsmError):
    """Timeout, connection refused, 5xx or 429: the same call may work later."""

    retryable = True


class JsmAuthError(JsmError):
    """401/403: the credentials or permissions are wrong; retried so tickets flow once fixed."""

    retryable = True


class JsmConfigError(JsmError):
    """Missing settings or mapping; retried so tickets flow once the deployer fixes it."""

    retryable = True


class JsmRejected(JsmError):
    """A 4xx that sending the same request again cannot fix (e.g. 400 with ``errorMessage``)."""
