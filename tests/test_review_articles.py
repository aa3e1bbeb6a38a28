"""The knowledge base in the review app: the «Resuelta con un artículo» outcome and /revision/articulos.

Events go through the real log (bot/kb/deflections.py) into the tickets
database of a real web app; only their times are moved into known days
afterwards, the way a lead's data would have piled up over a week.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, update

from bot.kb.deflections import ANSWERED, DECLINED, HELPFUL, OFFERED, VIEWED, DeflectionEvent, DeflectionLog, EventRow
from bot.kb.model import Article
from bot.review import analysis
from bot.review.deflection import report
from bot.review.links import conversation_path
from tests.test_review_analysis import NOW, Conversation
from tests.test_review_thread import table_row
from tests.test_review_web import SENDER, make_site, session_cookies

ENV = {"REVIEW_TIMEZONE": "America/Bogota", "KB_BACKEND": "embedded"}
CARTERA = "eliminar-actualizar-registros-cartera"
ARCHIVOS = "gestion-de-archivos"
FALLA = "falla-en-experiencia-de-usuario"
RESOLVED = "web:resuelta-con-articulo"


def resolved_by_an_article(start: datetime) -> Conversation:
    """A request answered by an article: offer, «Sí, esto me sirvió», no ticket (the dialogue's slots)."""
    c = Conversation(start=start).start("gestion_archivos", "como elimino un registro de cartera")
    c.slot("kb_offered", [CARTERA, ARCHIVOS]).bot("Quizás esto te sirva", buttons=[
        {"title": "Sí, esto me sirvió", "payload": '/kb_feedback{"kb_answer":"helpful"}'},
        {"title": "No, sigo con la solicitud", "payload": '/kb_feedback{"kb_answer":"declined"}'},
    ])  # fmt: skip
    c.user('/kb_feedback{"kb_answer":"helpful"}', "kb_feedback", 1.0).slot("kb_answer", "helpful")
    c.slot("kb_resolved", True).form(False).action("action_create_ticket").slot("request_type", None)
    return c


# ------------------------------------------------------------- outcome
def test_an_article_that_solved_it_is_its_own_outcome_not_abandoned() -> None:
    s = analysis.summarize("c", resolved_by_an_article(NOW - timedelta(hours=2)).events, now=NOW)
    assert s.outcome == analysis.DEFLECTED and s.tickets == []
    assert analysis.labels(s.outcomes) == ["Resuelta con un artículo"]
    # Still open right after the offer: in progress, not resolved.
    open_form = Conversation(start=NOW - timedelta(minutes=2)).start("gestion_archivos").slot("kb_offered", [CARTERA])
    assert analysis.summarize("c", open_form.events, now=NOW).outcome == analysis.IN_PROGRESS
    # A ticket later in the same conversation outranks it; «sigo con la solicitud» is no resolution.
    later = resolved_by_an_article(NOW - timedelta(hours=2)).start("pago_en_linea").slot("ticket_key", "ECO-000009")
    assert analysis.summarize("c", later.events, now=NOW).outcome == analysis.TICKET
    declined = Conversation(start=NOW - timedelta(hours=2)).start("gestion_archivos").slot("kb_declined", True)
    declined.slot("kb_resolved", False)
    assert analysis.DEFLECTED not in analysis.summarize("c", declined.events, now=NOW).outcomes
    order = analysis.OUTCOME_ORDER
    assert order.index(analysis.TICKET) < order.index(analysis.DEFLECTED) < order.index(analysis.ABANDONED)
    assert order.index(analysis.DEFLECTED) < order.index(analysis.IN_PROGRESS)


def test_leads_filter_the_conversations_an_article_solved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime.now(timezone.utc) - timedelta(hours=2)
    site = make_site(tmp_path, monkeypatch, more={RESOLVED: resolved_by_an_article(start)}, env=ENV)
    cookies = session_cookies(site)
    _, page = site.test_client.get(
        "/revision/conversaciones", params={"resultado": "resuelta_articulo"}, cookies=cookies
    )
    assert page.status == 200
    assert f'href="{conversation_path(RESOLVED)}"' in page.text
    assert f'href="{conversation_path(SENDER)}"' not in page.text  # the ticketed one
    assert '<option value="resuelta_articulo" selected>Resuelta con un artículo</option>' in page.text
    _, transcript = site.test_client.get(conversation_path(RESOLVED), cookies=cookies)
    assert "badge-resuelta_articulo" in transcript.text and "Resuelta con un artículo" in transcript.text
    _, exported = site.test_client.get("/revision/conversaciones.json?resultado=resuelta_articulo", cookies=cookies)
    assert [r["resultado"] for r in json.loads(exported.text)] == ["Resuelta con un artículo"]
    _, overview = site.test_client.get("/revision/resumen", cookies=cookies)
    assert "key-resuelta_articulo" in overview.text


# ------------------------------------------------------------- figures
def at(day: int, hour: int = 15) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=timezone.utc)  # 10:00 in Bogotá


