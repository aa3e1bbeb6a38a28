"""Messages the assistant starts itself: what a channel's push promises the follow-up worker.

A push delivers one customer notice (bot/dialogue/notices.py) to the
conversation that created the ticket, outside any Rasa turn, and says how it
went («text», «template», «proactive»), or raises ``PushFailed``: temporary
(the worker retries later) or not (the message is marked failed, with the
Spanish reason an operator reads in the thread).
"""

from __future__ import annotations

from typing import Optional, Protocol

from bot.channels.http import Delivery
from bot.dialogue.notices import Notice


class PushFailed(Exception):
    """A notice the channel could not deliver; ``reason`` in Spanish, for the operator."""

    def __init__(self, reason: str, *, temporary: bool, retry_after: Optional[float] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary
        self.retry_after = retry_after


class Sender(Protocol):
    """One channel's push, as the follow-up worker uses it."""

    async def send(self, conversation_id: str, notice: Notice) -> str:
        """Deliver ``notice`` to the customer of ``conversation_id``; how it went, or ``PushFailed``."""

    async def close(self) -> None:
        """Release the HTTP session (the worker is stopping)."""


class Unconfigured:
    """Stands in for a channel whose secrets are missing in the worker: its messages wait, with the reason.

    They are retried (the deployer may add the secrets and restart) until the
    worker's attempts run out; nothing is sent and nothing is silently lost.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def send(self, conversation_id: str, notice: Notice) -> str:
        raise PushFailed(self.reason, temporary=True)

    async def close(self) -> None:
        return None


def failure_of(delivery: Delivery, what: str, detail: str) -> PushFailed:
    """The ``PushFailed`` for a refused or unanswered request: temporary on 429, 5xx and network errors."""
    if delivery.status == 0:
        return PushFailed(f"{what}: no hubo respuesta ({detail})", temporary=True)
    return PushFailed(
        f"{what}: respuesta HTTP {delivery.status} ({detail})",
        temporary=delivery.temporary,
        retry_after=delivery.retry_after,
    )
