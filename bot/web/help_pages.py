"""The customer's side of the knowledge base on the web server: the counted links and the embedded articles.

Every article the assistant shows carries a link ``/ayuda/v/<token>``: the
token names a link the knowledge base's log stored when it made the offer
(bot/kb/deflections.py), so following it counts a view for the conversation
that was shown it, and the redirect goes only where that stored link says:
JSM's page for the article, or ``/ayuda/articulos/<id>`` for an embedded one.
Nothing a visitor writes in the URL becomes a destination (no open redirect).

Tokens and article ids are checked against their shapes before any look-up:
hostile paths (long, encoded slashes, odd characters) are a Spanish 404, a
database that does not answer a Spanish 503 with the cause logged, never a
traceback. The pages have no scripts; Markdown bodies reach them through
bot/web/article_html.py, which shows raw HTML as text.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Optional
from urllib.parse import urlsplit

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.kb.articles import ARTICLE_ID
from bot.kb.deflections import DeflectionError
from bot.web.article_html import article_html
from bot.web.context import HERE, WebContext, web_context

logger = logging.getLogger(__name__)

PREFIX = "/ayuda"
TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,32}$")  # bot/kb/deflections.py hands out 16 URL-safe characters
MAX_URL = 2048
STYLESHEET = HERE / "static" / "ayuda.css"
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
NOT_FOUND = (
    "Este enlace no existe o ya no es válido. Vuelve a la conversación con el asistente y pídele el artículo otra vez."
)
NO_ARTICLE = "No encontramos ese artículo. Puede que la Mesa de ayuda lo haya retirado o cambiado de nombre."
UNAVAILABLE = (
    "En este momento no podemos abrir el artículo. Inténtalo de nuevo en unos minutos; "
    "si necesitas ayuda ya, sigue con tu solicitud en la conversación con el asistente."
)


def article_path(article_id: str) -> str:
    return f"{PREFIX}/articulos/{article_id}"


def link_path(token: str) -> str:
    return f"{PREFIX}/v/{token}"


def _headers(resp: HTTPResponse, cache: str = "no-cache") -> HTTPResponse:
    """Like the web app's other pages, with no scripts at all; a followed link is never cached or referred."""
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = cache
    return resp


def _page(
    context: WebContext, template: str, status: int = 200, cache: str = "no-cache", **values: object
) -> HTTPResponse:
    html = context.pages.get_template(template).render(portal=context.catalog.portal, prefix=PREFIX, **values)
    return _headers(response.html(html, status=status), cache)


def _error(context: WebContext, status: int, message: str, cache: str = "no-cache") -> HTTPResponse:
    title = "No encontrado" if status == 404 else "No disponible por ahora"
    return _page(context, "ayuda_error.html", status, cache, title=title, message=message)


def web_address(url: Optional[str]) -> Optional[str]:
    """``url`` when it is an absolute http(s) address a Location header may carry; else None."""
    if not url or len(url) > MAX_URL or any(ch.isspace() or not ch.isprintable() for ch in url) or "\\" in url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


async def follow(request: Request, token: str) -> HTTPResponse:
    """A link the assistant showed: count the view, then go where the stored link says."""
    context = web_context(request)
    if not TOKEN.match(token):
        return _error(context, 404, NOT_FOUND, "no-store")
    try:
        target = await asyncio.to_thread(context.deflections.view, token)
    except DeflectionError as exc:
        logger.error("enlace de artículo /ayuda/v/%s: %s", token, exc)
        return _error(context, 503, UNAVAILABLE, "no-store")
    if target is None:
        return _error(context, 404, NOT_FOUND, "no-store")
    destination = web_address(target.url)
    if destination is None and target.url:
        logger.error("enlace de artículo %s: la dirección guardada no es http(s); no se redirige", target.article_id)
    if destination is None and ARTICLE_ID.match(target.article_id):
        destination = article_path(target.article_id)
    if destination is None:
        return _error(context, 404, NO_ARTICLE, "no-store")
    return _headers(response.redirect(destination), "no-store")


async def article(request: Request, article_id: str) -> HTTPResponse:
    """An embedded article of ``kb/`` as a page (JSM's articles live on JSM's site)."""
    context = web_context(request)
    if not ARTICLE_ID.match(article_id):
        return _error(context, 404, NO_ARTICLE)
    found = await asyncio.to_thread(context.knowledge.embedded.get, article_id)
    if found is None:
        return _error(context, 404, NO_ARTICLE)
    body = await asyncio.to_thread(article_html, found.body)
    return _page(context, "ayuda_articulo.html", article=found, body=body)


async def index(request: Request) -> HTTPResponse:
    """Every embedded article, by title: what the assistant can answer from."""
    context = web_context(request)
    articles = await asyncio.to_thread(context.knowledge.embedded.articles)
    listed = sorted(articles, key=lambda a: a.title.casefold())
    return _page(context, "ayuda_indice.html", articles=listed, article_path=article_path)


async def stylesheet(_: Request) -> HTTPResponse:
    return response.raw(
        STYLESHEET.read_bytes(), content_type="text/css; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


def register(app: Sanic) -> None:
    # ``path`` parameters: a token or id with (encoded) slashes reaches the shape check and gets the Spanish 404.
    app.add_route(follow, f"{PREFIX}/v/<token:path>", methods=["GET"])
    app.add_route(article, f"{PREFIX}/articulos/<article_id:path>", methods=["GET"])
    app.add_route(index, PREFIX, methods=["GET"])
    app.add_route(stylesheet, f"{PREFIX}/estilos.css", methods=["GET"])