def seed(log: DeflectionLog, db_url: str) -> None:
    """Four conversations over a week, each event then moved to its day."""
    kb = {a: Article(a, a) for a in (CARTERA, ARCHIVOS, FALLA)}
    moments: list[datetime] = []
    # A: offered two articles in a request, opened one, «me sirvió».
    first, _ = log.offer(
        "web:a", OFFERED, [kb[CARTERA], kb[ARCHIVOS]], request_type="gestion_archivos", channel="socketio"
    )
    log.view(first)
    log.answer("web:a", HELPFUL, [CARTERA, ARCHIVOS], request_type="gestion_archivos", channel="socketio")
    moments += [at(20), at(20, 16), at(20, 17)]
    # B: offered one, «sigo con la solicitud».
    log.offer("wa:b", OFFERED, [kb[CARTERA]], request_type="gestion_archivos", channel="whatsapp")
    log.answer("wa:b", DECLINED, [CARTERA], request_type="gestion_archivos", channel="whatsapp")
    moments += [at(21), at(21, 16)]
    # C: a direct question before any request type, answered, opened, «me sirvió».
    [token] = log.offer("teams:c", ANSWERED, [kb[FALLA]], channel="teams")
    log.view(token)
    log.answer("teams:c", HELPFUL, [FALLA], channel="teams")
    moments += [at(27), at(27, 16), at(27, 17)]
    # D: a direct question inside a request, answered, nothing more.
    log.offer("web:d", ANSWERED, [kb[FALLA]], request_type="falla_experiencia_usuario", channel="socketio")
    moments += [at(28)]
    engine = create_engine(db_url, future=True)
    with engine.begin() as connection:
        ids = [row.id for row in connection.execute(select(EventRow.id).order_by(EventRow.id))]
        assert len(ids) == len(moments)
        for event_id, moment in zip(ids, moments, strict=True):
            connection.execute(update(EventRow).where(EventRow.id == event_id).values(at=moment))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    site = make_site(tmp_path, monkeypatch, env=ENV)
    seed(site.ctx.deflections, site.ctx.settings.tickets_db_url)
    return site


def test_the_articles_page_counts_offers_views_answers_and_the_deflection_rate(site) -> None:
    cookies = session_cookies(site)
    _, page = site.test_client.get("/revision/articulos", cookies=cookies)
    assert page.status == 200, page.text
    html = page.text
    assert 'id="tasa">50,0 %<' in html and 'id="conversaciones">4<' in html
    assert 'id="ofertas">2<' in html and 'id="respuestas">2<' in html and 'id="vistas">2<' in html
    assert 'id="me-sirvio">2<' in html and 'id="sigo">1<' in html
    # offered, answered, views, «me sirvió», «sigo», conversations, resolved, rate
    cartera = f'Cómo eliminar o actualizar un registro de cartera <span class="intent">{CARTERA}</span>'
    assert table_row(html, "tabla-por-articulo", cartera) == ["2", "0", "1", "1", "1", "2", "1", "50,0 %"]
    archivos = f'Gestión de archivos del Módulo administrativo <span class="intent">{ARCHIVOS}</span>'
    assert table_row(html, "tabla-por-articulo", archivos) == ["1", "0", "0", "1", "0", "1", "1", "100,0 %"]
    falla = f'Qué es «Falla en experiencia de usuario» y cuándo elegirla <span class="intent">{FALLA}</span>'
    assert table_row(html, "tabla-por-articulo", falla) == ["0", "2", "1", "1", "0", "2", "1", "50,0 %"]
    assert table_row(html, "tabla-por-tipo", "Gestión de archivos") == ["2", "0", "1", "1", "1", "2", "1", "50,0 %"]
    assert table_row(html, "tabla-por-tipo", "Sin tipo de solicitud") == ["0", "1", "1", "1", "0", "1", "1", "100,0 %"]
    assert table_row(html, "tabla-por-tipo", "Falla en experiencia de usuario") == [
        "0", "1", "0", "0", "0", "1", "0", "0,0 %"
    ]  # fmt: skip
    assert 'href="/revision/articulos"' in html  # in the navigation
    assert "web:a" not in html and "wa:b" not in html  # no conversation ids on the page


def test_the_period_uses_the_team_days(site) -> None:
    cookies = session_cookies(site)
    _, page = site.test_client.get(
        "/revision/articulos", params={"desde": "2026-11-25", "hasta": "2026-11-28"}, cookies=cookies
    )
    html = page.text
    assert 'id="conversaciones">2<' in html and 'id="tasa">50,0 %<' in html and 'id="ofertas">0<' in html
    assert "tabla-por-articulo" in html and CARTERA not in html.split('id="tabla-por-articulo"')[1].split("</table>")[0]
    # 2026-11-20 10:00 in Bogotá is that day, not the next.
    _, one_day = site.test_client.get(
        "/revision/articulos", params={"desde": "2026-11-20", "hasta": "2026-11-20"}, cookies=cookies
    )
    assert 'id="conversaciones">1<' in one_day.text and 'id="tasa">100,0 %<' in one_day.text
    _, bad = site.test_client.get("/revision/articulos", params={"desde": "ayer"}, cookies=cookies)
    assert bad.status == 200 and "La fecha «ayer» de «Desde» no es válida" in bad.text
    _, empty = site.test_client.get("/revision/articulos", params={"desde": "2030-01-01"}, cookies=cookies)
    assert 'id="conversaciones">0<' in empty.text and "No se mostraron artículos en este periodo." in empty.text


