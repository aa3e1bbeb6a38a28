"""The chat page in a real headless Chromium (Debian's, driven by Playwright).

A customer completes a ticket by typing and clicking, attaches a file,
reloads the page and still sees the conversation; screenshots are kept in
results/screenshots/ for people to look at.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from bot.settings import PROJECT_ROOT
from tests.conftest import RunningAssistant

pytestmark = pytest.mark.servers
playwright_api = pytest.importorskip("playwright.sync_api")

SCREENSHOTS = PROJECT_ROOT / "results" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.fail(f"No hay chromium en {executable}: `make test` lo instala con scripts/ensure-chromium.sh.")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def last_bot_text(page) -> str:
    return page.locator(".message.bot").last.inner_text()


def wait_bot(page, words: str) -> None:
    page.locator(".message.bot", has_text=words).last.wait_for(timeout=TIMEOUT_MS)


def type_and_send(page, text: str) -> None:
    page.get_by_label("Escribe tu mensaje").fill(text)
    page.keyboard.press("Enter")


def test_customer_completes_a_ticket_with_attachment_across_a_reload(
    assistant: RunningAssistant, browser, tmp_path: Path
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale="es-CO")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"http://127.0.0.1:{assistant.settings.web_port}/")

    wait_bot(page, "Soy el asistente de Soporte ecollect")
    assert page.get_by_role("log").count() == 1  # announced to screen readers

    type_and_send(page, "el pse no me deja pagar, sale un error al volver al comercio desde ayer")
    wait_bot(page, "correo electrónico")

    evidence = tmp_path / "captura-error.png"
    evidence.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 256)
    page.locator("input[type=file]").set_input_files(str(evidence))
    wait_bot(page, "Recibí tu adjunto: captura-error.png")
    assert page.locator(".message.user", has_text="captura-error.png").count() == 1

    type_and_send(page, "tesoreria@colegio.edu.co")
    wait_bot(page, "número de teléfono")
    type_and_send(page, "+57 315 777 8899")
    wait_bot(page, "Revisa tu solicitud")
    summary = last_bot_text(page)
    assert "Adjunto: captura-error.png" in summary and "+57 315 7778899" in summary
    page.screenshot(path=str(SCREENSHOTS / "chat-resumen.png"), full_page=True)

    page.reload()
    wait_bot(page, "Revisa tu solicitud")  # the conversation survived the reload
    assert page.locator(".message.user", has_text="tesoreria@colegio.edu.co").count() == 1
    send = page.get_by_role("button", name="Enviar", exact=True).first
    # Keyboard users reach the summary's buttons with Tab and press them with Enter.
    page.locator(".option", has_text="Enviar").focus()
    page.keyboard.press("Enter")
    wait_bot(page, "Creé tu solicitud ECO-")
    page.screenshot(path=str(SCREENSHOTS / "chat-ticket.png"), full_page=True)
    assert (SCREENSHOTS / "chat-ticket.png").stat().st_size > 10_000
    assert send is not None and errors == []

    text = last_bot_text(page)
    key = text.split("Creé tu solicitud ")[1].split(" ")[0]
    ticket = assistant.store.get(key)
    assert ticket is not None and ticket.channel == "socketio"
    assert ticket.request_type == "Pago en línea"
    assert [a.name for a in ticket.attachments] == ["captura-error.png"]
    assert Path(ticket.attachments[0].path).read_bytes() == evidence.read_bytes()
    context.close()


def test_phone_screen_and_floating_embed(assistant: RunningAssistant, browser, tmp_path: Path) -> None:
    """The widget embedded with one script tag in another page, on a phone-sized screen."""
    web = f"http://127.0.0.1:{assistant.settings.web_port}"
    context = browser.new_context(viewport={"width": 390, "height": 800}, locale="es-MX")
    page = context.new_page()
    page.goto(f"{web}/integracion")
    snippet = page.locator("pre code").inner_text()
    assert snippet.startswith("<script src=") and "data-rasa-url=" in snippet
    launcher = page.get_by_role("button", name="Abrir el chat de Soporte ecollect")
    launcher.wait_for(timeout=TIMEOUT_MS)
    assert launcher.get_attribute("aria-expanded") == "false"
    launcher.click()
    wait_bot(page, "Soy el asistente")
    panel = page.locator("#ecollect-panel")
    box = panel.bounding_box()
    assert box is not None and box["width"] <= 390 and box["x"] >= 0  # fits the phone screen
    page.get_by_role("button", name="Ver el menú").click()
    wait_bot(page, "Elige una categoría")
    assert page.locator(".message.bot").last.locator(".option").count() == 5
    page.screenshot(path=str(SCREENSHOTS / "chat-movil.png"))
    page.keyboard.press("Escape")
    assert page.get_by_role("button", name="Abrir el chat de Soporte ecollect").get_attribute("aria-expanded") == "false"
    context.close()


def test_phone_page_keeps_the_message_box_on_screen_and_cards_off_the_device(assistant: RunningAssistant, browser) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 640}, locale="es-DO")
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{assistant.settings.web_port}/")
    wait_bot(page, "Soy el asistente de Soporte ecollect")
    box = page.get_by_label("Escribe tu mensaje").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 640, box  # reachable without scrolling the page

    before = page.locator(".message").count()
    first = page.locator(".message").first.element_handle()
    type_and_send(page, "me rechazaron la tarjeta 4111 1111 1111 1111 en el pse")
    wait_bot(page, "")
    bubble = page.locator(".message.user").last.inner_text()
    assert "[tarjeta oculta]" in bubble and "4111" not in bubble
    stored = page.evaluate("() => Object.values(window.localStorage).join(' ')")
    assert "[tarjeta oculta]" in stored and "4111 1111" not in stored
    # New messages are appended; what was on screen stays the same node (screen
    # readers announce only what is new).
    assert page.locator(".message").count() > before and first.evaluate("node => node.isConnected")
    context.close()
