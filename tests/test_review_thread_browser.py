"""A support lead reads a ticket's thread and the CSAT page in a real headless Chromium.

The web server runs as ``python -m bot web`` (the review app's own process)
over a tickets database seeded through the thread's and the CSAT book's own
calls; Rasa is not needed to read what is already recorded. Screenshots go
to results/screenshots/ (the README shows copies kept in docs/screenshots/).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import update

from bot.review.accounts import Accounts
from bot.review.db import engine_for
from bot.review.links import thread_path
from bot.settings import PROJECT_ROOT, Settings
from bot.thread import CsatBook, TicketRef, TicketThread, Update
from bot.thread.model import COMMENT, CSAT, DONE, STATUS, TO_CUSTOMER, TO_DESK
from bot.thread.table import CsatRow, ThreadTables
from bot.tickets import NewTicket, TicketStore
from bot.tickets.model import Attachment
from tests.conftest import free_port
from tests.test_browser import TIMEOUT_MS, browser  # noqa: F401  (shared fixture)
from tests.test_review_analysis import Conversation, tracker_db

pytestmark = pytest.mark.servers
SCREENSHOTS = PROJECT_ROOT / "results" / "screenshots"  # git-ignored; the README's copies are in docs/screenshots/
PASSWORD = "clave-de-lider-456"
SENDER = "whatsapp:+573001112233"
WORKER = "captura"


def _ticket(store: TicketStore, conversation: str, channel: str, type_id: str, type_name: str, n: int) -> TicketRef:
    ticket, _ = store.create(
        NewTicket(
            category_id="gestion",
            category="Gestión de archivos",
            request_type_id=type_id,
            request_type=type_name,
            email=f"cliente{n}@empresa.com",
            conversation_id=conversation,
            channel=channel,
            description="No carga el archivo de cartera de noviembre",
        ),
        f"captura-{n}",
    )
    return TicketRef(
        key=ticket.key, conversation_id=conversation, channel=channel, request_type_id=type_id, request_type=type_name
    )


def _deliver(thread: TicketThread, direction: str, via: str) -> None:
    (message,) = thread.claim_due(direction, WORKER, limit=1)
    assert thread.mark_delivered(message, WORKER, via)


def seed(settings: Settings) -> str:
    """One ticket with a whole thread, and CSAT answers over three weeks; returns the ticket's key."""
    url = settings.tickets_db_url
    start = datetime.now(timezone.utc) - timedelta(hours=3)
    conversation = (
        Conversation(start=start, channel="whatsapp")
        .user("no me carga el archivo de cartera", "gestion_archivos", 0.93)
        .action("action_start_request")
        .slot("request_type", "gestion_archivos")
        .form(True)
        .slot("email", "tesoreria@empresa.com")
        .form(False)
        .slot("ticket_key", "ECO-000001")
    )
    tracker_db(settings.data_dir / "tracker.db", {SENDER: conversation})
    store, thread, book = TicketStore(url), TicketThread(url), CsatBook(url)
    main = _ticket(store, SENDER, "whatsapp", "gestion_archivos", "Gestión de archivos", 1)
    agent_at = datetime.now(timezone.utc) - timedelta(hours=2)
    thread.record(
        Update(
            ticket=main.key,
            source="jsm-comment:10042",
            kind=COMMENT,
            author="Laura Gómez",
            happened_at=agent_at,
            body="Hola, ¿nos envías el archivo que falla? Así revisamos la columna de fechas.",
        ),
        main,
    )
    _deliver(thread, TO_CUSTOMER, "text")
    thread.record(Update(ticket=main.key, source="jsm-status:1", kind=STATUS, body="Esperando por el cliente"), main)
    _deliver(thread, TO_CUSTOMER, "text")
    thread.from_customer(
        main,
        "Claro, aquí está. Falla desde la fila 120.",
        source="local:r1",
        to_jsm=True,
        attachments=[Attachment(name="cartera_noviembre.csv", content_type="text/csv", size=48_210)],
    )
    _deliver(thread, TO_DESK, "jsm")
    thread.record(
        Update(
            ticket=main.key,
            source="jsm-comment:10057",
            kind=COMMENT,
            author="Laura Gómez",
            body="Gracias. Ya corregimos el formato de fecha; puedes volver a cargarlo.",
        ),
        main,
    )
    _deliver(thread, TO_CUSTOMER, "template")
    thread.record(
        Update(ticket=main.key, source="jsm-status:2", kind=STATUS, body="Resuelta", status_category=DONE), main
    )
    _deliver(thread, TO_CUSTOMER, "template")
    _deliver(thread, TO_CUSTOMER, "text")  # the CSAT question
    assert book.rate(main.key, SENDER, 5) and book.comment(main.key, SENDER, "Muy rápido, gracias")
    thread.note_for_desk(
        main, CSAT, "Calificación: 5 de 5. Comentario: Muy rápido, gracias", source="local:csat", to_jsm=True
    )
    others = [
        ("web-1", "socketio", "pago_en_linea", "Pago en línea", 4, "Bien, aunque tardaron un día", 1),
        ("web-2", "socketio", "pago_en_linea", "Pago en línea", 2, "Tuve que escribir dos veces", 8),
        ("29:teams-1", "teams", "capacitaciones", "Capacitaciones", 5, None, 9),
        ("whatsapp:+5215512345678", "whatsapp", "gestion_archivos", "Gestión de archivos", 3, None, 15),
        ("web-3", "socketio", "capacitaciones", "Capacitaciones", 4, "La capacitación fue clara", 16),
    ]
    for n, (conv, channel, type_id, type_name, rating, comment, days_ago) in enumerate(others, start=2):
        ref = _ticket(store, conv, channel, type_id, type_name, n)
        thread.record(Update(ticket=ref.key, source="st", kind=STATUS, body="Resuelta", status_category=DONE), ref)
        assert book.rate(ref.key, conv, rating)
        if comment:
            book.comment(ref.key, conv, comment)
        with ThreadTables(url).begin() as session:
            session.execute(
                update(CsatRow)
                .where(CsatRow.ticket_key == ref.key)
                .values(answered_at=datetime.now(timezone.utc) - timedelta(days=days_ago))
            )
    Accounts(engine_for(url)).add_user("lider.hilo", PASSWORD)
    return main.key


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``python -m bot web`` over a seeded data directory; (base URL, the ticket's key)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TICKETS_DB_URL", "TRACKER_DB_URL", "REVIEW_DB_URL", "REDIS_URL")
    }
    env.update({"BOT_DATA_DIR": str(tmp_path), "WEB_PORT": str(free_port()), "REVIEW_TIMEZONE": "America/Bogota"})
    settings = Settings.from_env(env)
    key = seed(settings)
    base = f"http://127.0.0.1:{settings.web_port}"
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "web"], env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/salud", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("el servidor web no arrancó:\n" + (tmp_path / "web.log").read_text(errors="replace"))
                time.sleep(0.3)
        yield base, key
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_lead_reads_a_ticket_thread_and_the_csat_page(web_server: tuple[str, str], browser) -> None:  # noqa: F811
    base, key = web_server
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale="es-CO", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/revision/tickets/{key}")
    assert "/revision/entrar" in page.url  # nothing without login
    page.get_by_label("Usuario").fill("lider.hilo")
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    page.get_by_role("heading", name=f"Ticket {key}").wait_for(timeout=TIMEOUT_MS)

    page.get_by_role("link", name="Ver el hilo después del ticket").click()
    page.get_by_role("heading", name=f"Hilo del ticket {key} · Gestión de archivos").wait_for(timeout=TIMEOUT_MS)
    items = page.locator("ol.thread > li")
    assert items.count() == 7
    assert "Comentario del agente" in items.nth(0).inner_text() and "Laura Gómez" in items.nth(0).inner_text()
    assert "Cliente → equipo de soporte" in items.nth(2).inner_text()
    assert "cartera_noviembre.csv" in items.nth(2).inner_text()
    assert "entregado por WhatsApp (plantilla aprobada" in items.nth(3).inner_text()
    assert "Nota interna" in items.nth(6).inner_text()
    page.screenshot(path=str(SCREENSHOTS / "revision-hilo.png"), full_page=True)

    page.get_by_role("link", name="Satisfacción").click()
    page.get_by_role("heading", name="Satisfacción (CSAT)").wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#respuestas").inner_text() == "6" and page.locator("#promedio").inner_text() == "3,8"
    page.screenshot(path=str(SCREENSHOTS / "revision-csat.png"), full_page=True)
    page.locator("#tabla-comentarios").get_by_role("link", name=key).click()
    page.get_by_role("heading", name=f"Hilo del ticket {key} · Gestión de archivos").wait_for(timeout=TIMEOUT_MS)
    for name in ("revision-hilo.png", "revision-csat.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000

    # On a phone both pages fit the screen's width (tables scroll inside themselves).
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (thread_path(key), "/revision/satisfaccion"):
        page.goto(f"{base}{path}")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
    context.close()
