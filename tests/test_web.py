"""The web server: page, widget files, upload limits and origins; the attachment store."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sanic_testing import TestManager

from bot.attachments import AttachmentPolicy, AttachmentRefused, AttachmentStore, safe_filename
from bot.catalog import Catalog, get_catalog
from bot.channels.web_session import SessionSigner
from bot.settings import Settings
from bot.web.app import create_app

_names = itertools.count()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def web(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WEB_ALLOWED_ORIGINS", "https://www.cliente.com.co")
    app = create_app(Settings.from_env(), name=f"web_test_{next(_names)}")
    TestManager(app)
    return app


def session() -> str:
    """A signed web chat session, as /api/sesion hands the widget."""
    return SessionSigner(Settings.from_env().secrets.web_session_secret).issue()


def upload(web, name: str, data: bytes, content_type: str, origin: str | None = None):
    headers = {"origin": origin} if origin else {}
    _, response = web.test_client.post(
        "/api/adjuntos", files={"archivo": (name, data, content_type)}, data={"sesion": session()}, headers=headers
    )
    return response


def test_page_embeds_the_widget_pointing_at_rasa(web, catalog: Catalog) -> None:
    _, response = web.test_client.get("/")
    assert response.status == 200
    html = response.text
    assert 'src="/widget.js"' in html and "data-rasa-url=" in html
    assert 'lang="es"' in html
    for category in catalog.categories:
        assert category.name.replace("'", "&#39;") in html
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "ws://" in csp


def test_embed_page_shows_the_one_tag_snippet(web) -> None:
    _, response = web.test_client.get("/integracion")
    assert response.status == 200
    assert "&lt;script src=&#34;" in response.text or "&lt;script src=&quot;" in response.text
    assert response.text.count("/widget.js") >= 2  # shown as text and used by the page


def test_widget_and_socket_io_client_are_served(web) -> None:
    _, js = web.test_client.get("/widget.js")
    assert js.status == 200 and "session_request" in js.text and "innerHTML" not in js.text
    _, css = web.test_client.get("/widget.css")
    assert css.status == 200 and ".panel" in css.text
    _, vendor = web.test_client.get("/vendor/socket.io.min.js")
    assert vendor.status == 200, "widget/node_modules missing: run `make install`"
    assert "io" in vendor.text[:2000]


def test_upload_config_comes_from_the_catalog(web, catalog: Catalog) -> None:
    _, response = web.test_client.get("/api/config")
    spec = catalog.attachment_field
    assert response.json["max_bytes"] == spec.max_bytes
    assert ".pdf" in response.json["accept"].split(",")


def test_a_valid_upload_is_stored(web, tmp_path: Path) -> None:
    response = upload(web, "captura del error.png", PNG, "image/png")
    assert response.status == 201
    body = response.json
    assert body["name"] == "captura del error.png" and body["size"] == len(PNG)
    stored = AttachmentStore.from_settings(get_catalog(), Settings.from_env()).get(body["id"])
    assert stored is not None and Path(stored.path).read_bytes() == PNG
    assert Path(stored.path).is_relative_to(tmp_path)


@pytest.mark.parametrize(
    "name, data, content_type, status, words",
    [
        ("virus.exe", b"MZ" * 10, "application/octet-stream", 415, "Tipos permitidos"),
        ("vacio.pdf", b"", "application/pdf", 400, "vacío"),
    ],
)
def test_refused_uploads_say_why_in_spanish(web, name, data, content_type, status, words) -> None:
    response = upload(web, name, data, content_type)
    assert response.status == status
    assert words in response.json["error"]


def test_too_large_upload_is_refused(web, catalog: Catalog) -> None:
    big = b"x" * (catalog.attachment_field.max_bytes + 1)
    response = upload(web, "grande.pdf", big, "application/pdf")
    assert response.status == 413
    assert "máximo" in response.json["error"]


def test_upload_without_file(web) -> None:
    _, response = web.test_client.post("/api/adjuntos", data={"x": "1", "sesion": session()})
    assert response.status == 400 and response.json["error"] == "No recibí ningún archivo."


def test_embedding_origins(web) -> None:
    allowed = upload(web, "a.png", PNG, "image/png", origin="https://www.cliente.com.co")
    assert allowed.status == 201
    assert allowed.headers["access-control-allow-origin"] == "https://www.cliente.com.co"
    foreign = upload(web, "a.png", PNG, "image/png", origin="https://malicioso.example")
    assert foreign.status == 403


def test_safe_filenames() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\ana\\reporte ñandú.xlsx") == "reporte ñandú.xlsx"
    assert safe_filename("<script>.pdf") == "script_.pdf"
    assert safe_filename("") == "adjunto"


def test_store_resolves_only_real_ids(tmp_path: Path, catalog: Catalog) -> None:
    store = AttachmentStore(tmp_path, AttachmentPolicy(catalog.attachment_field))
    stored = store.save("error.png", "image/png", PNG, owner="web:conversacion-de-ana-1")
    references = [{"id": stored.id, "path": "/etc/shadow"}, {"id": "../../x"}, {"id": "a" * 24}, "nada"]
    resolved = store.resolve(references, owner="web:conversacion-de-ana-1")
    assert resolved == [stored.as_metadata()]


def test_policy_accepts_csv_declared_as_excel_and_whatsapp_media_without_extension(catalog: Catalog) -> None:
    policy = AttachmentPolicy(catalog.attachment_field)
    assert policy.check("cartera.csv", "application/vnd.ms-excel", 10) == "text/csv"
    assert policy.check("media", "image/jpeg", 10) == "image/jpeg"
    with pytest.raises(AttachmentRefused):
        policy.check("media", "application/x-msdownload", 10)
