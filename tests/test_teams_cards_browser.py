"""The Teams cards rendered by Microsoft's Adaptive Cards renderer in a real headless Chromium.

The renderer is the npm package ``adaptivecards`` (tests/vendor/adaptivecards/),
the one behind the Adaptive Cards designer and Bot Framework Web Chat. A
three-button card and a nine-option list are rendered, clicked as a customer
would, and what the renderer submits is turned into the activity Teams sends
(``messageBack``: its ``value``; a plain submit: the data with the inputs) and
read by the channel: it must be the exact payload. Screenshots go to
results/screenshots/ (teams-botones.png, teams-lista.png).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from bot.catalog import Catalog
from bot.channels.teams.activity import incoming_text
from bot.channels.teams.cards import adaptive_card
from bot.settings import PROJECT_ROOT
from tests.adaptive_cards import RENDERER, TEAMS_MAX_ACTIONS, VENDOR

playwright_api = pytest.importorskip("playwright.sync_api")

SCREENSHOTS = PROJECT_ROOT / "results" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
TIMEOUT_MS = 15_000

# A Teams-like page: the card in a chat bubble, the renderer's submits kept in window.submitted.
PAGE = """<!doctype html>
<html lang="es"><head><meta charset="utf-8">
<style>
  body { font-family: "Segoe UI", system-ui, sans-serif; background: #f5f5f5; margin: 0; padding: 24px; }
  .bubble { max-width: 420px; background: #fff; border-radius: 6px; box-shadow: 0 1px 3px rgba(0,0,0,.2);
            padding: 4px; }
  .from { font-size: 12px; color: #616161; margin: 0 0 6px 4px; }
  .ac-pushButton { background: #fff; border: 1px solid #d1d1d1; border-radius: 4px; padding: 6px 10px;
                   font: 600 14px "Segoe UI", system-ui, sans-serif; cursor: pointer; }
  .ac-pushButton:hover { background: #f0f0f0; }
</style></head>
<body><p class="from">Soporte ecollect</p><div class="bubble" id="card"></div></body></html>
"""

RENDER = (
    """(card) => {
  window.submitted = [];
  AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {  // as Teams: TextBlock text is markdown
    result.outputHtml = window.markdownit().render(text);
    result.didProcess = true;
  };
  const adaptive = new AdaptiveCards.AdaptiveCard();
  adaptive.hostConfig = new AdaptiveCards.HostConfig({
    fontFamily: "Segoe UI, system-ui, sans-serif",
    actions: { maxActions: %d, actionsOrientation: "vertical", buttonSpacing: 8 },
  });
  adaptive.onExecuteAction = (action) => {
    window.submitted.push({ type: action.getJsonTypeName(), data: action.data });
  };
  adaptive.parse(card);
  const target = document.getElementById("card");
  target.innerHTML = "";
  target.appendChild(adaptive.render());
}"""
    % TEAMS_MAX_ACTIONS
)


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.fail(f"No hay chromium en {executable}: `make test` lo instala con scripts/ensure-chromium.sh.")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 520, "height": 720}, locale="es-CO")
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_content(PAGE)
        page.add_script_tag(path=str(VENDOR / "markdown-it.min.js"))
        page.add_script_tag(path=str(RENDERER))
        yield page
        assert errors == []
        browser.close()


def show(page: Any, card: dict[str, Any]) -> None:
    page.evaluate(RENDER, card)


def submitted(page: Any) -> list[dict[str, Any]]:
    page.wait_for_function("window.submitted.length > 0", timeout=TIMEOUT_MS)
    result: list[dict[str, Any]] = page.evaluate("window.submitted")
    return result


def as_teams_activity(submit: dict[str, Any]) -> dict[str, Any]:
    """The message activity Teams sends the bot for a submit (Bot Framework docs, Adaptive Card actions)."""
    data = submit["data"]
    back = data.get("msteams") if isinstance(data, dict) else None
    if isinstance(back, dict) and back.get("type") == "messageBack":
        return {"type": "message", "text": back.get("text", ""), "value": back.get("value")}
    return {"type": "message", "text": "", "value": data}


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".bubble").screenshot(path=str(SCREENSHOTS / name))


def test_card_text_is_shown_as_written(page: Any) -> None:
    """Markdown is processed (as Teams does), yet nothing the customer typed becomes italics, a list or a link."""
    show(page, adaptive_card("Correo: ana_perez_2@empresa.co\n1. Falla *urgente* [aquí](https://x.co)", []))
    assert page.get_by_text("Correo: ana_perez_2@empresa.co", exact=True).count() == 1
    assert page.get_by_text("1. Falla *urgente* [aquí](https://x.co)", exact=True).count() == 1
    assert page.locator("#card em, #card strong, #card a, #card ol, #card ul").count() == 0


def test_three_buttons_render_and_a_click_gives_the_exact_payload(page: Any, catalog: Catalog) -> None:
    buttons = [
        {"title": catalog.label("send"), "payload": "/affirm"},
        {"title": catalog.label("correct"), "payload": "/correct"},
        {"title": catalog.label("cancel"), "payload": "/cancel"},
    ]
    text = (
        "Revisa tu solicitud antes de enviarla:\n• Tipo de solicitud: Medios de pago › Pago en línea\n"
        "• Correo: ana_perez@empresa.co\n• Descripción: el PSE no me deja pagar desde ayer\n¿La envío?"
    )
    show(page, adaptive_card(text, buttons))
    assert page.locator("button.ac-pushButton").all_inner_texts() == ["Enviar", "Corregir", "Cancelar"]
    assert page.get_by_text("• Correo: ana_perez@empresa.co", exact=True).count() == 1
    screenshot(page, "teams-botones.png")

    page.get_by_role("button", name="Corregir").click()
    [submit] = submitted(page)
    assert submit["type"] == "Action.Submit"
    activity = as_teams_activity(submit)
    assert activity["text"] == "Corregir"  # what the chat shows as the customer's message
    assert incoming_text(activity) == "/correct"


def test_nine_options_render_as_a_list_and_the_choice_gives_the_exact_payload(page: Any, catalog: Catalog) -> None:
    types = [rt for category in catalog.categories for rt in category.request_types][:9]
    options = [{"title": rt.name, "payload": f'/choose_request_type{{"request_type":"{rt.id}"}}'} for rt in types]
    card = adaptive_card("¿Sobre qué es tu solicitud?", options)
    show(page, card)
    assert page.get_by_role("radio").count() == 9
    labels = [text.strip() for text in page.locator("#card label").all_inner_texts()]
    assert [o["title"] for o in options] == [label for label in labels if label in {o["title"] for o in options}]

    page.get_by_role("button", name="Enviar").click()  # nothing chosen: the card asks, nothing is sent
    page.get_by_text("Elige una opción de la lista").first.wait_for(timeout=TIMEOUT_MS)
    assert page.evaluate("window.submitted") == []

    page.locator("#card label").get_by_text(options[6]["title"], exact=True).click()
    assert page.locator("#card input[type=radio]:checked").count() == 1
    screenshot(page, "teams-lista.png")
    page.get_by_role("button", name="Enviar").click()
    [submit] = submitted(page)
    activity = as_teams_activity(submit)
    assert activity["value"] == {"choice": options[6]["payload"]}
    assert incoming_text(activity) == options[6]["payload"]
