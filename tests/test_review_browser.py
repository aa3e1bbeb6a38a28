"""A support lead uses the review app in a real headless Chromium."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.review.accounts import Accounts
from bot.review.db import engine_for
from bot.review.index import review_zone
from bot.review.links import conversation_path
from tests.conftest import RunningAssistant
from tests.test_browser import SCREENSHOTS, TIMEOUT_MS, browser  # noqa: F401  (shared fixture)

pytestmark = pytest.mark.servers
PASSWORD = "clave-de-lider-123"


def test_lead_finds_an_abandoned_request_reads_it_marks_it_and_follows_the_ticket(
    assistant: RunningAssistant, browser  # noqa: F811
) -> None:
    Accounts(engine_for(assistant.settings.tickets_db_url)).add_user("lider.navegador", PASSWORD)
    abandoned = assistant.chat()
    abandoned.say("la pasarela de pagos no abre, se queda en blanco cuando el cliente quiere pagar con tarjeta")
    abandoned.say("ana.perez@empresa.com")  # then the customer leaves, with the form open
    done = assistant.chat()
    done.say("no me carga el archivo de cartera, soy tesoreria@empresa.com")
    key = done.text(done.say("/affirm")).split("Creé tu solicitud ")[1].split(" ")[0]

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{assistant.settings.web_port}"
    context = browser.new_context(locale="es-CO")
    page = context.new_page()
    page.goto(f"{base}/revision/conversaciones")
    assert "/revision/entrar" in page.url  # nothing without login
    page.get_by_label("Usuario").fill("lider.navegador")
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    page.get_by_role("heading", name="Conversaciones").wait_for(timeout=TIMEOUT_MS)

    today = datetime.now(review_zone(assistant.settings.review)).date().isoformat()
    page.get_by_label("Desde").fill(today)
    page.get_by_label("Hasta").fill(today)
    page.get_by_label("Tipo de solicitud").select_option(label="Pago en línea")
    page.get_by_label("Resultado").select_option(label="Abandonada en el formulario")
    page.get_by_role("button", name="Filtrar").click()
    link = page.locator(f'a[href="{conversation_path(abandoned.sender)}"]')
    link.wait_for(timeout=TIMEOUT_MS)
    assert page.locator(f'a[href="{conversation_path(done.sender)}"]').count() == 0
    page.screenshot(path=str(SCREENSHOTS / "revision-lista.png"), full_page=True)

    link.click()
    page.get_by_text("la pasarela de pagos no abre").wait_for(timeout=TIMEOUT_MS)
    assert page.locator(".intent", has_text="pago_en_linea").count() >= 1
    assert "ana.perez@empresa.com" not in page.content()  # masked until the full record is opened
    first_turn = page.locator("li.turn.cliente").first
    first_turn.get_by_label("Intent correcto").select_option(label="Falla en experiencia de usuario")
    first_turn.get_by_role("button", name="Marcar").click()
    page.get_by_text("Marcado como «falla_experiencia_usuario»").wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=str(SCREENSHOTS / "revision-transcripcion.png"), full_page=True)

    page.goto(f"{base}{conversation_path(done.sender)}")
    page.get_by_role("link", name=key).first.click()
    page.get_by_role("heading", name=f"Ticket {key}").wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_text("Falla en cargue archivos de cartera").count() == 1
    page.get_by_role("link", name="Ver la conversación que lo creó").click()
    page.get_by_text("no me carga el archivo de cartera").wait_for(timeout=TIMEOUT_MS)

    page.get_by_role("link", name="Resumen").click()
    page.get_by_role("heading", name="Resultado por tipo de solicitud").wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=str(SCREENSHOTS / "revision-resumen.png"), full_page=True)
    assert (SCREENSHOTS / "revision-resumen.png").stat().st_size > 10_000

    # On a phone every page fits the screen's width (tables scroll inside themselves).
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/revision/conversaciones", "/revision/resumen", conversation_path(done.sender), f"/revision/tickets/{key}"):
        page.goto(f"{base}{path}")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
    page.screenshot(path=str(SCREENSHOTS / "revision-movil.png"), full_page=True)
    context.close()
