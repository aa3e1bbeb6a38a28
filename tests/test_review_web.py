"""The review app over HTTP: nothing without login, CSRF, throttling, escaping,
masking, the access log, intent marks and the ticket <-> transcript links."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from sanic_testing import TestManager

from bot.review.accounts import Accounts, MAX_FAILURES
from bot.review.db import engine_for
from bot.review.links import conversation_path, sender_for, token_for
from bot.settings import Settings
from bot.tickets import NewTicket, TicketStore
from bot.web.app import create_app
from tests.test_review_analysis import Conversation, tracker_db
from tests.cards import CARD, shows_card

_names = itertools.count()
PASSWORD = "clave-muy-segura-1"
SENDER = "whatsapp:+573001234567"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    return make_site(tmp_path, monkeypatch)


def make_site(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    review_db_url: str | None = None,
    more: dict[str, Conversation] | None = None,
    env: dict[str, str] | None = None,
):
    """The web app over a tracker with SENDER's conversation (and ``more``), one lead "lider".

    ``review_db_url`` puts the review tables elsewhere (REVIEW_DB_URL), e.g. on
    PostgreSQL, whose column limits SQLite does not enforce; ``env`` adds
    variables read when the app is built (PROXIES_COUNT...).
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    for name in ("TICKETS_DB_URL", "TRACKER_DB_URL", "REVIEW_DB_URL", "REDIS_URL", "PROXIES_COUNT", "FORWARDED_SECRET",
                 "REVIEW_SECURE_COOKIES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    if review_db_url:
        monkeypatch.setenv("REVIEW_DB_URL", review_db_url)
    settings = Settings.from_env()
    start = datetime.now(timezone.utc) - timedelta(hours=2)
    conversation = (
        Conversation(start=start, channel="whatsapp")
        .user("<script>alert(1)</script> mi tarjeta " + CARD + " y mi correo ana.perez@empresa.com", "pago_en_linea", 0.31)
        .action("action_start_request").slot("request_type", "pago_en_linea").form(True)
        .slot("email", "ana.perez@empresa.com").slot("phone", "+573001234567")
        .bot("Revisa tu solicitud", buttons=[{"title": "Enviar", "payload": "/affirm"}])
        .user("/affirm", "affirm", 1.0).form(False).slot("ticket_key", "ECO-000001")
    )
    # A page load of the chat: the widget's greeting and nothing from the customer.
    empty = Conversation(start=start, channel="socketio").user("/greet", "greet", 1.0).bot("¡Hola! Soy el asistente")
    tracker_db(tmp_path / "tracker.db", {SENDER: conversation, "pagina-sin-uso": empty, **(more or {})})
    TicketStore(settings.tickets_db_url).create(NewTicket(
        category_id="medios_de_pago", category="Medios de pago", request_type_id="pago_en_linea",
        request_type="Pago en línea", email="ana.perez@empresa.com", phone="+573001234567",
        description="el pago con " + CARD + " falló", conversation_id=SENDER, channel="whatsapp",
    ), "k1")
    Accounts(engine_for(review_db_url or settings.tickets_db_url)).add_user("lider", PASSWORD)
    app = create_app(settings, name=f"review_test_{next(_names)}")
    app.ctx.review_db_url = review_db_url or settings.tickets_db_url  # for the tests' own look at the tables
    TestManager(app)
    return app


def login(site, password: str = PASSWORD):
    return login_as(site, "lider", password)


def login_as(site, username: str, password: str = PASSWORD, headers: dict[str, str] | None = None):
    """One login through the form; ``headers`` as a proxy in front would add them."""
    _, form = site.test_client.get("/revision/entrar")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    cookies = {"revision_csrf": form.cookies.get("revision_csrf")}
    _, response = site.test_client.post(
        "/revision/entrar", data={"usuario": username, "clave": password, "csrf": csrf, "siguiente": "/revision/resumen"},
        cookies=cookies, headers=headers or {}, allow_redirects=False,
    )
    return response


def wait_out(review_db_url: str, seconds: float) -> None:
    """Moves every recorded failed login ``seconds`` into the past: the wait a lead would do."""
    from sqlalchemy import select, update

    from bot.review import db

    with engine_for(review_db_url).begin() as connection:
        for row in connection.execute(select(db.login_failures)).all():
            at = row.at if row.at.tzinfo else row.at.replace(tzinfo=timezone.utc)
            connection.execute(
                update(db.login_failures).where(db.login_failures.c.id == row.id).values(at=at - timedelta(seconds=seconds))
            )


def session_cookies(site) -> dict[str, str]:
    response = login(site)
    assert response.status == 302, response.text
    return {"revision_sesion": response.cookies.get("revision_sesion")}


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


PROTECTED = [
    "/revision/",
    "/revision/conversaciones",
    "/revision/conversaciones?resultado=ticket",
    "/revision/conversaciones.csv",
    "/revision/conversaciones.json",
    "/revision/resumen",
    "/revision/tickets/ECO-000001",
    f"/revision/c/{token_for(SENDER)}",
    f"/revision/c/{token_for(SENDER)}/transcripcion.csv",
    f"/revision/c/{token_for(SENDER)}/transcripcion.json",
]


@pytest.mark.parametrize("path", PROTECTED)
def test_no_page_or_export_answers_without_login(site, path: str) -> None:
    _, response = site.test_client.get(path, allow_redirects=False)
    assert response.status == 302
    assert response.headers["location"].startswith("/revision/entrar?siguiente=")
    assert "ana" not in response.text and "ECO-000001" not in response.text


@pytest.mark.parametrize(
    "path", ["/revision/salir", f"/revision/c/{token_for(SENDER)}/completo", f"/revision/c/{token_for(SENDER)}/etiqueta"]
)
def test_no_form_acts_without_login(site, path: str) -> None:
    _, response = site.test_client.post(path, data={"csrf": "x"}, allow_redirects=False)
    assert response.status == 302 and "/revision/entrar" in response.headers["location"]


def test_forged_or_expired_session_is_refused(site) -> None:
    _, response = site.test_client.get("/revision/conversaciones", cookies={"revision_sesion": "inventada"}, allow_redirects=False)
    assert response.status == 302


def test_login_sets_a_strict_http_only_cookie_and_goes_where_asked(site) -> None:
    response = login(site)
    assert response.status == 302 and response.headers["location"] == "/revision/resumen"
    cookie = response.headers.get("set-cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/revision" in cookie


def test_wrong_password_and_throttling(site) -> None:
    for attempt in range(MAX_FAILURES):
        failed = login(site, "equivocada")
        assert failed.status == 401 and 'value="lider"' in failed.text  # the user name stays typed
        if attempt == MAX_FAILURES - 2:
            assert "Te queda 1 intento; después, cada intento fallido alarga la espera" in failed.text
        if attempt < MAX_FAILURES - 1:
            wait_out(site.ctx.review_db_url, 60)  # the lead looks for the password a minute each time
    throttled = login(site)  # even the right password waits now
    assert throttled.status == 429 and "Demasiados intentos fallidos. Espera " in throttled.text
    assert int(throttled.headers["retry-after"]) >= 1
    wait_out(site.ctx.review_db_url, int(throttled.headers["retry-after"]))
    assert login(site).status == 302


def test_one_leads_typos_do_not_lock_out_the_office(site) -> None:
    """Leads sharing one address wait seconds after another's typos, never a lock-out."""
    Accounts(engine_for(site.ctx.review_db_url)).add_user("otra.lider", PASSWORD)
    for attempt in range(MAX_FAILURES):
        assert login(site, "equivocada").status == 401
        if attempt < MAX_FAILURES - 1:
            wait_out(site.ctx.review_db_url, 60)
    right_after = login(site)  # "lider" waits now, and so does its address
    assert right_after.status == 429
    colleague = login_as(site, "otra.lider")
    assert colleague.status == 429 and int(colleague.headers["retry-after"]) <= 60
    wait_out(site.ctx.review_db_url, int(colleague.headers["retry-after"]))
    assert login_as(site, "otra.lider").status == 302


def test_login_form_needs_its_csrf_token(site) -> None:
    _, response = site.test_client.post(
        "/revision/entrar", data={"usuario": "lider", "clave": PASSWORD, "csrf": "x"}, allow_redirects=False
    )
    assert response.status == 403


def test_forms_need_the_session_csrf_token(site) -> None:
    cookies = session_cookies(site)
    path = f"/revision/c/{token_for(SENDER)}/completo"
    _, refused = site.test_client.post(path, data={"csrf": "otro"}, cookies=cookies, allow_redirects=False)
    assert refused.status == 403


@pytest.mark.parametrize(
    "text, found",
    [("correo", True), ("CORREO tarjeta", True), ("tarjeta correo", True), ("eco-000001", True),
     ("correo inexistente", False), ("100%", False), ("_", False)],
)
def test_text_filter_matches_every_word_in_any_order_and_case(site, text: str, found: bool) -> None:
    cookies = session_cookies(site)
    _, page = site.test_client.get("/revision/conversaciones", params={"texto": text}, cookies=cookies)
    assert ("1 conversación ·" in page.text) is found, text
    assert "WhatsApp" in page.text  # channel codes are shown by name


def test_empty_conversations_are_listed_only_on_request(site) -> None:
    cookies = session_cookies(site)
    _, default = site.test_client.get("/revision/conversaciones", cookies=cookies)
    assert "1 conversación ·" in default.text
    _, everything = site.test_client.get("/revision/conversaciones", params={"vacias": "1"}, cookies=cookies)
    assert "2 conversaciones ·" in everything.text and 'name="vacias" value="1" checked' in everything.text


def test_list_shows_masked_customer_and_no_card(site) -> None:
    cookies = session_cookies(site)
    _, page = site.test_client.get("/revision/conversaciones", cookies=cookies)
    assert page.status == 200
    assert "Pago en línea" in page.text and "ECO-000001" in page.text and "whatsapp" in page.text
    assert "a•••••••z@empresa.com" in page.text and "ana.perez@empresa.com" not in page.text
    assert not shows_card(page.text)
    assert page.headers["cache-control"] == "no-store"
    assert "script-src" not in page.headers["content-security-policy"]  # no scripts at all


def test_transcript_escapes_customer_text_and_marks_low_confidence(site) -> None:
    cookies = session_cookies(site)
    _, page = site.test_client.get(conversation_path(SENDER), cookies=cookies)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text
    assert "[tarjeta oculta]" in page.text and not shows_card(page.text)
    assert "baja confianza" in page.text and "pago_en_linea · 0.31" in page.text
    assert "Opciones:" in page.text and "Enviar" in page.text  # the assistant's buttons
    assert "ana.perez@empresa.com" not in page.text


def test_opening_the_full_record_is_logged(site) -> None:
    cookies = session_cookies(site)
    _, page = site.test_client.get(conversation_path(SENDER), cookies=cookies)
    path = f"/revision/c/{token_for(SENDER)}/completo"
    _, response = site.test_client.post(path, data={"csrf": csrf_of(page.text)}, cookies=cookies, allow_redirects=False)
    assert response.status == 302
    _, full = site.test_client.get(conversation_path(SENDER), cookies=cookies)
    assert "ana.perez@empresa.com" in full.text and not shows_card(full.text)  # cards stay hidden
    _, overview = site.test_client.get("/revision/resumen", cookies=cookies)
    # The access log says what was done, in words, and never shows the number it protects.
    assert "Vio los datos completos" in overview.text and "3001234567" not in overview.text
    assert "whatsapp:+57•••••••567" in overview.text


def test_exports_are_masked(site) -> None:
    cookies = session_cookies(site)
    for path in ["/revision/conversaciones.csv", "/revision/conversaciones.json",
                 f"/revision/c/{token_for(SENDER)}/transcripcion.csv", f"/revision/c/{token_for(SENDER)}/transcripcion.json"]:
        _, response = site.test_client.get(path, cookies=cookies)
        assert response.status == 200, path
        assert not shows_card(response.text) and "ana.perez@empresa.com" not in response.text, path
        assert "3001234567" not in response.text, path
    _, csv_page = site.test_client.get("/revision/conversaciones.csv?resultado=ticket", cookies=cookies)
    assert "Pago en línea" in csv_page.text and "Ticket creado" in csv_page.text


def test_ticket_and_transcript_link_both_ways(site) -> None:
    cookies = session_cookies(site)
    _, transcript = site.test_client.get(conversation_path(SENDER), cookies=cookies)
    assert 'href="/revision/tickets/ECO-000001"' in transcript.text
    _, ticket = site.test_client.get("/revision/tickets/ECO-000001", cookies=cookies)
    assert f'href="{conversation_path(SENDER)}"' in ticket.text
    assert "[tarjeta oculta]" in ticket.text and not shows_card(ticket.text)
    assert "+57•••••••567" in ticket.text


def test_marking_an_intent_and_exporting_nlu(site, tmp_path: Path) -> None:
    cookies = session_cookies(site)
    _, page = site.test_client.get(conversation_path(SENDER), cookies=cookies)
    event_id = re.search(r'name="evento" value="(\d+)"', page.text).group(1)
    path = f"/revision/c/{token_for(SENDER)}/etiqueta"
    _, response = site.test_client.post(
        path, data={"csrf": csrf_of(page.text), "evento": event_id, "intent": "inconsistencia_pago"},
        cookies=cookies, allow_redirects=False,
    )
    assert response.status == 302
    _, page = site.test_client.get(conversation_path(SENDER), cookies=cookies)
    assert "Marcado como «inconsistencia_pago» por lider" in page.text
    out = tmp_path / "revision.yml"
    subprocess.run([sys.executable, "-m", "bot", "review", "export-nlu", "--out", str(out)], check=True, capture_output=True)
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert data["nlu"][0]["intent"] == "inconsistencia_pago"
    assert not shows_card(out.read_text(encoding="utf-8")) and "ana.perez" not in out.read_text(encoding="utf-8")


def test_unknown_intent_or_message_is_refused(site) -> None:
    cookies = session_cookies(site)
    _, page = site.test_client.get(conversation_path(SENDER), cookies=cookies)
    path = f"/revision/c/{token_for(SENDER)}/etiqueta"
    _, bad = site.test_client.post(path, data={"csrf": csrf_of(page.text), "evento": "1", "intent": "inventado"}, cookies=cookies)
    assert bad.status == 400


def test_overview_charts(site) -> None:
    cookies = session_cookies(site)
    _, page = site.test_client.get("/revision/resumen", cookies=cookies)
    assert page.status == 200
    assert page.text.count('class="bar-conv"') == 14 and "<svg" in page.text
    assert "Resultado por tipo de solicitud" in page.text and "Pago en línea" in page.text
    assert "de turnos no entendidos" in page.text


def test_logout_ends_the_session(site) -> None:
    cookies = session_cookies(site)
    _, page = site.test_client.get("/revision/conversaciones", cookies=cookies)
    _, response = site.test_client.post("/revision/salir", data={"csrf": csrf_of(page.text)}, cookies=cookies, allow_redirects=False)
    assert response.status == 302
    _, again = site.test_client.get("/revision/conversaciones", cookies=cookies, allow_redirects=False)
    assert again.status == 302


def test_sessions_expire(tmp_path: Path) -> None:
    accounts = Accounts(engine_for(f"sqlite:///{tmp_path / 'r.db'}"), session_hours=-1)
    accounts.add_user("lider", PASSWORD)
    session = accounts.login("lider", PASSWORD, "127.0.0.1")
    assert session is not None and accounts.session(session.token) is None


def test_weak_passwords_and_duplicates_are_refused(tmp_path: Path) -> None:
    from bot.review.accounts import AccountError

    accounts = Accounts(engine_for(f"sqlite:///{tmp_path / 'r.db'}"))
    with pytest.raises(AccountError, match="al menos"):
        accounts.add_user("lider", "corta")
    accounts.add_user("lider", PASSWORD)
    with pytest.raises(AccountError, match="Ya existe"):
        accounts.add_user("lider", PASSWORD)


def test_conversation_tokens_round_trip() -> None:
    for sender in [SENDER, "rest/cliente con espacios", "29:1a-Bc_=="]:
        assert sender_for(token_for(sender)) == sender
    assert sender_for("%%%") is None


def test_add_user_cli(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "BOT_DATA_DIR": str(tmp_path)}
    env.pop("TICKETS_DB_URL", None)
    created = subprocess.run(
        [sys.executable, "-m", "bot", "review", "add-user", "maria", "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, env=env,
    )
    assert created.returncode == 0 and "creado" in created.stdout
    listed = subprocess.run([sys.executable, "-m", "bot", "review", "users"], capture_output=True, text=True, env=env)
    assert listed.stdout.strip() == "maria"


def test_empty_export_still_has_its_header(site) -> None:
    cookies = session_cookies(site)
    _, response = site.test_client.get("/revision/conversaciones.csv?texto=nadie-dijo-esto", cookies=cookies)
    assert response.text.lstrip("\ufeff").strip() == "conversacion,inicio,canal,cliente,tipo_de_solicitud,resultado,tickets,turnos,turnos_no_entendidos"


def test_bad_filters_are_explained_and_pages_past_the_end_go_to_the_last(site) -> None:
    cookies = session_cookies(site)
    _, bad = site.test_client.get("/revision/conversaciones", params={"desde": "31/02/2026", "hasta": "2026-01-01"}, cookies=cookies)
    assert "La fecha «31/02/2026» de «Desde» no es válida" in bad.text
    _, reversed_range = site.test_client.get("/revision/conversaciones", params={"desde": "2026-02-01", "hasta": "2026-01-01"}, cookies=cookies)
    assert "«Desde» es posterior a «Hasta»" in reversed_range.text
    _, far = site.test_client.get("/revision/conversaciones", params={"pagina": "99"}, cookies=cookies, allow_redirects=False)
    assert far.status == 302 and "pagina" not in far.headers["location"]
