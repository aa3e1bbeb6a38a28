"""The project's web server: the chat page, the embeddable widget, uploads and the leads' review.

Served on ``WEB_PORT`` by ``python -m bot web`` (started by ``make run``).
The widget talks to Rasa's socket.io channel directly; this server only hands
out the page and the script, receives attachments (``bot/web/uploads.py``),
because Rasa's channels carry text, not files, serves the knowledge base's
articles and counted links (``/ayuda``, bot/web/help_pages.py) and the review
pages (``bot/review/``) on the same port.
"""

from __future__ import annotations

import re
from typing import Any, Optional
from urllib.parse import urlsplit

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.attachments import sweep_periodically
from bot.catalog import Catalog, get_catalog
from bot.kb import KnowledgeBase
from bot.kb.deflections import DeflectionLog
from bot.review.web import review_blueprint
from bot.settings import PROJECT_ROOT, Settings
from bot.tickets import TicketStore
from bot.web import help_pages, jsm_webhook, uploads
from bot.web.context import HERE, WebContext, web_context
from bot.web.uploads import SESSION_INVALID

__all__ = ["SESSION_INVALID", "create_app", "serve"]

STATIC = HERE / "static"
SOCKET_IO_CLIENT = PROJECT_ROOT / "widget" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"


_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


def request_host(request: Request) -> tuple[str, Optional[int]]:
    """The Host header's name and port, when it is a plain host name or IPv4; else localhost.

    The header is the client's to write: a malformed one (``[``) must not be
    a 500, and nothing but a host name may reach the page, its CSP or the
    embed snippet.
    """
    try:
        parts = urlsplit(f"//{request.host}")
        name, port = parts.hostname or "", parts.port
    except ValueError:
        return "localhost", None
    return (name, port) if _HOST.match(name) else ("localhost", None)


def rasa_public_url(request: Request, settings: Settings) -> str:
    """Where browsers reach Rasa: ``RASA_PUBLIC_URL``, else this host on ``RASA_PORT``."""
    if settings.web.rasa_public_url:
        return settings.web.rasa_public_url
    return f"{request.scheme}://{request_host(request)[0]}:{settings.rasa_port}"


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


def _static(name: str, content_type: str) -> HTTPResponse:
    return response.raw((STATIC / name).read_bytes(), content_type=content_type, headers={"Cache-Control": "no-cache"})


async def index(request: Request) -> HTTPResponse:
    context = web_context(request)
    html = context.pages.get_template("index.html").render(
        portal=context.catalog.portal,
        categories=context.catalog.categories,
        rasa_url=rasa_public_url(request, context.settings),
    )
    return response.html(html, headers={"Content-Security-Policy": _page_csp(request, context.settings)})


async def embed_example(request: Request) -> HTTPResponse:
    """The one-tag embed snippet, and the floating widget it produces."""
    context = web_context(request)
    name, port = request_host(request)
    widget_url = f"{request.scheme}://{name}{f':{port}' if port else ''}/widget.js"
    rasa_url = rasa_public_url(request, context.settings)
    snippet = f'<script src="{widget_url}" data-rasa-url="{rasa_url}" defer></script>'
    html = context.pages.get_template("integracion.html").render(
        portal=context.catalog.portal, snippet=snippet, widget_url=widget_url, rasa_url=rasa_url
    )
    return response.html(html, headers={"Content-Security-Policy": _page_csp(request, context.settings)})


async def widget_js(_: Request) -> HTTPResponse:
    return _static("widget.js", "application/javascript; charset=utf-8")


async def widget_css(_: Request) -> HTTPResponse:
    return _static("widget.css", "text/css; charset=utf-8")


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


async def health(_: Request) -> HTTPResponse:
    return response.json({"status": "ok"})


async def start_attachment_sweep(app: Sanic, _loop: Any) -> None:
    """Files no ticket took are removed in the background (bot/attachments.py)."""
    context: WebContext = app.ctx
    context.attachment_sweep = app.loop.create_task(sweep_periodically(context.attachments, context.tickets))


async def stop_attachment_sweep(app: Sanic, _loop: Any) -> None:
    context: WebContext = app.ctx
    if context.attachment_sweep is not None:
        context.attachment_sweep.cancel()


def create_app(
    settings: Settings,
    catalog: Optional[Catalog] = None,
    name: str = "soporte_ecollect_web",
    *,
    tickets: Optional[TicketStore] = None,
    knowledge: Optional[KnowledgeBase] = None,
    deflections: Optional[DeflectionLog] = None,
) -> Sanic:
    """The web server over ``settings``; its services are built here, once (``app.ctx``: a ``WebContext``).

    ``catalog``, ``tickets``, ``knowledge`` and ``deflections`` may come from
    the composition root; by default the packaged catalog, and a ticket store,
    knowledge base and link log built from ``settings``.
    """
    catalog = catalog or get_catalog()
    context = WebContext.build(settings, catalog, tickets, knowledge, deflections)
    app = Sanic(name, ctx=context)
    app.config.REQUEST_MAX_SIZE = context.attachments.policy.max_bytes + 1024 * 1024  # multipart overhead
    app.register_listener(start_attachment_sweep, "after_server_start")
    app.register_listener(stop_attachment_sweep, "before_server_stop")
    app.add_route(index, "/", methods=["GET"])
    app.add_route(embed_example, "/integracion", methods=["GET"])
    app.add_route(widget_js, "/widget.js", methods=["GET"])
    app.add_route(widget_css, "/widget.css", methods=["GET"])
    app.add_route(socket_io, "/vendor/socket.io.min.js", methods=["GET"])
    app.add_route(health, "/salud", methods=["GET"])
    uploads.register(app)
    help_pages.register(app)  # /ayuda: the knowledge base's articles and the counted links to them
    jsm_webhook.register(app)  # JSM's agents' comments and status changes (off without JSM_WEBHOOK_SECRET)
    # Transcript review for support leads (login required), same process and port.
    app.blueprint(review_blueprint())
    return app


def serve(settings: Settings) -> None:
    """``python -m bot web``: one process, no auto-reload, quiet access log."""
    app = create_app(settings)
    app.run(host="0.0.0.0", port=settings.web_port, access_log=False, workers=1, motd=False)
