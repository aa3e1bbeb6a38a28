"""``POST /webhooks/jsm``: JSM's admin webhook tells the project of agents' public comments and status changes.

Off (404) unless ``JSM_WEBHOOK_SECRET`` is set. Every delivery is hostile
until its signature is checked (bot/tickets/jsm_webhook.py); the answers
are the ones Jira acts on: 200 handled (also for a repeated delivery,
which records nothing), 401 bad or missing signature, 400 malformed or
stale, 413 too large (none of these is retried), 503 while the database
or JSM cannot be reached (Jira retries for about half an hour; polling
catches whatever is still missed).
"""

from __future__ import annotations

import asyncio
import logging

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.tickets.jsm_webhook import MAX_BODY, WebhookRefused
from bot.web.context import web_context

logger = logging.getLogger(__name__)

ROUTE = "/webhooks/jsm"


async def jsm_webhook(request: Request) -> HTTPResponse:
    handler = web_context(request).jsm_webhook
    if handler is None:
        return response.json({"error": "no encontrado"}, status=404)
    body = request.body or b""
    if len(body) > MAX_BODY:
        return response.json({"error": "el cuerpo es demasiado grande"}, status=413)
    headers = {name: value for name, value in request.headers.items()}
    try:
        recorded = await asyncio.to_thread(handler.handle, body, headers)
    except WebhookRefused as refused:
        if refused.status >= 500:
            logger.warning("JSM webhook answered %d: %s", refused.status, refused)
        else:
            logger.info("JSM webhook refused (%d): %s", refused.status, refused)
        return response.json({"error": str(refused)}, status=refused.status)
    except Exception:  # noqa: BLE001 - whatever a hostile body triggers, Jira gets a retryable answer, not a 500
        logger.exception("JSM webhook: unexpected error")
        return response.json({"error": "no se pudo procesar el evento; reintenta más tarde"}, status=503)
    return response.json({"registrado": recorded})


def register(app: Sanic) -> None:
    app.add_route(jsm_webhook, ROUTE, methods=["POST"], name="jsm_webhook")
