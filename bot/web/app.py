"""The project's web server: the chat page, the embeddable widget and uploads.

Served on ``WEB_PORT`` by ``python -m bot web`` (started by ``make run``).
The widget talks to Rasa's socket.io channel directly; this server only hands
out the page and the script, and receives attachments, because Rasa's
channels carry text, not files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.attachments import AttachmentRefused, AttachmentStore
from bot.catalog import Catalog, get_catalog
from bot.settings import PROJECT_ROOT, Settings

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
SOCKET_IO_CLIENT = PROJECT_ROOT / "widget" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"


def templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html", "xml"]),
    )


def allowed_origins(settings: Settings) -> set[str]:
    """Sites allowed to embed the widget and upload through it (``WEB_ALLOWED_ORIGINS``)."""
    configured = os.environ.get("WEB_ALLOWED_ORIGINS", "")
    origins = {o.strip().rstrip("/") for o in configured.split(",") if o.strip()}
    origins |= {f"http://localhost:{settings.web_port}", f"http://127.0.0.1:{settings.web_port}"}
    return origins


def rasa_public_url(request: Request, settings: Settings) -> str:
    """Where browsers reach Rasa: ``RASA_PUBLIC_URL``, else this host on ``RASA_PORT``."""
    configured = os.environ.get("RASA_PUBLIC_URL", "").strip().rstrip("/")
    if configured:
        return configured
    host = urlsplit(f"//{request.host}").hostname or "localhost"
    return f"{request.scheme}://{host}:{settings.rasa_port}"


def _cors(request: Request, resp: HTTPResponse, origins: set[str]) -> HTTPResponse:
    origin = (request.headers.get("origin") or "").rstrip("/")
    if origin in origins:
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Vary"] = "Origin"
        resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        resp.headers["Access-Control-Allow-Headers"] = "Content-Type"
    return resp


def _static(name: str, content_type: str) -> HTTPResponse:
    return response.raw(
        (STATIC / name).read_bytes(),
        content_type=content_type,
        headers={"Cache-Control": "no-cache"},
    )


def create_app(
    settings: Optional[Settings] = None,
    catalog: Optional[Catalog] = None,
    name: str = "soporte_ecollect_web",
) -> Sanic:
    settings = settings or Settings.from_env()
    catalog = catalog or get_catalog()
    store = AttachmentStore.from_settings(catalog)
    origins = allowed_origins(settings)
    pages = templates()
    app = Sanic(name)
    app.config.REQUEST_MAX_SIZE = store.policy.max_bytes + 1024 * 1024  # multipart overhead
    app.ctx.settings = settings

    @app.get("/")
    async def index(request: Request) -> HTTPResponse:
        html = pages.get_template("index.html").render(
            portal=catalog.portal,
            categories=catalog.categories,
            rasa_url=rasa_public_url(request, settings),
        )
        return response.html(html, headers={"Content-Security-Policy": _page_csp(request, settings)})

    @app.get("/integracion")
    async def embed_example(request: Request) -> HTTPResponse:
        """The one-tag embed snippet, and the floating widget it produces."""
        widget_url = f"{request.scheme}://{request.host}/widget.js"
        rasa_url = rasa_public_url(request, settings)
        snippet = f'<script src="{widget_url}" data-rasa-url="{rasa_url}" defer></script>'
        html = pages.get_template("integracion.html").render(
            portal=catalog.portal, snippet=snippet, widget_url=widget_url, rasa_url=rasa_url
        )
        return response.html(html, headers={"Content-Security-Policy": _page_csp(request, settings)})

    @app.get("/widget.js")
    async def widget_js(_: Request) -> HTTPResponse:
        return _static("widget.js", "application/javascript; charset=utf-8")

    @app.get("/widget.css")
    async def widget_css(_: Request) -> HTTPResponse:
        return _static("widget.css", "text/css; charset=utf-8")

    @app.get("/vendor/socket.io.min.js")
    async def socket_io(_: Request) -> HTTPResponse:
        if not SOCKET_IO_CLIENT.exists():
            return response.text(
                "Falta socket.io-client: ejecuta `make install` (instala widget/node_modules).", status=503
            )
        return response.raw(
            SOCKET_IO_CLIENT.read_bytes(),
            content_type="application/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/api/config")
    async def config(request: Request) -> HTTPResponse:
        policy = store.policy
        data = {
            "max_bytes": policy.max_bytes,
            "max_files": policy.max_files,
            "accept": ",".join(policy.extensions),
            "limits": policy.describe(),
        }
        return _cors(request, response.json(data), origins)

    @app.route("/api/adjuntos", methods=["OPTIONS"])
    async def upload_preflight(request: Request) -> HTTPResponse:
        return _cors(request, response.empty(), origins)

    @app.post("/api/adjuntos")
    async def upload(request: Request) -> HTTPResponse:
        origin = (request.headers.get("origin") or "").rstrip("/")
        if origin and origin not in origins:
            return response.json({"error": "Este sitio no puede enviar archivos al asistente."}, status=403)
        files = request.files.getlist("archivo") if request.files else None
        if not files:
            return _cors(request, response.json({"error": "No recibí ningún archivo."}, status=400), origins)
        upload = files[0]
        try:
            stored = store.save(upload.name, upload.type, upload.body)
        except AttachmentRefused as refused:
            status = 413 if refused.code == "too_large" else 415 if refused.code == "type_not_allowed" else 400
            return _cors(request, response.json({"error": refused.message, "code": refused.code}, status=status), origins)
        data: dict[str, Any] = {
            "id": stored.id,
            "name": stored.name,
            "content_type": stored.content_type,
            "size": stored.size,
        }
        return _cors(request, response.json(data, status=201), origins)

    # Transcript review for support leads (login required), same process and port.
    from bot.review.web import review_blueprint

    app.blueprint(review_blueprint(settings, catalog))

    @app.get("/salud")
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    return app


def _page_csp(request: Request, settings: Settings) -> str:
    """The chat page loads only its own scripts and talks only to itself and Rasa."""
    rasa = rasa_public_url(request, settings)
    ws = rasa.replace("https://", "wss://").replace("http://", "ws://")
    return (
        "default-src 'self'; "
        f"connect-src 'self' {rasa} {ws}; "
        "img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
    )


def serve(settings: Settings) -> None:
    """``python -m bot web``: one process, no auto-reload, quiet access log."""
    app = create_app(settings)
    app.run(host="0.0.0.0", port=settings.web_port, access_log=False, workers=1, motd=False)
