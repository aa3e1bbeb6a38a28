"""The action server (``python -m bot.action_server``), reachable only by Rasa.

rasa_sdk's server listens on every interface and accepts any caller. Here it
binds to loopback by default (``ACTIONS_HOST``), refuses calls that do not
carry ``ACTIONS_TOKEN`` (Rasa sends it from endpoints.yml), and does not
start without one.
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
    if not token:
        raise ValueError("the action server needs its token")
    app = create_app(action_package_name="actions", cors_origins=[])
    # Rasa keeps connections open (bot.rasa_runtime, 30 s idle); the server
    # must keep them longer so a reused connection is never closed under it.
    app.config.KEEP_ALIVE_TIMEOUT = 60

    @app.middleware("request")
    async def require_token(request: Request):  # type: ignore[no-untyped-def]
        if request.path == "/health":
            return None
        offered = request.args.get("token") or ""
        if not hmac.compare_digest(offered.encode("utf-8"), token.encode("utf-8")):
            return response.json({"error": "no autorizado"}, status=401)
        return None

    return app


def main() -> None:
    settings = Settings.from_env()
    host = os.environ.get("ACTIONS_HOST") or "127.0.0.1"
    token = os.environ.get("ACTIONS_TOKEN", "").strip()
    logging.basicConfig(level=logging.INFO)
    if not token:
        # Without it anyone who reaches the port could set any slot of any
        # conversation; `python -m bot run` always passes one.
        raise SystemExit("ACTIONS_TOKEN está vacía: el servidor de acciones no arranca sin su token (python -m bot run lo genera).")
    app = build_app(token)
    logger.info("Servidor de acciones en %s:%s (token exigido)", host, settings.actions_port)
    app.run(host=host, port=settings.actions_port, workers=1, access_log=False, motd=False)


if __name__ == "__main__":
    main()
