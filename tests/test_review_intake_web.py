"""The intake pages and the weekly reports through the review app itself (a real Sanic app, its test client).

Conversations of known shape go into a tracker store (tests/test_review_analysis.py's
builder), the web app is built from the settings like in production, and a
lead logs in through the form; every new page and export answers only to a
logged-in lead, and no filter or file name a lead can type makes it fail.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.review.intake_pages import intake_filters
from bot.review.intake_views import funnel_rows
from bot.review.links import conversation_path
from bot.review.weekly_report import write_report
from tests.test_review_analysis import Conversation
from tests.test_review_intake_pages import HOSTILE_ARGS, parsed
from tests.test_review_web import make_site, session_cookies

NEW_PAGES = [
    "/revision/embudo", "/revision/embudo.csv", "/revision/embudo.json",
    "/revision/esfuerzo", "/revision/esfuerzo.csv", "/revision/esfuerzo.json",
    "/revision/comprension", "/revision/comprension.csv", "/revision/comprension.json",
    "/revision/contencion", "/revision/contencion.csv", "/revision/contencion.json",
    "/revision/informes", "/revision/informes/informe-2026-W48.html",
]  # fmt: skip


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    return make_site(tmp_path, monkeypatch, env={"REVIEW_TIMEZONE": "America/Bogota"})


@pytest.mark.parametrize("path", NEW_PAGES)
def test_no_intake_page_export_or_report_answers_without_login(site, tmp_path: Path, path: str) -> None:
    write_report("<p>informe</p>", tmp_path / "informes", "2026-W48")
    _, response = site.test_client.get(path, allow_redirects=False)
    assert response.status == 302
    assert response.headers["location"].startswith("/revision/entrar?siguiente=")
    assert "informe" not in response.text


def test_leads_list_open_and_download_the_kept_reports(site, tmp_path: Path) -> None:
    cookies = session_cookies(site)
    _, empty = site.test_client.get("/revision/informes", cookies=cookies)
    assert empty.status == 200 and "Sin informes todavía" in empty.text
    assert str(tmp_path / "informes") in empty.text  # where the CLI writes them
    folder = tmp_path / "informes"
    write_report("<!doctype html><style>h1{color:red}</style><h1>Semana 2026-W48</h1>", folder, "2026-W48")
    (folder / "informe-2026-W48.pdf").write_bytes(b"%PDF-1.4 informe")
    write_report("<h1>Semana 2026-W47</h1>", folder, "2026-W47")
    _, listed = site.test_client.get("/revision/informes", cookies=cookies)
    assert listed.text.index("2026-W48") < listed.text.index("2026-W47")
    assert 'href="/revision/informes/informe-2026-W48.pdf?descargar=1"' in listed.text
    assert 'href="/revision/informes/informe-2026-W47.html"' in listed.text
    assert 'href="/revision/informe' in listed.text and "informe-2026-W47.pdf" not in listed.text
    assert 'href="/revision/informes">Informes</a>' in listed.text  # in the navigation

    _, shown = site.test_client.get("/revision/informes/informe-2026-W48.html", cookies=cookies)
    assert shown.status == 200 and "Semana 2026-W48" in shown.text
    assert shown.headers["content-type"].startswith("text/html")
    policy = shown.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in policy and "script" not in policy and "default-src 'none'" in policy
    assert shown.headers["X-Frame-Options"] == "DENY" and shown.headers["Cache-Control"] == "no-store"
    _, pdf = site.test_client.get("/revision/informes/informe-2026-W48.pdf?descargar=1", cookies=cookies)
    assert pdf.status == 200 and pdf.body == b"%PDF-1.4 informe"
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["Content-Disposition"] == 'attachment; filename="informe-2026-W48.pdf"'


@pytest.mark.parametrize(
    "name",
    ["..%2Ftickets.db", "..%2F..%2Fetc%2Fpasswd", "tickets.db", "informe-2026-W49.html", "informe-2026-W48.html%00",
     "%2e%2e", "informe-2026-W48.html%2F..%2F..%2Ftickets.db", "informe-2026-W48.exe"],
)  # fmt: skip
def test_no_file_name_reaches_outside_the_reports(site, tmp_path: Path, name: str) -> None:
    write_report("<p>informe</p>", tmp_path / "informes", "2026-W48")
    _, response = site.test_client.get(f"/revision/informes/{name}", cookies=session_cookies(site))
    assert response.status == 404, response.text
    assert "No existe ese informe." in response.text or response.status == 404
    assert "SQLite" not in response.text and "root:" not in response.text


# ------------------------------------------------------------ the figures
def refused_email_twice_then_ticket(start: datetime) -> Conversation:
    c = Conversation(start=start).start("pago_en_linea", "el pago en linea falla al pagar con pse")
    c.slot("requested_slot", "email").user("ana@", "inform").bot("Falta la arroba", "utter_invalid_email_missing_at")
    c.slot("requested_slot", "email").user("ana(arroba)empresa", "inform")
    c.bot("Falta la arroba", "utter_invalid_email_missing_at").slot("requested_slot", "email")
    c.user("ana.perez@empresa.com", "inform").slot("email", "ana.perez@empresa.com")
    c.slot("requested_slot", "phone").user("+573001234567", "inform").slot("phone", "+573001234567")
    c.slot("requested_slot", "confirmation").bot("Revisa tu solicitud", "utter_question_confirmation")
    c.user("/affirm", "affirm", 1.0).slot("confirmation", "send").form(False).slot("ticket_key", "ECO-000002")
    return c


def abandoned_at_the_phone(start: datetime) -> Conversation:
    c = Conversation(start=start, channel="whatsapp").start("pago_en_linea", "no puedo pagar en linea")
    c.slot("requested_slot", "email").user("luis@empresa.com", "inform").slot("email", "luis@empresa.com")
    return c.slot("requested_slot", "phone").bot("¿Tu teléfono?", "utter_ask_phone")


def cancelled_at_the_summary(start: datetime) -> Conversation:
    c = Conversation(start=start).start("pago_en_linea", "el boton de pagar no responde")
    c.slot("requested_slot", "email").user("eva@empresa.com", "inform").slot("email", "eva@empresa.com")
    c.slot("requested_slot", "phone").user("+573009998877", "inform").slot("phone", "+573009998877")
    c.slot("requested_slot", "confirmation").bot("Revisa tu solicitud", "utter_question_confirmation")
    return c.user("/cancel", "cancel", 1.0).form(False).bot("Cancelé la solicitud", "utter_request_cancelled")


@pytest.fixture
def shaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The app over three more conversations of known shape besides make_site's ticket (WhatsApp, pago_en_linea)."""
    start = datetime.now(timezone.utc) - timedelta(hours=3)
    more = {
        "web:rechazo-correo": refused_email_twice_then_ticket(start),
        "whatsapp:+573005550000": abandoned_at_the_phone(start),
        "web:cancela-resumen": cancelled_at_the_summary(start),
    }
    return make_site(tmp_path, monkeypatch, more=more, env={"REVIEW_TIMEZONE": "America/Bogota"})


