"""The action server (``python -m bot.action_server``), reachable only by Rasa.

rasa_sdk's server listens on every interface and accepts any caller. Here it
binds to loopback by default (``ACTIONS_HOST``), refuses calls that do not
carry ``ACTIONS_TOKEN`` (Rasa sends it from endpoints.yml), and does not
start without one.

It is also where the actions get their services: the ticket store, the
attachment store, JSM's live status and the mail threads are built once at
start-up and handed to action instances, registered one by one (rasa_sdk's
``create_app`` would scan the package and build the actions itself, without
them). The routes are rasa_sdk's own, with its error handling.
"""

from __future__ import annotations

import hmac
import json
import logging
import zlib
from typing import Any, Iterable, Optional

from bot.rasa_ext.warnings_options import honour_warning_options

# Before rasa_sdk's imports print their deprecation notices: the imports below
# come after it on purpose (E402).
honour_warning_options()

from rasa_sdk import Action, utils  # noqa: E402  # after honour_warning_options()
from rasa_sdk.endpoint import configure_cors  # noqa: E402  # after honour_warning_options()
from rasa_sdk.executor import ActionExecutor  # noqa: E402  # after honour_warning_options()
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException  # noqa: E402  # after honour_warning_options()
from sanic import Sanic, response  # noqa: E402  # after honour_warning_options()
from sanic.request import Request  # noqa: E402  # after honour_warning_options()
from sanic.response import HTTPResponse  # noqa: E402  # after honour_warning_options()

from actions.actions import all_actions  # noqa: E402  # after honour_warning_options()
from bot.services import action_services  # noqa: E402  # after honour_warning_options()
from bot.settings import Settings  # noqa: E402  # after honour_warning_options()

logger = logging.getLogger(__name__)

# Rasa keeps connections open (bot.rasa_runtime, 30 s idle); the server must
# keep them longer so a reused connection is never closed under it.
KEEP_ALIVE_SECONDS = 60


def _action_call(request: Request) -> Optional[dict[str, Any]]:
    if request.headers.get("Content-Encoding") == "deflate":
        return json.loads(zlib.decompress(request.body))
    return request.json


def build_app(token: str, actions: Iterable[Action]) -> Sanic:
    """rasa_sdk's action endpoint for ``actions``, behind ``token``."""
    if not token:
        raise ValueError("the action server needs its token")
    executor = ActionExecutor()
    for action in actions:
        executor.register_action(action)
    app = Sanic("acciones", configure_logging=False)
    configure_cors(app, [])  # only Rasa calls it: no browser origin at all
    app.config.KEEP_ALIVE_TIMEOUT = KEEP_ALIVE_SECONDS

    @app.middleware("request")
    async def require_token(request: Request) -> Optional[HTTPResponse]:
        if request.path == "/health":
            return None
        offered = request.args.get("token") or ""
        if not hmac.compare_digest(offered.encode("utf-8"), token.encode("utf-8")):
            return response.json({"error": "no autorizado"}, status=401)
        return None

    @app.get("/health")
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"}, status=200)

    @app.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        action_call = _action_call(request)
        if action_call is None:
            return response.json({"error": "Invalid body request"}, status=400)
        utils.check_version_compatibility(action_call.get("version"))
        try:
            result = await executor.run(action_call)
        except ActionExecutionRejection as e:
            logger.debug(e)
            return response.json({"error": e.message, "action_name": e.action_name}, status=400)
        except ActionNotFoundException as e:
            logger.error(e)
            return response.json({"error": e.message, "action_name": e.action_name}, status=404)
        return response.json(result, status=200)

    @app.get("/actions")
    async def listed(_: Request) -> HTTPResponse:
        return response.json([{"name": name} for name in executor.actions], status=200)

    @app.exception(Exception)
    async def exception_handler(request: Request, exception: Exception) -> HTTPResponse:
        logger.error(msg=f"Exception occurred during execution of request {request}", exc_info=exception)
        return response.json({"error": str(exception), "request_body": request.json}, status=500)

    return app


def main() -> None:
    settings = Settings.from_env()
    host = settings.runtime.actions_host
    token = settings.secrets.configured.get("actions_token", "").strip()
    logging.basicConfig(level=logging.INFO)
    if not token:
        # Without it anyone who reaches the port could set any slot of any
        # conversation; `python -m bot run` always passes one.
        raise SystemExit(
            "ACTIONS_TOKEN está vacía: el servidor de acciones no arranca sin su token (python -m bot run lo genera)."
        )
    app = build_app(token, all_actions(action_services(settings)))
    logger.info("Servidor de acciones en %s:%s (token exigido)", host, settings.actions_port)
    app.run(host=host, port=settings.actions_port, workers=1, access_log=False, motd=False)


if __name__ == "__main__":
    main()
