"""The widget's API: its upload limits, a signed chat session, and attachments.

Rasa's channels carry text, not files, so the widget uploads here and sends
the attachment's id in its next message. Every upload is refused unless it
comes from an allowed site, within the client's rate, and with a session this
server signed: the file then belongs to that conversation only.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Optional

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.attachments import AttachmentRefused
from bot.sliding_window import SlidingWindow
from bot.web.context import web_context
from bot.web.ratelimit import client_key

SESSION_INVALID = "La sesión del chat no es válida; recarga la página."
UPLOAD_RATE_LIMITED = "Estás enviando archivos demasiado rápido. Espera un momento e inténtalo de nuevo."
# AttachmentRefused code -> HTTP status of the refusal.
UPLOAD_REFUSAL_STATUS = {
    "too_large": 413,
    "type_not_allowed": 415,
    "quota_bytes": 413,
    "quota_files": 429,
    "storage_full": 507,
}


def _origin(request: Request) -> str:
    return (request.headers.get("origin") or "").rstrip("/")


def cors(request: Request, resp: HTTPResponse) -> HTTPResponse:
    """Lets an allowed embedding site read the answer; any other origin gets none of these headers."""
    origin = _origin(request)
    if origin in web_context(request).origins:
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Vary"] = "Origin"
        resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        resp.headers["Access-Control-Allow-Headers"] = "Content-Type, X-Sesion-Chat"
    return resp


def _foreign(request: Request) -> bool:
    """A browser on a site not allowed to embed the widget (no Origin: not a browser's cross-site call)."""
    origin = _origin(request)
    return bool(origin) and origin not in web_context(request).origins


def upload_session(request: Request) -> str:
    """The widget's signed session: form field ``sesion`` or header ``X-Sesion-Chat``."""
    token = request.form.get("sesion") if request.form else None
    return str(token or request.headers.get("X-Sesion-Chat") or "")


async def config(request: Request) -> HTTPResponse:
    policy = web_context(request).attachments.policy
    data = {
        "max_bytes": policy.max_bytes,
        "max_files": policy.max_files,
        "accept": ",".join(policy.extensions),
        "limits": policy.describe(),
    }
    return cors(request, response.json(data))


async def preflight(request: Request) -> HTTPResponse:
    return cors(request, response.empty())


def _too_often(request: Request, window: SlidingWindow, message: str) -> Optional[HTTPResponse]:
    """The 429 (with Retry-After) when this client address is over ``window``, else None (and counted)."""
    wait = window.wait(client_key(request, web_context(request).proxies))
    if not wait:
        return None
    refused = response.json(
        {"error": message, "code": "rate_limited"}, status=429, headers={"Retry-After": str(math.ceil(wait))}
    )
    return cors(request, refused)


SESSIONS_LIMITED = "Se abrieron demasiadas conversaciones desde tu conexión. Espera un minuto y vuelve a intentarlo."


async def new_session(request: Request) -> HTTPResponse:
    """A new signed conversation id for a widget: the only way into the web chat."""
    if _foreign(request):
        return response.json({"error": "Este sitio no puede abrir conversaciones con el asistente."}, status=403)
    context = web_context(request)
    limited = _too_often(request, context.session_rate, SESSIONS_LIMITED)
    if limited is not None:
        return limited
    issued = context.sessions.issue()
    return cors(request, response.json({"session_id": issued}, status=201, headers={"Cache-Control": "no-store"}))


async def upload(request: Request) -> HTTPResponse:
    if _foreign(request):
        return response.json({"error": "Este sitio no puede enviar archivos al asistente."}, status=403)
    context = web_context(request)
    limited = _too_often(request, context.upload_rate, UPLOAD_RATE_LIMITED)
    if limited is not None:
        return limited
    owner = context.sessions.verify(upload_session(request))
    if owner is None:
        return cors(request, response.json({"error": SESSION_INVALID, "code": "session"}, status=401))
    files = request.files.getlist("archivo") if request.files else None
    if not files:
        return cors(request, response.json({"error": "No recibí ningún archivo."}, status=400))
    sent = files[0]
    try:
        # Disk writes and the per-conversation quota's reads: off the event loop.
        stored = await asyncio.to_thread(context.attachments.save, sent.name, sent.type, sent.body, owner=owner)
    except AttachmentRefused as refused:
        status = UPLOAD_REFUSAL_STATUS.get(refused.code, 400)
        retry = status == 429 and refused.retry_after
        headers = {"Retry-After": str(math.ceil(refused.retry_after or 0))} if retry else None
        refusal = response.json({"error": refused.message, "code": refused.code}, status=status, headers=headers)
        return cors(request, refusal)
    data: dict[str, Any] = {
        "id": stored.id,
        "name": stored.name,
        "content_type": stored.content_type,
        "size": stored.size,
    }
    return cors(request, response.json(data, status=201))


def register(app: Sanic) -> None:
    app.add_route(config, "/api/config", methods=["GET"])
    app.add_route(preflight, "/api/sesion", methods=["OPTIONS"], name="session_preflight")
    app.add_route(new_session, "/api/sesion", methods=["POST"])
    app.add_route(preflight, "/api/adjuntos", methods=["OPTIONS"], name="upload_preflight")
    app.add_route(upload, "/api/adjuntos", methods=["POST"])
