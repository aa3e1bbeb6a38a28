"""The web chat as a window onto the ticket, in a real Chromium against the real servers.

A customer creates a ticket in the chat page; an agent's reply recorded in
the ticket's thread appears in the open chat at once, once, with the help
desk's header, and is noted in the conversation (Rasa's tracker). With the
page closed, the help desk goes on writing; the floating widget reopened
with the same stored session shows what came meanwhile, once each and in
order, with an unread badge on its launcher until the chat is opened.
The screenshot of the agent's reply is kept for the README.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Any

import pytest

from bot.settings import PROJECT_ROOT
from bot.thread import TicketRef, TicketThread, Update
from bot.thread.model import COMMENT, DELIVERED, PENDING, STATUS
from tests.conftest import RunningAssistant
from tests.test_browser import TIMEOUT_MS, browser, type_and_send, wait_bot

pytestmark = pytest.mark.servers
__all__ = ["browser"]  # the fixture, shared with tests/test_browser.py

SCREENSHOT = PROJECT_ROOT / "results" / "screenshots" / "web-respuesta-agente.png"  # docs/screenshots/ keeps a copy
API_TOKEN = "token-de-pruebas"  # RASA_API_TOKEN in tests/conftest.py


def desk_ids(page: Any) -> list[int]:
    """The help desk's messages in the chat, in the order shown (hidden panel included)."""
    return [int(x) for x in page.locator(".message.desk").evaluate_all("(n) => n.map((e) => e.dataset.followup)")]


def tracker_events(assistant: RunningAssistant, conversation_id: str) -> list[dict[str, Any]]:
    url = f"{assistant.base_url}/conversations/{conversation_id}/tracker?token={API_TOKEN}"
    with urllib.request.urlopen(url, timeout=20) as reply:
        return list(json.loads(reply.read())["events"])


def wait_until(check: Any, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"no ocurrió: {what}")


def agent_says(thread: TicketThread, ticket: TicketRef, text: str, author: str = "Laura Gómez") -> int:
    [message] = thread.record(Update(ticket.key, f"local:{uuid.uuid4()}", COMMENT, text, author=author), ticket)
    return message.id