def test_the_exports_carry_the_same_figures_and_are_logged(site) -> None:
    cookies = session_cookies(site)
    _, response = site.test_client.get("/revision/articulos.csv", cookies=cookies)
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    total = rows[0]
    assert (total["agrupacion"], total["conversaciones_con_articulos"], total["tasa_de_resolucion"]) == (
        "total",
        "4",
        "0.5",
    )
    cartera = next(r for r in rows if r["clave"] == CARTERA)
    assert (
        cartera["agrupacion"] == "articulo" and cartera["nombre"] == "Cómo eliminar o actualizar un registro de cartera"
    )
    assert (cartera["ofrecido"], cartera["vistas"], cartera["me_sirvio"], cartera["sigo_con_la_solicitud"]) == (
        "2",
        "1",
        "1",
        "1",
    )
    assert [r["clave"] for r in rows if r["agrupacion"] == "tipo_de_solicitud"] == [
        "gestion_archivos",
        "falla_experiencia_usuario",
        "",
    ]  # most conversations first, then by name
    _, filtered = site.test_client.get("/revision/articulos.json?desde=2026-11-25", cookies=cookies)
    data = json.loads(filtered.text)
    assert data[0]["conversaciones_con_articulos"] == 2 and data[0]["respuestas_directas"] == 2
    assert [r["clave"] for r in data if r["agrupacion"] == "articulo"] == [FALLA]
    _, overview = site.test_client.get("/revision/resumen", cookies=cookies)
    assert "Exportó las cifras de artículos (CSV)" in overview.text


@pytest.mark.parametrize("path", ["/revision/articulos", "/revision/articulos.csv", "/revision/articulos.json"])
def test_nothing_without_login(site, path: str) -> None:
    _, response = site.test_client.get(path, allow_redirects=False)
    assert response.status == 302 and response.headers["location"].startswith("/revision/entrar")
    assert "conversaciones_con_articulos" not in response.text


def test_a_log_that_does_not_answer_is_said_in_spanish_and_logged(site, caplog: pytest.LogCaptureFixture) -> None:
    dead = DeflectionLog("postgresql://nadie:nada@127.0.0.1:1/tickets")  # nothing listens on port 1
    site.ctx.review = dataclasses.replace(site.ctx.review, deflections=dead)
    cookies = session_cookies(site)
    with caplog.at_level(logging.ERROR):
        _, page = site.test_client.get("/revision/articulos", cookies=cookies)
        _, export = site.test_client.get("/revision/articulos.csv", cookies=cookies)
    assert page.status == 503 and "No se pudo leer los registros de la base de conocimiento" in page.text
    assert export.status == 503 and "Traceback" not in page.text + export.text
    assert "No se pudieron leer los registros de la base de conocimiento" in caplog.text


def test_unknown_articles_show_their_id_and_views_take_the_type_of_the_offer() -> None:
    events = [
        DeflectionEvent("c1", OFFERED, ("jsm-42", CARTERA), "gestion_archivos", "rest", at(1)),
        DeflectionEvent("c1", ANSWERED, (FALLA,), "falla_experiencia_usuario", "rest", at(1, 16)),
        DeflectionEvent("c1", VIEWED, ("jsm-42",), None, None, at(1, 17)),  # belongs to gestion_archivos
        DeflectionEvent("c1", VIEWED, ("jsm-42",), None, None, at(1, 18)),
        DeflectionEvent("c1", HELPFUL, ("jsm-42", CARTERA), None, None, at(1, 19)),
    ]
    found = report(events, lambda a: "Cartera" if a == CARTERA else None, {"gestion_archivos": "Gestión de archivos"})
    jsm = next(t for t in found.by_article if t.key == "jsm-42")
    assert (jsm.label, jsm.offered, jsm.viewed, jsm.helpful, jsm.rate) == ("jsm-42", 1, 2, 1, 1.0)
    by_type = {t.key: t for t in found.by_type}
    assert by_type["gestion_archivos"].viewed == 2 and by_type["falla_experiencia_usuario"].viewed == 0
    # An answer recorded without a type belongs to the offer that showed its articles, not to the latest type.
    assert by_type["gestion_archivos"].helpful == 1 and by_type["falla_experiencia_usuario"].helpful == 0
    assert by_type["falla_experiencia_usuario"].label == "falla_experiencia_usuario"  # no name given: the id
    assert (found.overall.conversations, found.overall.resolved, found.events) == (1, 1, 5)
