"""A support lead reads the intake pages and the weekly report in a real headless Chromium, at 1280 and 390 px.

The web server runs as ``python -m bot web`` over a tracker store holding
conversations of known shape (a ticket after an e-mail refused twice, one
abandoned at the phone, one cancelled at the summary); the weekly report is
written by ``python -m bot review report`` itself. Screenshots go to
results/screenshots/ (the README's copies are in docs/screenshots/).
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

from bot.review.accounts import Accounts
from bot.review.db import engine_for
from bot.review.index import review_zone
from bot.review.intake import iso_week
from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import free_port
from tests.test_browser import TIMEOUT_MS, browser  # noqa: F401  (shared fixture)
from tests.test_review_analysis import tracker_db
from tests.test_review_intake_web import (
    abandoned_at_the_phone,
    cancelled_at_the_summary,
    refused_email_twice_then_ticket,
)

pytestmark = pytest.mark.servers
SCREENSHOTS = PROJECT_ROOT / "results" / "screenshots"
PASSWORD = "clave-de-lider-789"
PAGES = {
    "embudo": "Embudo por pregunta",
    "esfuerzo": "Esfuerzo hasta el ticket",
    "comprension": "Comprensión",
    "contencion": "Contención",
}


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    """``python -m bot web`` over the seeded data directory; (base URL, its environment, this week)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TICKETS_DB_URL", "TRACKER_DB_URL", "REVIEW_DB_URL", "REDIS_URL")
    }
    env.update({"BOT_DATA_DIR": str(tmp_path), "WEB_PORT": str(free_port()), "REVIEW_TIMEZONE": "America/Bogota"})
    settings = Settings.from_env(env)
    start = datetime.now(timezone.utc) - timedelta(hours=3)
    tracker_db(settings.data_dir / "tracker.db", {
        "web:rechazo-correo": refused_email_twice_then_ticket(start),
        "whatsapp:+573005550000": abandoned_at_the_phone(start),
        "web:cancela-resumen": cancelled_at_the_summary(start),
    })  # fmt: skip
    Accounts(engine_for(settings.tickets_db_url)).add_user("lider.cifras", PASSWORD)
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
        yield base, env, iso_week(start, review_zone(settings.review))
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def fits(page) -> None:
    """Charts and tables are there, and the page is no wider than the window (tables scroll inside)."""
    assert page.locator("svg.ichart").count() >= 1
    assert page.locator("table.data").count() >= 1
    width, inner = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width <= inner, (page.url, width, inner)
    for box in page.locator("svg.ichart").evaluate_all("els => els.map(e => e.getBoundingClientRect().right)"):
        assert box <= inner + 0.5, (page.url, box, inner)


def test_lead_reads_every_intake_page_and_the_weekly_report_on_a_desktop_and_a_phone(
    web_server: tuple[str, dict[str, str], str],
    browser,  # noqa: F811  (the shared fixture)
    tmp_path: Path,
) -> None:
    base, env, week = web_server
    done = subprocess.run(
        [sys.executable, "-m", "bot", "review", "report", "--week", week],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    html = tmp_path / "informes" / f"informe-{week}.html"
    assert html.is_file() and f"Semana {week}" in html.read_text(encoding="utf-8")
    pdf = html.with_suffix(".pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000  # Chromium is there: the tests use it

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale="es-CO", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/revision/embudo")
    assert "/revision/entrar" in page.url  # nothing without login
    page.get_by_label("Usuario").fill("lider.cifras")
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Entrar").click()
    page.get_by_role("heading", name=PAGES["embudo"]).wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#tabla-embudo-total tbody tr").count() == page.locator("#grafico-embudo-total g.bar").count()
    assert page.locator("#tabla-embudo-total tbody tr").first.inner_text().split("\t")[1] == "3"
    page.get_by_label("Canal").select_option(label="WhatsApp")
    page.get_by_role("button", name="Filtrar").click()
    page.get_by_role("heading", name=PAGES["embudo"]).wait_for(timeout=TIMEOUT_MS)
    assert "canal=whatsapp" in page.url
    assert page.locator("#tabla-embudo-total tbody tr").first.inner_text().split("\t")[1] == "1"
    page.goto(f"{base}/revision/embudo")
    fits(page)
    page.screenshot(path=str(SCREENSHOTS / "revision-embudo.png"), full_page=True)

    for path, heading in PAGES.items():
        page.goto(f"{base}/revision/{path}")
        page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=TIMEOUT_MS)
        fits(page)
    page.get_by_role("link", name="Informes").click()
    page.get_by_role("heading", name="Informes semanales").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("link", name="Ver", exact=True).first.click()
    page.get_by_role("heading", name=f"Semana {week}").wait_for(timeout=TIMEOUT_MS)
    fits(page)

    page.set_viewport_size({"width": 390, "height": 844})
    for path in PAGES:
        page.goto(f"{base}/revision/{path}")
        fits(page)
        if path == "embudo":
            page.screenshot(path=str(SCREENSHOTS / "revision-embudo-movil.png"), full_page=True)
    page.goto(f"{base}/revision/informes/informe-{week}.html")
    fits(page)
    page.goto(f"{base}/revision/informes")
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 390
    for name in ("revision-embudo.png", "revision-embudo-movil.png"):
        assert (SCREENSHOTS / name).stat().st_size > 10_000
    context.close()
