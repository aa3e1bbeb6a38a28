"""The help pages of the web server: counted links to articles, and the embedded articles as pages.

Real app over real SQLite files (the tickets database holds the knowledge
base's link log) and a real folder of articles; the dead database is a
PostgreSQL URL nothing listens on.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from urllib.parse import quote

import pytest
from sanic_testing import TestManager

from bot.kb.deflections import OFFERED, VIEWED, DeflectionLog
from bot.kb.model import JSM, Article
from bot.settings import Settings
from bot.web.app import create_app
from tests.hostile import HOSTILE_MESSAGES

_names = itertools.count()
JSM_URL = "https://ecollect.atlassian.net/servicedesk/customer/kb/view/42?x=1&y=2"
PORTAL = Article("jsm-42", "Reporte de transacciones", url=JSM_URL, source=JSM)
HOSTILE_ARTICLE = """---
title: Artículo con <b>marcas</b>
request_types: [gestion_archivos]
keywords: [prueba]
---
Texto normal con **negrita** y <script>alert('x')</script> en medio.

<iframe src="https://malo.example"></iframe>

[un enlace peligroso](javascript:alert(1)) y [uno bueno](https://www.ecollect.co)
"""
PLAIN_ARTICLE = """---
title: Cómo descargar el reporte de transacciones
request_types: [gestion_archivos]
keywords: [reporte, descargar]
excerpt: El reporte se descarga desde el Módulo administrativo.
---
El reporte se descarga desde el **Módulo administrativo**.

## Pasos

1. Entra al módulo.
2. Elige «Reportes».
"""


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "descargar-reporte.md").write_text(PLAIN_ARTICLE, encoding="utf-8")
    (folder / "con-marcas.md").write_text(HOSTILE_ARTICLE, encoding="utf-8")
    return folder


def make_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kb_dir: Path, deflections: DeflectionLog | None = None):
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    for name in ("TICKETS_DB_URL", "TRACKER_DB_URL", "REVIEW_DB_URL", "REDIS_URL", "JSM_SITE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KB_DIR", str(kb_dir))
    monkeypatch.setenv("KB_BACKEND", "embedded")
    app = create_app(Settings.from_env(), name=f"help_test_{next(_names)}", deflections=deflections)
    TestManager(app)
    return app


@pytest.fixture
def web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kb_dir: Path):
    return make_app(tmp_path, monkeypatch, kb_dir)


def offer(web, conversation: str = "web:ana") -> tuple[str, str]:
    """What the dialogue does when it shows two articles: one link token each (embedded, JSM)."""
    embedded = web.ctx.knowledge.embedded.get("descargar-reporte")
    assert embedded is not None
    first, second = web.ctx.deflections.offer(
        conversation, OFFERED, [embedded, PORTAL], request_type="gestion_archivos", channel="socketio"
    )
    return first, second


def viewed(web) -> list[tuple[str, tuple[str, ...]]]:
    return [(e.conversation_id, e.article_ids) for e in web.ctx.deflections.events() if e.event == VIEWED]


def test_a_jsm_link_counts_a_view_and_redirects_to_the_stored_url_only(web) -> None:
    _, jsm_token = offer(web)
    _, response = web.test_client.get(f"/ayuda/v/{jsm_token}", allow_redirects=False)
    assert response.status == 302
    assert response.headers["location"] == JSM_URL
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert viewed(web) == [("web:ana", ("jsm-42",))]
    # A visitor cannot steer it: extra path or query changes nothing but the 404.
    _, steered = web.test_client.get(f"/ayuda/v/{jsm_token}?url=https://malo.example", allow_redirects=False)
    assert steered.status == 302 and steered.headers["location"] == JSM_URL
    _, other = web.test_client.get(f"/ayuda/v/{jsm_token}/https://malo.example", allow_redirects=False)
    assert other.status == 404 and "malo.example" not in (other.headers.get("location") or "")
    assert len(viewed(web)) == 2


def test_an_embedded_link_counts_a_view_and_opens_the_article_page(web) -> None:
    token, _ = offer(web)
    _, response = web.test_client.get(f"/ayuda/v/{token}", allow_redirects=False)
    assert response.status == 302
    assert response.headers["location"] == "/ayuda/articulos/descargar-reporte"
    _, page = web.test_client.get(response.headers["location"])
    assert page.status == 200
    assert "<h1" in page.text and "Cómo descargar el reporte de transacciones" in page.text
    assert "<strong>Módulo administrativo</strong>" in page.text and "<ol>" in page.text
    assert viewed(web) == [("web:ana", ("descargar-reporte",))]


def test_unknown_and_hostile_tokens_are_a_spanish_404_and_count_nothing(web) -> None:
    offer(web)
    hostile = [
        "noexiste1234567", "x" * 5000, "a%2Fb%2Fc", "..%2F..%2Fetc%2Fpasswd", "%00%0d%0aSet-Cookie:x=1",
        "<script>alert(1)</script>", "ñandú-token", "'%20OR%201=1--", "%E2%80%AE", "a/b", "",
    ] + [quote(m, safe="") for m in HOSTILE_MESSAGES]  # fmt: skip
    for token in hostile:
        _, response = web.test_client.get(f"/ayuda/v/{token}", allow_redirects=False)
        assert "location" not in response.headers
        if len(token) > 8000:  # past Sanic's request-line limit: its own 413, before any handler
            assert response.status == 413
            continue
        assert response.status == 404, (token[:80], response.status)
        assert "no existe" in response.text.lower() or "no encontr" in response.text.lower()
        assert "<script>alert" not in response.text
    assert viewed(web) == []


def test_a_stored_address_that_is_not_the_web_is_never_a_redirect_target(web) -> None:
    bad = [
        Article("jsm-7", "Raro", url="javascript:alert(1)", source=JSM),
        Article("jsm-8", "Sin esquema", url="//malo.example/x", source=JSM),
        Article("jsm-9", "Con salto", url="https://bien.example/\r\nSet-Cookie: a=b", source=JSM),
    ]
    tokens = web.ctx.deflections.offer("web:eve", OFFERED, bad)
    for token, article in zip(tokens, bad, strict=True):
        _, response = web.test_client.get(f"/ayuda/v/{token}", allow_redirects=False)
        assert response.status == 302, article
        assert response.headers["location"] == f"/ayuda/articulos/{article.id}"  # our page: it says «no encontrado»


def test_a_database_that_does_not_answer_is_a_spanish_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kb_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = DeflectionLog("postgresql://nadie:nada@127.0.0.1:1/tickets")  # nothing listens on port 1
    app = make_app(tmp_path, monkeypatch, kb_dir, deflections=dead)
    with caplog.at_level(logging.ERROR):
        _, response = app.test_client.get("/ayuda/v/AbCdEfGh12345678", allow_redirects=False)
    assert response.status == 503
    assert "no podemos abrir el artículo" in response.text
    assert "Traceback" not in response.text and "postgresql" not in response.text
    assert response.headers["cache-control"] == "no-store"
    assert any("/ayuda/v/" in r.getMessage() for r in caplog.records)


def test_the_article_page_shows_raw_html_as_text_and_drops_unsafe_links(web) -> None:
    _, page = web.test_client.get("/ayuda/articulos/con-marcas")
    assert page.status == 200
    html = page.text
    assert "<script" not in html and "<iframe" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(" in html and "&lt;iframe" in html
    assert "Artículo con &lt;b&gt;marcas&lt;/b&gt;" in html
    assert "javascript:" not in html
    assert '<a href="https://www.ecollect.co" rel="noopener noreferrer">uno bueno</a>' in html
    assert "<strong>negrita</strong>" in html
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    _, css = web.test_client.get("/ayuda/estilos.css")
    assert css.status == 200 and ".ayuda__article" in css.text


@pytest.mark.parametrize(
    "article_id",
    ["no-existe", "README", "readme", "..%2Fkb%2Fcon-marcas", "%2e%2e%2fsettings", "con-marcas.md", "A" * 500,
     "con-marcas/extra", "jsm-42", "con marcas", "%00"],
)  # fmt: skip
def test_unknown_or_malformed_article_ids_are_a_spanish_404(web, article_id: str) -> None:
    _, page = web.test_client.get(f"/ayuda/articulos/{article_id}")
    assert page.status == 404
    assert "No encontramos ese artículo" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


def test_an_article_added_to_the_folder_gets_its_page_without_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kb_dir: Path
) -> None:
    monkeypatch.setenv("KB_RESCAN_SECONDS", "0")
    app = make_app(tmp_path, monkeypatch, kb_dir)
    _, before = app.test_client.get("/ayuda/articulos/nuevo-articulo")
    assert before.status == 404
    (kb_dir / "nuevo-articulo.md").write_text(
        PLAIN_ARTICLE.replace("Cómo descargar el reporte", "Artículo recién agregado"), encoding="utf-8"
    )
    _, after = app.test_client.get("/ayuda/articulos/nuevo-articulo")
    assert after.status == 200 and "Artículo recién agregado" in after.text
    _, listing = app.test_client.get("/ayuda")
    assert listing.status == 200
    assert 'href="/ayuda/articulos/nuevo-articulo"' in listing.text
    assert "El reporte se descarga desde el Módulo administrativo." in listing.text  # the excerpt
    assert "Artículo con &lt;b&gt;marcas&lt;/b&gt;" in listing.text
