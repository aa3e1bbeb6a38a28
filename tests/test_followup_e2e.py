"""The help desk's reply to a WhatsApp customer, through the real Rasa server (and the local fake of Twilio).

The customer writes through the real WhatsApp channel, which notes when (the
address book); an agent's comment is recorded in the thread; the follow-up
worker's customer delivery, built from the same settings as the servers,
sends it inside the 24-hour window as text and appends it to the real Rasa
conversation through its HTTP API, which opens the reply loop.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import pytest

from bot.catalog import Catalog
from bot.channels.addresses import AddressBook
from bot.dialogue.notices import REPLY_FORM, render
from bot.followup.senders import customer_delivery
from bot.thread import TicketRef, TicketThread, Update
from bot.thread.model import COMMENT, DELIVERED
from tests.conftest import RunningAssistant
from tests.test_channels_e2e import post_whatsapp

pytestmark = pytest.mark.servers


def tracker(assistant: RunningAssistant, conversation_id: str) -> dict:
    token = assistant.settings.secrets.rasa_api_token
    url = f"{assistant.base_url}/conversations/{conversation_id}/tracker?include_events=ALL&token={token}"
    with urllib.request.urlopen(url, timeout=30) as reply:
        return json.loads(reply.read())


def test_an_agents_comment_reaches_a_whatsapp_customer_and_their_conversation(
    assistant: RunningAssistant, catalog: Catalog
) -> None:
    settings = assistant.settings
    customer = f"whatsapp:+57301{uuid.uuid4().int % 10_000_000:07d}"
    assert post_whatsapp(assistant, customer, "hola") == 200
    book = AddressBook(settings.tickets_db_url)
    deadline = time.monotonic() + 30
    while book.get(customer) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert book.get(customer) is not None, "the WhatsApp channel did not note the customer"

    thread = TicketThread(settings.tickets_db_url)
    key = f"ECO-9{uuid.uuid4().int % 100_000:05d}"
    ticket = TicketRef(key, customer, "whatsapp", "gestion_archivos", "Falla en cargue archivos de cartera")
    [sent] = thread.record(Update(key, "local:e2e-1", COMMENT, "¿Nos envías el archivo que falla?", "Laura"), ticket)

    mark = len(assistant.twilio.messages)
    delivery = customer_delivery(settings, catalog.waiting_statuses)
    try:
        deadline = time.monotonic() + 30
        while thread.messages(key)[0].delivery_status != DELIVERED and time.monotonic() < deadline:
            delivery.run_once("e2e-worker")
    finally:
        delivery.close()

    [stored] = thread.messages(key)
    assert (stored.delivery_status, stored.via) == (DELIVERED, "text")
    notice = render(sent, catalog.waiting_statuses)
    assert [m.get("Body") for m in assistant.twilio.messages[mark:] if m.get("To") == customer] == [notice.text]

    state = tracker(assistant, customer)
    followups = [e for e in state["events"] if e["event"] == "bot" and (e.get("metadata") or {}).get("followup")]
    assert [e["text"] for e in followups] == [notice.text]
    assert followups[0]["metadata"]["followup"] == {"ticket": key, "kind": COMMENT, "message_id": sent.id}
    assert state["active_loop"].get("name") == REPLY_FORM
