"""The action server (``python -m bot.action_server``), reachable only by Rasa.

rasa_sdk's server listens on every interface and accepts any caller. Here it
binds to loopback by default (``ACTIONS_HOST``) and, when ``ACTIONS_TOKEN`` is
set, refuses calls that do not carry it (Rasa sends it from endpoints.yml).
"""

from __future__ import annotations

import hmac
import logging
import os

from bot.quiet import honour_warning_options

honour_warning_options()  # before rasa_sdk's imports print their deprecation notices

from rasa_sdk.endpoint import create_app  # noqa: E402
from sanic import response  # noqa: E402
from sanic.request import Request  # noqa: E402

from bot.settings import Settings  # noqa: E402

logger = logging.getLogger(__name__)


def build_app(token: str):  # type: ignore[no-untyped-def]
    app = create_app(action_package_name="actions", cors_origins=[])
    # Rasa keeps connections open (bot.rasa_runtime, 30 s idle); the server
    # must keep them longer so a reused connection is never closed under it.
    app.config.KEEP_ALIVE_TIMEOUT = 60

    @app.middleware("request")
    async def require_token(request: Request):  # type: ignore[no-untyped-def]
        if request.path == "/health" or not token:
            return None
        offered = request.args.get("token") or ""
        if not hmac.compare_digest(offered, token):
            return response.json({"error": "no autorizado"}, status=401)
        return None

    return app


def main() -> None:
    settings = Settings.from_env()
    host = os.environ.get("ACTIONS_HOST") or "127.0.0.1"
    token = os.environ.get("ACTIONS_TOKEN", "")
    logging.basicConfig(level=logging.INFO)
    app = build_app(token)
    logger.info("Servidor de acciones en %s:%s (token %s)", host, settings.actions_port, "exigido" if token else "no configurado")
    app.run(host=host, port=settings.actions_port, workers=1, access_log=False, motd=False)


if __name__ == "__main__":
    main()
