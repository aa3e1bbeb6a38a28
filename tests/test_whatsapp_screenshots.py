"""What a WhatsApp customer sees of the reply buttons and the list, as pictures for the README.

The messages are the dialogue's own (the summary with «Enviar / Corregir /
Cancelar», a category's request types), sent by the real channel to the
fake Twilio; the picture is drawn from the content the fake stored, in a
WhatsApp-like page rendered by headless Chromium (as tests/test_browser.py
drives it). Saved to results/screenshots/ and copied to docs/screenshots/.
"""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from bot.attachments import AttachmentStore
from bot.catalog import Catalog
from bot.channels.http import LoopSession
from bot.channels.whatsapp import WhatsAppConfig, WhatsAppInput
from bot.channels.whatsapp.content import ContentApi, ContentCache, Contents
from bot.dialogue.navigation import request_types_menu
from bot.dialogue.prompts import ask
from bot.dialogue.slots import CONFIRMATION, DESCRIPTION, EMAIL, PHONE, REQUEST_TYPE
from bot.settings import PROJECT_ROOT, Settings
from tests.fake_twilio import LIST_PICKER, QUICK_REPLY, SID, TOKEN, FakeTwilio, start_fake_twilio
from tests.test_browser import CHROMIUM_ARGS
from tests.test_whatsapp import BOT_NUMBER, PUBLIC_URL, FakeRasa, make_app, post, twilio_params

playwright_api = pytest.importorskip("playwright.sync_api")

RESULTS = PROJECT_ROOT / "results" / "screenshots"
DOCS = PROJECT_ROOT / "docs" / "screenshots"
DOMAIN = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))

STYLE = """
body { margin: 0; font-family: 'Segoe UI', Helvetica, Arial, sans-serif; background: #d1d7db; }
.phone { width: 390px; background: #efeae2; position: relative; overflow: hidden; }
.top { background: #008069; color: #fff; padding: 14px 16px; font-size: 17px; display: flex; gap: 10px; }
.avatar { width: 34px; height: 34px; border-radius: 50%; background: #fff; color: #008069; font-weight: 700;
  display: flex; align-items: center; justify-content: center; font-size: 14px; }
.top small { display: block; font-size: 12px; opacity: .8; }
.chat { padding: 14px 10px 18px; }
.bubble { background: #fff; border-radius: 0 8px 8px 8px; padding: 8px 10px 6px; max-width: 300px;
  box-shadow: 0 1px .5px rgba(11,20,26,.13); font-size: 14.5px; color: #111b21; white-space: pre-wrap;
  line-height: 1.35; }
.bubble + .bubble { margin-top: 6px; }
.mine { background: #d9fdd3; border-radius: 8px 0 8px 8px; margin: 0 0 10px auto; width: fit-content; }
.time { text-align: right; font-size: 11px; color: #667781; margin-top: 2px; }
.reply { background: #fff; border-radius: 8px; margin-top: 3px; max-width: 320px; text-align: center;
  padding: 10px; color: #027eb5; font-size: 14.5px; box-shadow: 0 1px .5px rgba(11,20,26,.13); }
.open { border-top: 1px solid #e9edef; margin: 8px -10px -6px; padding: 10px; text-align: center;
  color: #027eb5; white-space: normal; }
.sheet { background: #fff; border-radius: 14px 14px 0 0; margin-top: 14px; padding: 8px 0 10px;
  box-shadow: 0 -2px 8px rgba(0,0,0,.15); }
.sheet h2 { font-size: 16px; text-align: center; margin: 8px 0 10px; color: #111b21; }
.row { display: flex; align-items: center; padding: 9px 18px; border-top: 1px solid #f0f2f5; }
.row div { flex: 1; }
.row b { display: block; font-weight: 400; font-size: 15px; color: #111b21; }
.row span { font-size: 13px; color: #667781; }
.radio { width: 18px; height: 18px; border: 2px solid #8696a0; border-radius: 50%; margin-left: 12px; }
"""


def page_for(customer_text: str, bubble: str, extra: str = "") -> str:
    return f"""<!doctype html><html lang="es"><head><meta charset="utf-8"><style>{STYLE}</style></head>
<body><div class="phone" id="phone">
<div class="top"><div class="avatar">ec</div><div>Soporte ecollect<small>cuenta de empresa</small></div></div>
<div class="chat"><div class="bubble mine">{html.escape(customer_text)}<div class="time">10:41</div></div>
{bubble}</div>{extra}</div></body></html>"""


