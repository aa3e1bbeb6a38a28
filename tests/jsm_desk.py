"""The tickets room's follow-up services over one tickets database and the fake JSM, for the follow-up tests.

The test modules that use the ``desk`` fixture name it in their namespace,
with tests/fake_jsm.py's fixtures it stands on (``jsm_env``, ``jsm_server``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bot.settings import Settings
from bot.thread import TicketThread
from bot.thread.model import TO_CUSTOMER
from bot.tickets import TicketStore
from bot.tickets.jsm_client import JsmClient
from bot.tickets.jsm_news import JsmPeople
from bot.tickets.jsm_poll import JsmPoller
from bot.tickets.model import Ticket
from bot.tickets.outbox_queue import OutboxQueue
from bot.tickets.updates import UpdateRecorder
from tests.fake_jsm import FakeJsmServer
from tests.test_tickets import new_ticket


@dataclass
class Desk:
    """The tickets room's follow-up services over one tickets database and the fake JSM."""

    settings: Settings
    store: TicketStore
    thread: TicketThread
    recorder: UpdateRecorder
    fake: Any
    server: FakeJsmServer

    def client(self, timeout: float = 3.0) -> JsmClient:
        return JsmClient(self.settings.tickets.jsm, timeout=timeout)

    def poller(self, **options: Any) -> JsmPoller:
        client = self.client()
        return JsmPoller(self.store, self.recorder, client, JsmPeople(client), **options)

    def delivered(
        self, conversation_id: str = "whatsapp:+573001112233", channel: str = "whatsapp"
    ) -> tuple[Ticket, str]:
        """A ticket whose JSM request exists, raised for its customer (the reporter), as the worker leaves it."""
        ticket, _ = self.store.create(
            new_ticket(conversation_id=conversation_id, channel=channel, attachments=()), f"k-{len(self.store.list())}"
        )
        reporter = self.fake.add_user(f"cliente{len(self.fake.users)}@empresa.co", "Ana Cliente")
        key = f"{self.fake.project_key}-{len(self.fake.requests) + 1}"
        created = datetime.now(timezone.utc) - timedelta(minutes=5)
        self.fake.requests[key] = {
            "issueId": str(10000 + len(self.fake.requests) + 1),
            "requestTypeId": "30",
            "fields": {"summary": f"[{ticket.key}] {ticket.request_type}"},
            "reporter": reporter,
            "created": created,
            "status": "Esperando por soporte",
            "status_at": created,
            "category": "new",
            "history": [("Esperando por soporte", created, "new")],
            "ownership": None,
        }
        queue = OutboxQueue(self.store.url)
        (claim,) = queue.claim_due("trabajador")
        queue.record_progress(claim, jsm_key=key, jsm_status="Esperando por soporte")
        queue.mark_delivered(claim)
        found = self.store.get(ticket.key)
        assert found is not None
        return found, key


@pytest.fixture
def desk(jsm_env: dict[str, str], jsm_server: FakeJsmServer) -> Desk:
    settings = Settings.from_env()
    store = TicketStore(settings.tickets_db_url, outbox=True)
    thread = TicketThread(settings.tickets_db_url)
    return Desk(settings, store, thread, UpdateRecorder(store, thread), jsm_server.fake, jsm_server)


def kinds(thread: TicketThread, key: str, direction: str = TO_CUSTOMER) -> list[tuple[str, str]]:
    return [(m.kind, m.body) for m in thread.messages(key) if m.direction == direction]