def test_agent_replies_reach_the_web_chat_live_and_after_a_reconnect(assistant: RunningAssistant, browser) -> None:
    thread = TicketThread(assistant.settings.tickets_db_url)
    context = browser.new_context(locale="es-CO", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"http://127.0.0.1:{assistant.settings.web_port}/")

    # The customer creates a ticket in the chat.
    wait_bot(page, "Soy el asistente de Soporte ecollect")
    type_and_send(page, "el pse no me deja pagar, sale un error al volver al comercio desde ayer")
    wait_bot(page, "correo electrónico")
    type_and_send(page, "tesoreria@colegio.edu.co")
    wait_bot(page, "número de teléfono")
    type_and_send(page, "+57 315 777 8899")
    wait_bot(page, "Revisa tu solicitud")
    page.locator(".option", has_text="Enviar").click()
    wait_bot(page, "Creé tu solicitud ECO-")
    key = page.locator(".message.bot").last.inner_text().split("Creé tu solicitud ")[1].split(" ")[0]
    stored = assistant.store.get(key)
    assert stored is not None and stored.channel == "socketio"
    ticket = TicketRef(key, stored.conversation_id, stored.channel, stored.request_type_id, stored.request_type)

    # An agent answers: it appears in the open chat at once, once, as the help desk's message.
    first = agent_says(thread, ticket, "Hola, ¿nos envías una captura del error que ves al volver al comercio?")
    reply = page.locator(f'.message.desk[data-followup="{first}"]')
    reply.wait_for(timeout=TIMEOUT_MS)
    assert reply.locator(".desk-header").inner_text() == f"Equipo de soporte · {key}:"
    assert "Laura Gómez escribió" in reply.inner_text() and "captura del error" in reply.inner_text()
    wait_until(lambda: thread.messages(key)[-1].delivery_status == DELIVERED, "entregado")
    assert thread.messages(key)[-1].via == "socket"
    page.wait_for_timeout(1500)  # more ticks of the relay: nothing twice
    assert desk_ids(page) == [first]
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000

    # The conversation remembers it: the next message is read as the answer to the agent.
    events = tracker_events(assistant, ticket.conversation_id)
    noted = [e for e in events if e.get("event") == "bot" and (e.get("metadata") or {}).get("followup")]
    assert [e["metadata"]["followup"]["message_id"] for e in noted] == [first]
    assert any(e.get("event") == "active_loop" and e.get("name") == "reply_form" for e in events)

    # The customer closes the page; the help desk goes on.
    page.close()
    status = thread.record(Update(key, "local:estado-1", STATUS, "En curso", status_category="indeterminate"), ticket)
    second = agent_says(thread, ticket, "Ya encontramos la causa: el comercio devolvía una URL vencida.")
    time.sleep(2.5)  # several ticks: nobody is connected, so it waits
    waiting = [m for m in thread.messages(key) if m.id in (status[0].id, second)]
    assert [m.delivery_status for m in waiting] == [PENDING, PENDING]

    # Back later on a page with the floating widget: same stored session, chat closed.
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"http://127.0.0.1:{assistant.settings.web_port}/integracion")
    launcher = page.get_by_role("button", name="Abrir el chat de Soporte ecollect")
    launcher.wait_for(timeout=TIMEOUT_MS)
    badge = launcher.locator(".badge")
    badge.wait_for(timeout=TIMEOUT_MS)
    wait_until(lambda: badge.inner_text() == "2", "dos mensajes sin leer")
    assert desk_ids(page) == [first, status[0].id, second]  # what was shown before is not shown twice
    assert "2 mensajes nuevos" in (launcher.get_attribute("aria-label") or "")
    assert page.get_by_role("status").filter(has_text="2 mensajes nuevos").count() == 1

    # A reply while the chat is closed: counted live.
    third = agent_says(thread, ticket, "¿Puedes intentar de nuevo el pago y contarnos?")
    wait_until(lambda: badge.inner_text() == "3", "tres mensajes sin leer")
    (PROJECT_ROOT / "results" / "screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(PROJECT_ROOT / "results" / "screenshots" / "chat-sin-leer.png"))
    launcher.click()
    assert badge.is_hidden()
    assert page.locator("button.launcher").get_attribute("aria-label") == (
        "¿Necesitas ayuda? Abrir el chat de Soporte ecollect"  # read: no count left
    )
    shown = page.locator(".message.desk")
    assert shown.count() == 4 and desk_ids(page) == [first, status[0].id, second, third]
    assert "Tu solicitud cambió de estado: En curso" in shown.nth(1).inner_text()
    page.screenshot(path=str(PROJECT_ROOT / "results" / "screenshots" / "chat-respuestas-al-volver.png"))

    # Reconnecting again sends nothing twice.
    page.reload()
    page.get_by_role("button", name="Abrir el chat de Soporte ecollect").click()
    page.wait_for_timeout(2500)
    assert desk_ids(page) == [first, status[0].id, second, third]
    assert {m.delivery_status for m in thread.messages(key)} == {DELIVERED}

    # Sent again (an operator requeued it, as after a lost acknowledgement): acknowledged, not shown twice.
    assert thread.requeue([first]) == 1
    wait_until(lambda: next(m for m in thread.messages(key) if m.id == first).delivery_status == DELIVERED, "reenviado")
    assert next(m for m in thread.messages(key) if m.id == first).attempts == 2
    assert desk_ids(page) == [first, status[0].id, second, third]
    events = tracker_events(assistant, ticket.conversation_id)
    noted = [e["metadata"]["followup"]["message_id"] for e in events if (e.get("metadata") or {}).get("followup")]
    assert noted == [first, status[0].id, second, third]  # each noted once in the conversation
    assert errors == []
    context.close()
