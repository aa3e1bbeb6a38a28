"""``python -m bot.rasa_runtime run ...``: Rasa's CLI, with the project's changes to Rasa installed first.

``make run`` (``bot.launcher``) starts Rasa this way: the warning filters are
honoured before Rasa's modules are imported, ``bot.rasa_ext`` is installed
before Rasa's CLI runs, and the HTTP API's token is handed to Rasa inside the
process. ``rasa run`` with the project's endpoints.yml gets the same changes
from ``bot.stores.EnvTrackerStore`` (see ``bot.rasa_ext``); only the token
has to be given on its command line there.
"""

from __future__ import annotations

import sys

from bot.rasa_ext.warnings_options import honour_warning_options

# Before the imports below: Rasa's modules import dependencies that print
# deprecation notices unless the operator's filters are back in front of
# Sanic's (E402 on purpose).
honour_warning_options()

from rasa.__main__ import main as rasa_main  # noqa: E402  # after honour_warning_options()

from bot.rasa_ext.installer import install  # noqa: E402  # after honour_warning_options()
from bot.settings import Settings  # noqa: E402  # after honour_warning_options()


def main() -> None:
    settings = Settings.from_env()
    install(settings.runtime)
    sys.argv = ["rasa", *with_api_token(sys.argv[1:], settings.rasa_api_token)]
    rasa_main()


def with_api_token(arguments: list[str], token: str) -> list[str]:
    """Rasa's arguments with the API token added inside this process.

    Rasa reads its token only from ``--auth-token``; a token on the command
    line that starts the process would be visible to every user in ``ps``.
    ``sys.argv`` changed here is not: ``/proc/<pid>/cmdline`` keeps the
    original. An API enabled without any token is refused.
    """
    if "--enable-api" not in arguments or "--auth-token" in arguments:
        return arguments
    token = token.strip()
    if not token:
        raise SystemExit("RASA_API_TOKEN está vacía: la API HTTP de Rasa no se abre sin token.")
    return [*arguments, f"--auth-token={token}"]  # «=»: a generated token may start with «-»


if __name__ == "__main__":
    main()
