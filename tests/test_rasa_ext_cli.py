"""`rasa run` (Rasa's own CLI) with the project's endpoints.yml behaves as `make run`, or does not start.

endpoints.yml names ``bot.stores.EnvTrackerStore``; Rasa builds it at
start-up, and it installs ``bot.rasa_ext``. So a deployer who starts Rasa
without ``bot.rasa_runtime`` still gets the customer-facing safety net (with
the performance extensions on or off), and a Rasa whose internals are not the
ones the project changes refuses to start, naming the change to review.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.launcher import Server, child_env
from bot.rasa_ext import PERFORMANCE_OFF, PERFORMANCE_ON
from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import REST_TOKEN, Chat, free_port

pytestmark = pytest.mark.servers

API_TOKEN = "token-de-pruebas"
READY_S = 300.0
# What a deployer would type, with the project's files.
CONFIGURATION = [
    "--credentials", str(PROJECT_ROOT / "credentials.yml"), "--endpoints", str(PROJECT_ROOT / "endpoints.yml")
]  # fmt: skip
# Rasa 3.6.21's RemoteAction.run as another version of Rasa might define it.
ANOTHER_RASA = """
import sys
from rasa.core.actions import action

async def run(self, output_channel, nlg, tracker):
    return []

action.RemoteAction.run = run
from rasa.__main__ import main
sys.argv = ["rasa", *sys.argv[1:]]
main()
"""


def scratch_settings(data_dir: Path, extensions: str) -> Settings:
    return Settings.from_env(
        {
            "BOT_DATA_DIR": str(data_dir),
            "RASA_PORT": str(free_port()),
            "ACTIONS_PORT": str(free_port()),
            "WEB_PORT": str(free_port()),
            "RASA_API_TOKEN": API_TOKEN,
            "REST_TOKEN": REST_TOKEN,
            "RASA_EXTENSIONS": extensions,
        }
    )


def server_env(settings: Settings) -> dict[str, str]:
    """The launcher's environment for the servers, on the embedded default, with only REST and socket.io."""
    env = child_env(settings)
    for name in ("REDIS_URL", "TICKETS_BACKEND"):
        env.pop(name, None)
    for name in env:
        if name.startswith(("TWILIO_", "WHATSAPP_", "TEAMS_")):
            env[name] = ""
    env["RASA_EXTENSIONS"] = "on" if settings.runtime.rasa_extensions else "off"
    return env


def wait_healthy(*servers: Server) -> None:
    deadline = time.monotonic() + READY_S
    for server in servers:
        while not server.healthy():
            assert server.exit_code() is None, f"{server.name} terminó al arrancar"
            assert time.monotonic() < deadline, f"{server.name} no respondió"
            time.sleep(0.5)


@pytest.mark.parametrize("extensions", ["on", "off"])
def test_rasa_run_explains_a_down_action_server_and_the_form_continues(
    model_path: Path, tmp_path: Path, extensions: str
) -> None:
    settings = scratch_settings(tmp_path / "datos", extensions)
    env = server_env(settings)
    port = str(settings.rasa_port)
    health = f"http://127.0.0.1:{settings.actions_port}/health"
    actions = Server("servidor de acciones", [sys.executable, "-m", "bot.action_server"], health)
    rasa = Server(
        "rasa run",
        [sys.executable, "-m", "rasa", "run", "--enable-api", "--auth-token", API_TOKEN, "--port", port]
        + CONFIGURATION
        + ["--model", str(model_path)],
        f"http://127.0.0.1:{port}/",
    )
    log_path = tmp_path / "servers.log"
    with log_path.open("ab") as log:
        actions.start(env, log)
        rasa.start(env, log)
    try:
        wait_healthy(actions, rasa)
        chat = Chat(f"http://127.0.0.1:{port}", token=REST_TOKEN)
        chat.say('/choose_request_type{"request_type": "pago_presencial"}')
        actions.stop()
        down = chat.text(chat.say("el corresponsal bancario no reporta los pagos de ayer en la tarde"))
        assert "problema técnico" in down, chat.dump()
        with log_path.open("ab") as log:
            actions.start(env, log)
        wait_healthy(actions)
        back = chat.text(chat.say("el corresponsal bancario no reporta los pagos de ayer en la tarde"))
        assert "correo electrónico" in back, chat.dump()  # the form went on to the next question
    finally:
        rasa.stop()
        actions.stop()
    written = log_path.read_text(encoding="utf-8", errors="replace")
    assert "Rasa extensions (bot.rasa_ext): warnings_options, log_masking, action_server_down" in written
    assert (PERFORMANCE_ON if extensions == "on" else PERFORMANCE_OFF) in written


def test_rasa_run_refuses_to_start_on_a_rasa_whose_internals_changed(model_path: Path, tmp_path: Path) -> None:
    settings = scratch_settings(tmp_path / "datos", "on")
    arguments = ["run", "--port", str(settings.rasa_port), *CONFIGURATION, "--model", str(model_path)]
    done = subprocess.run(
        [sys.executable, "-c", ANOTHER_RASA, *arguments],
        cwd=PROJECT_ROOT,
        env=server_env(settings),
        capture_output=True,
        text=True,
        timeout=READY_S,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "bot.rasa_ext.action_server_down: rasa.core.actions.action.RemoteAction.run tiene la firma" in output
    assert "revisa bot/rasa_ext/action_server_down.py" in output
    assert "Rasa server is up and running" not in output
