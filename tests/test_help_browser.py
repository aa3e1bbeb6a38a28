"""The help article and the leads' articles page in a real headless Chromium, at 1280 and 390 px.

Only the web server runs (``python -m bot web``, no Rasa): the articles page
reads the knowledge base's log in the tickets database, seeded as in
tests/test_review_articles.py. Screenshots go to results/screenshots/ and are
copied to docs/screenshots/ for the README.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.kb.deflections import DeflectionLog
from bot.review.accounts import Accounts
from bot.review.db import engine_for
from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import free_port
from tests.test_browser import SCREENSHOTS, TIMEOUT_MS, browser  # noqa: F401  (shared fixture)
from tests.test_review_analysis import tracker_db
from tests.test_review_articles import CARTERA, seed

DOCS = PROJECT_ROOT / "docs" / "screenshots"
PASSWORD = "clave-de-lider-123"


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[str]:
    """The web server alone, over a data folder with a lead, an empty tracker and a week of article events."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TICKETS_DB_URL", "TRACKER_DB_URL", "REVIEW_DB_URL", "REDIS_URL", "JSM_SITE_URL")
    }
    port = free_port()
    env.update(BOT_DATA_DIR=str(tmp_path), WEB_PORT=str(port), KB_BACKEND="embedded", REVIEW_TIMEZONE="America/Bogota")
    settings = Settings.from_env(env)
    tracker_db(tmp_path / "tracker.db", {})
    Accounts(engine_for(settings.tickets_db_url)).add_user("lider.articulos", PASSWORD)
    seed(DeflectionLog(settings.tickets_db_url), settings.tickets_db_url)
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "bot", "web"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/salud", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "web.log").read_text(errors="replace")) from None
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def fits(page, width: int) -> None:
    scroll = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll <= width, (page.url, scroll)


def keep(name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SCREENSHOTS / name, DOCS / name)
    assert (DOCS / name).stat().st_size > 10_000


def test_a_lead_reads_the_articles_page_and_a_customer_the_article(web_server: str, browser) -> None:  # noqa: F811
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale="es-CO", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{web_server}/revision/articulos")
    assert "/revision/entrar" in page.url  # nothing without login
    page.get_by_label("Usuario").fill("lider.articulos")
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    page.get_by_role("heading", name="Artículos de la base de conocimiento").wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#tasa").inner_text() == "50,0 %"
    page.get_by_label("Desde").fill("2026-11-25")
    page.get_by_label("Hasta").fill("2026-11-28")
    page.get_by_role("button", name="Filtrar").click()
    page.wait_for_url("**desde=2026-11-25**", timeout=TIMEOUT_MS)
    assert page.locator("#conversaciones").inner_text() == "2"
    page.get_by_role("link", name="Todo el periodo").click()
    page.locator("#conversaciones", has_text="4").wait_for(timeout=TIMEOUT_MS)
    page.screenshot(path=str(SCREENSHOTS / "revision-articulos.png"), full_page=True)
    keep("revision-articulos.png")
    fits(page, 1280)

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    fits(page, 390)  # the tables scroll inside themselves

    customer = browser.new_context(locale="es-CO", viewport={"width": 390, "height": 844}).new_page()
    customer.goto(f"{web_server}/ayuda/articulos/{CARTERA}")
    customer.get_by_role("heading", name="Cómo eliminar o actualizar un registro de cartera").wait_for(
        timeout=TIMEOUT_MS
    )
    assert customer.get_by_text("cargue de cartera").count() >= 1
    fits(customer, 390)
    customer.screenshot(path=str(SCREENSHOTS / "ayuda-articulo.png"), full_page=True)
    keep("ayuda-articulo.png")
    customer.set_viewport_size({"width": 1280, "height": 900})
    fits(customer, 1280)
    customer.get_by_role("link", name="Ver todos los artículos").click()
    customer.get_by_role("heading", name="Artículos de ayuda").wait_for(timeout=TIMEOUT_MS)
    assert customer.get_by_role("listitem").count() >= 5  # the shipped articles