def test_the_funnel_page_shows_the_conversations_of_known_shape(shaped) -> None:
    cookies = session_cookies(shaped)
    _, response = shaped.test_client.get("/revision/embudo", params={"tipo": "pago_en_linea"}, cookies=cookies)
    assert response.status == 200, response.text
    found = parsed(response.text)
    rows = {row[0]: row[1:] for row in found.tables["tabla-embudo-total"]}
    assert rows["Llegaron al tipo de solicitud"][0] == "4"
    assert rows["Ticket creado"][0] == "2"  # make_site's and the one refused twice
    # The refused-twice and the cancelled ones saw the summary (make_site's predates the summary question).
    assert rows["Vieron el resumen"][0] == "2" and rows["Vieron el resumen"][3] == "1"  # cancelled there
    phone = next(v for k, v in rows.items() if k.startswith("Respondieron: ") and "eléfono" in k)
    assert int(phone[3]) >= 1  # abandoned at the phone (the cancelled one's last question was the phone too)
    email = next(v for k, v in rows.items() if k.startswith("Respondieron: ") and "orreo" in k)
    assert email[4] == "2"  # refused twice
    assert found.bars["grafico-embudo-total"] == len(found.tables["tabla-embudo-total"])
    assert f'href="{conversation_path("web:rechazo-correo")}"' in response.text  # the refused answers' transcript
    assert "ana(arroba)empresa" in response.text or "ana(" in response.text
    # The page's numbers are the metrics' numbers for the same filters.
    room = shaped.ctx.review
    figures = room.metrics.funnel(intake_filters({"tipo": "pago_en_linea"}))
    assert [r.count for r in funnel_rows(figures.overall)] == [int(v[0]) for v in rows.values()]


@pytest.mark.parametrize(
    "path", ["/revision/embudo", "/revision/esfuerzo", "/revision/comprension", "/revision/contencion"]
)
def test_every_intake_page_answers_with_its_chart_or_sin_datos(shaped, path: str) -> None:
    cookies = session_cookies(shaped)
    _, response = shaped.test_client.get(path, cookies=cookies)
    assert response.status == 200, response.text
    assert "<svg" in response.text and 'class="data"' in response.text
    _, nothing = shaped.test_client.get(path, params={"desde": "2001-01-01", "hasta": "2001-01-02"}, cookies=cookies)
    assert nothing.status == 200 and "Sin datos para estos filtros." in nothing.text


MORE_ARGS = [
    {"pais": "co", "canal": "whatsapp"},
    {"desde": "9999-12-31"},
    {"desde": "0001-01-01", "hasta": "9999-12-31"},
]
INTAKE_PATHS = [
    "/revision/embudo", "/revision/esfuerzo", "/revision/comprension", "/revision/contencion",
    "/revision/contencion.csv", "/revision/embudo.json",
    "/revision/conversaciones", "/revision/satisfaccion",  # older pages: 9999-12-31 once overflowed there (500)
]  # fmt: skip


@pytest.mark.parametrize("args", HOSTILE_ARGS + MORE_ARGS)
@pytest.mark.parametrize("path", INTAKE_PATHS)
def test_hostile_filters_never_make_a_page_or_export_fail(shaped, path: str, args: dict) -> None:
    _, response = shaped.test_client.get(path, params=args, cookies=session_cookies(shaped))
    assert response.status == 200, (path, args, response.text[:500])
    if path.endswith(".json"):  # data, never run: a JSON type, and the browser may not guess another
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    else:
        assert "<script>alert(1)" not in response.text


def test_the_exports_carry_the_pages_numbers_and_are_logged(shaped) -> None:
    cookies = session_cookies(shaped)
    _, data = shaped.test_client.get("/revision/embudo.json", params={"tipo": "pago_en_linea"}, cookies=cookies)
    assert data.status == 200 and data.headers["content-type"].startswith("application/json")
    assert "4" in json.dumps(data.json)
    _, sheet = shaped.test_client.get("/revision/contencion.csv", cookies=cookies)
    assert sheet.status == 200 and sheet.headers["content-type"].startswith("text/csv")
    assert "attachment" in sheet.headers["Content-Disposition"]
    _, overview = shaped.test_client.get("/revision/resumen", cookies=cookies)
    assert "Exportó el embudo (JSON)" in overview.text and "Exportó la contención (CSV)" in overview.text
