"""The follow-up worker: after the ticket, it carries the thread both ways until stopped.

Each round it delivers the help desk's messages to customers on WhatsApp
and Teams (the web chat's go out from the Rasa process that holds their
sockets), delivers the customers' replies and internal notes to JSM, and,
where JSM cannot call our webhook, polls it for news. ``python -m bot run``
starts it as its own process with the embedded default too: the CLI's
replies reach customers through it. Several may run at once: the thread
never hands one message to two of them. It writes a heartbeat file when
its loop starts, which is how the launcher knows it is ready.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol

from bot.heartbeat import write_heartbeat
from bot.thread import ThreadError
from bot.tickets.errors import TicketStoreError

logger = logging.getLogger(__name__)

HEARTBEAT_FILE = "followup-worker.json"


class Round(Protocol):
    """One kind of work the worker does each round; returns how many items it handled."""

    def run_once(self, worker_id: str) -> int: ...


class Poll(Protocol):
    def poll_once(self) -> int: ...


@dataclass
class FollowupWorker:
    """Delivers both ways and polls JSM at its own pace, until stopped."""

    rounds: tuple[Round, ...]
    poller: Optional[Poll] = None
    poll_seconds: float = 0.0
    idle_seconds: float = 0.5
    heartbeat: Optional[Path] = None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._next_poll = 0.0

    def beat(self) -> None:
        if self.heartbeat is not None:
            write_heartbeat(self.heartbeat, self.id)

    def run_once(self) -> int:
        """One round of every kind of work; a failing kind never stops the others."""
        handled = 0
        for work in self.rounds:
            try:
                handled += work.run_once(self.id)
            except (ThreadError, TicketStoreError) as exc:
                logger.error("follow-up round %s: database unavailable: %s", type(work).__name__, exc)
        if self.poller is not None and self.poll_seconds > 0 and self.clock() >= self._next_poll:
            self._next_poll = self.clock() + self.poll_seconds
            try:
                handled += self.poller.poll_once()
            except (ThreadError, TicketStoreError) as exc:
                logger.error("JSM polling: database unavailable: %s", exc)
        return handled

    def drain(self) -> None:
        """Deliver what is due now, then return (``followup run --once``)."""
        while self.run_once():
            pass

    def run(self, stop: threading.Event) -> None:
        logger.info("follow-up worker %s started", self.id)
        self.beat()
        while not stop.is_set():
            handled = self.run_once()
            self.beat()
            if not handled:
                stop.wait(self.idle_seconds)
        logger.info("follow-up worker %s stopped", self.id)
