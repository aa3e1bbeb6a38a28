"""The delivery worker: claims due tickets from the outbox queue and delivers them, until stopped.

``python -m bot run`` starts it as its own process when JSM is the help desk
(``python -m bot outbox run``, bot/tickets/cli.py). Several may run at once:
the queue never hands one ticket to two of them. It writes a heartbeat file
when its loop starts, which is how the launcher knows it is ready.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Optional

from bot.heartbeat import write_heartbeat
from bot.settings import Settings
from bot.settings.tickets import OutboxSettings
from bot.tickets.delivery import TicketDelivery
from bot.tickets.errors import TicketStoreError
from bot.tickets.outbox_queue import OutboxQueue

logger = logging.getLogger(__name__)


def heartbeat_path(settings: Settings) -> Path:
    return settings.data_dir / "outbox-worker.json"


class Worker:
    """Claims due tickets and delivers them, until stopped."""

    def __init__(
        self, queue: OutboxQueue, delivery: TicketDelivery, settings: OutboxSettings, heartbeat: Optional[Path] = None
    ) -> None:
        self.queue = queue
        self.delivery = delivery
        self.settings = settings
        self.heartbeat = heartbeat
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def beat(self) -> None:
        if self.heartbeat is not None:
            write_heartbeat(self.heartbeat, self.id)

    def run_once(self) -> int:
        """One round: claim a batch of due tickets and deliver them. Returns how many were handled."""
        try:
            claims = self.queue.claim_due(self.id, limit=self.settings.batch, lease_seconds=self.settings.lease_seconds)
            for claim in claims:
                self.delivery.deliver(claim)
            return len(claims)
        except TicketStoreError as exc:
            logger.error("ticket store unavailable: %s", exc)
            return 0

    def drain(self) -> None:
        """Deliver what is due now, then return (``outbox run --once``)."""
        while self.run_once():
            pass

    def run(self, stop: threading.Event) -> None:
        logger.info("outbox worker %s started", self.id)
        self.beat()
        while not stop.is_set():
            handled = self.run_once()
            self.beat()
            if not handled:
                stop.wait(self.settings.poll_seconds)
        logger.info("outbox worker %s stopped", self.id)