def quick_reply_page(data: dict[str, Any], lead: list[str]) -> str:
    replies = "".join(f'<div class="reply">↩ {html.escape(a["title"])}</div>' for a in data["actions"])
    texts = "".join(f'<div class="bubble">{html.escape(text)}<div class="time">10:41</div></div>' for text in lead)
    bubble = f'{texts}<div class="bubble">{html.escape(data["body"])}<div class="time">10:41</div></div>{replies}'
    return page_for("ana@empresa.com", bubble)


def list_page(data: dict[str, Any]) -> str:
    bubble = (
        f'<div class="bubble">{html.escape(data["body"])}<div class="time">10:41</div>'
        f'<div class="open">☰ {html.escape(data["button"])}</div></div>'
    )
    rows = "".join(
        f'<div class="row"><div><b>{html.escape(r["item"])}</b><span>{html.escape(r["description"])}</span></div>'
        '<i class="radio"></i></div>'
        for r in data["items"]
    )
    sheet = f'<div class="sheet"><h2>{html.escape(data["button"])}</h2>{rows}</div>'
    return page_for("Módulo administrativo", bubble, sheet)


def spoken(say: Any) -> dict[str, Any]:
    """A dialogue message as Rasa sends it: domain.yml's text with its values, and the buttons."""
    text = DOMAIN["responses"][say.response][0]["text"].format(**say.kwargs)
    return {"text": text, "buttons": [{"title": b.title, "payload": b.payload} for b in say.buttons]}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.fail(f"No hay chromium en {executable}: `make test` lo instala con scripts/ensure-chromium.sh.")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    fake, stop = start_fake_twilio()
    try:
        yield fake
    finally:
        stop()


@pytest.fixture(scope="module")
def recorded(twilio: FakeTwilio, catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> FakeTwilio:
    """The two messages sent through the channel, before the browser starts (both want the event loop)."""
    tmp_path = tmp_path_factory.mktemp("whatsapp-capturas")
    config = WhatsAppConfig(
        SID, TOKEN, BOT_NUMBER, api_url=twilio.api_url, public_url=PUBLIC_URL, content_api_url=twilio.content_url
    )
    url = f"sqlite:///{tmp_path / 'tickets.db'}"
    store = AttachmentStore.from_settings(catalog, Settings.from_env({"BOT_DATA_DIR": str(tmp_path)}))
    channel = WhatsAppInput(
        config, store, catalog.country_ids, None, Contents(ContentApi(config, LoopSession()), ContentCache(url))
    )
    slots = {
        REQUEST_TYPE: "pago_en_linea",
        DESCRIPTION: "El PSE no me deja pagar: sale un error al volver al comercio desde ayer.",
        EMAIL: "ana@empresa.com",
        PHONE: "+573001234567",
    }
    [confirmation] = ask(CONFIRMATION, slots, catalog)
    [types] = request_types_menu(catalog.categories[0], catalog)
    post(make_app(channel, FakeRasa(spoken(confirmation), spoken(types))), twilio_params("Hola"))
    return twilio


def test_reply_buttons_and_list_as_the_customer_sees_them(recorded: FakeTwilio, browser: Any) -> None:
    twilio = recorded
    shown = [twilio.content_of(m) for m in twilio.messages]
    [(_, buttons)] = [found for found in shown if found and found[0] == QUICK_REPLY]
    [(_, listed)] = [found for found in shown if found and found[0] == LIST_PICKER]
    assert [a["title"] for a in buttons["actions"]] == ["Enviar", "Corregir", "Cancelar"]
    # The summary, with the customer's data, goes as plain text; the shared content holds only the question.
    lead = [m["Body"] for m in twilio.messages if "Revisa tu solicitud" in str(m.get("Body"))]
    assert len(lead) == 1 and "ana@empresa.com" in lead[0] and "ana@empresa.com" not in buttons["body"]
    assert "Mis credenciales de ingreso al módulo no funcionan" in [r["description"] for r in listed["items"]]

    RESULTS.mkdir(parents=True, exist_ok=True)
    DOCS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(device_scale_factor=2)
    try:
        for name, document, words in (
            ("whatsapp-botones.png", quick_reply_page(buttons, lead), "Cancelar"),
            ("whatsapp-lista.png", list_page(listed), "Mis credenciales…"),
        ):
            page.set_content(document)
            phone = page.locator("#phone")
            assert words in phone.inner_text()
            target = RESULTS / name
            phone.screenshot(path=str(target))
            assert target.stat().st_size > 10_000
            shutil.copyfile(target, DOCS / name)
    finally:
        page.close()
