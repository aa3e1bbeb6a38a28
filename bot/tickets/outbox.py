"""Outbox names at their pre-issue-11 import path, for callers not yet moved.

New code imports from the module that does the job: ``outbox_queue``,
``delivery``, ``worker`` (settings: ``bot.settings.tickets.OutboxSettings``).
"""

from bot.settings.tickets import OutboxSettings
from bot.tickets.delivery import TicketDelivery, retry_delay
from bot.tickets.outbox_queue import Claim, OutboxQueue
from bot.tickets.worker import Worker, heartbeat_ok, heartbeat_path

__all__ = [
    "Claim",
    "OutboxQueue",
    "OutboxSettings",
    "TicketDelivery",
    "Worker",
    "heartbeat_ok",
    "heartbeat_path",
    "retry_delay",
]
