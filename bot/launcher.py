"""Start the assistant's servers together and stop them together.

``make run`` calls ``python -m bot run``: the action server, the Rasa server
(REST, socket.io, WhatsApp and Teams channels, HTTP API behind a token) and
the web server (chat page, widget, uploads), in the foreground,
stopped as a group by Ctrl-C. Tests use the same ``Servers`` class, so what
they drive is what a user starts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Optional

from bot.channels.common import CREDENTIALS_FILE, credential_variables
from bot.followup.worker import HEARTBEAT_FILE as FOLLOWUP_HEARTBEAT
from bot.heartbeat import heartbeat_ok
from bot.kept_secrets import private_dir
from bot.settings import PROJECT_ROOT, Settings, quiet_rasa_env
from bot.settings.secrets import REST_TOKEN_FILE
from bot.tickets.worker import heartbeat_path

READY_TIMEOUT_S = 300.0


class LaunchError(RuntimeError):
    """A server could not start; the message says which and why."""


def api_token(settings: Settings) -> str:
    """The HTTP API token: ``RASA_API_TOKEN``, or one generated once and kept.

    Keeping the generated token in the data directory lets the CLI and tests
    talk to a server started earlier without configuration.
    """
    return settings.secrets.rasa_api_token


def actions_token(settings: Settings) -> str:
    """The shared secret between Rasa and the action server (``ACTIONS_TOKEN``)."""
    return settings.secrets.actions_token


def rest_token(settings: Settings) -> str:
    """The REST channel's bearer token (``REST_TOKEN``)."""
    return settings.secrets.rest_token


def child_env(settings: Settings) -> dict[str, str]:
    """Environment for the servers: every variable endpoints.yml references is set."""
    env = quiet_rasa_env()
    for name in credential_variables():
        env.setdefault(name, "")  # absent secrets: that channel is off, the rest starts
    env.update(
        {
            "BOT_DATA_DIR": str(settings.data_dir),
            "TICKETS_DB_URL": settings.tickets_db_url,
            "RASA_PORT": str(settings.rasa_port),
            "ACTIONS_PORT": str(settings.actions_port),
            "WEB_PORT": str(settings.web_port),
            # Secrets travel by environment, never on a command line (visible in `ps`).
            **settings.secrets.as_env(),
            "RASA_EXTENSIONS": "on" if settings.runtime.rasa_extensions else "off",
            "TRACKER_DB_URL": settings.tracker_db_url,
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class Server:
    name: str
    command: list[str]
    health_url: str
    process: Optional[subprocess.Popen[bytes]] = None

    def start(self, env: dict[str, str], output: Optional[IO[bytes]]) -> None:
        self.process = subprocess.Popen(
            self.command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            start_new_session=True,  # its own group: Ctrl-C reaches it through us
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def exit_code(self) -> Optional[int]:
        return self.process.poll() if self.process else None

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass


@dataclass
class WorkerServer(Server):
    """A background worker with no HTTP port: ready once its heartbeat file names its pid."""

    heartbeat: Optional[Path] = None

    def healthy(self) -> bool:
        return (
            self.heartbeat is not None and self.process is not None and heartbeat_ok(self.heartbeat, self.process.pid)
        )


@dataclass
class Servers:
    """The action server and the Rasa server, started and stopped as one."""

    settings: Settings
    log_path: Optional[Path] = None
    cors_origins: tuple[str, ...] = ()
    servers: list[Server] = field(default_factory=list)
    _log: Optional[IO[bytes]] = None

    def __post_init__(self) -> None:
        s = self.settings
        python = sys.executable
        # The web chat's own origins plus the sites that embed it; never "*".
        # One --cors flag with every origin: argparse keeps only the last flag.
        origins = self.cors_origins or s.web_origins
        cors = ["--cors", *origins]
        self.servers = [
            Server(
                "servidor de acciones",
                [python, "-m", "bot.action_server"],
                f"http://127.0.0.1:{s.actions_port}/health",
            ),
            Server(
                "servidor Rasa",
                [
                    python,
                    "-m",
                    "bot.rasa_runtime",
                    "run",
                    "--enable-api",  # its token comes from RASA_API_TOKEN (bot.rasa_runtime)
                    "--port",
                    str(s.rasa_port),
                    "--credentials",
                    str(CREDENTIALS_FILE),
                    "--endpoints",
                    str(PROJECT_ROOT / "endpoints.yml"),
                    "--model",
                    str(s.model_path),
                    *cors,
                ],
                f"http://127.0.0.1:{s.rasa_port}/",
            ),
            Server(
                "servidor web",
                [python, "-m", "bot", "web"],
                f"http://127.0.0.1:{s.web_port}/salud",
            ),
        ]
        # After the ticket: the help desk's messages to WhatsApp and Teams, the
        # customers' replies to JSM. Always on: the embedded desk's CLI replies too.
        self.servers.append(
            WorkerServer(
                "proceso de seguimiento",
                [python, "-m", "bot", "followup", "run"],
                "",
                heartbeat=s.data_dir / FOLLOWUP_HEARTBEAT,
            )
        )
        if s.tickets.uses_jsm:
            self.servers.append(
                WorkerServer(
                    "proceso de entrega a Jira Service Management",
                    [python, "-m", "bot", "outbox", "run"],
                    "",
                    heartbeat=heartbeat_path(s),
                )
            )

    def start(self) -> "Servers":
        if not self.settings.model_path.exists():
            raise LaunchError(
                f"No existe el modelo {self.settings.model_path}. "
                "Ejecuta `make train` (o `make run`, que entrena si hace falta)."
            )
        self.check_ports()
        private_dir(self.settings.data_dir)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        env = child_env(self.settings)
        for server in self.servers:
            server.start(env, self._log)
        return self

    def check_ports(self) -> None:
        """Refuse to start over another instance.

        Otherwise the new servers die on a busy port while the old ones answer
        the health checks, and "listo" is printed for processes that are gone.
        """
        s = self.settings
        for port, variable in ((s.actions_port, "ACTIONS_PORT"), (s.rasa_port, "RASA_PORT"), (s.web_port, "WEB_PORT")):
            if port_in_use(port):
                raise LaunchError(
                    f"El puerto {port} ({variable}) ya está en uso: ¿hay otro `make run` abierto? "
                    f"Detenlo, o elige otro puerto, por ejemplo {variable}={port + 100} make run."
                )

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.servers)
        while pending:
            for server in list(pending):
                code = server.exit_code()
                if code is not None:
                    self.stop()
                    where = f" (registro: {self.log_path})" if self.log_path else ""
                    raise LaunchError(f"El {server.name} terminó al arrancar con código {code}{where}.")
                if server.healthy():
                    pending.remove(server)
            if pending and time.monotonic() > deadline:
                self.stop()
                names = ", ".join(s.name for s in pending)
                raise LaunchError(f"Tiempo de espera agotado: no respondió {names}.")
            time.sleep(0.5)

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

    def named(self, name: str) -> Server:
        return next(s for s in self.servers if s.name == name)

    def stop_one(self, name: str) -> None:
        self.named(name).stop()

    def start_one(self, name: str, timeout: float = READY_TIMEOUT_S) -> None:
        """Start one server again (after a crash or a deploy) and wait until it answers."""
        server = self.named(name)
        server.start(child_env(self.settings), self._log)
        deadline = time.monotonic() + timeout
        while not server.healthy():
            if server.exit_code() is not None or time.monotonic() > deadline:
                raise LaunchError(f"El {server.name} no volvió a arrancar.")
            time.sleep(0.5)

    def first_exited(self) -> Optional[Server]:
        return next((s for s in self.servers if s.exit_code() is not None), None)

    def __enter__(self) -> "Servers":
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def port_in_use(port: int) -> bool:
    """Whether something already answers on the port on this machine."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run_foreground(settings: Settings) -> int:
    """``python -m bot run``: start everything, print where it is, wait for Ctrl-C."""
    servers = Servers(settings)
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        servers.start()
        print(
            "Arrancando el servidor de acciones, el servidor Rasa y el servidor web (puede tardar un minuto)...",
            flush=True,
        )
        servers.wait_ready()
    except LaunchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        servers.stop()
        return 1
    s = settings
    jsm_line = (
        "  Entrega a Jira Service Management: activa; pendientes y fallidos en `python -m bot tickets list`\n"
        if s.tickets.uses_jsm
        else ""
    )
    print(
        "\nSoporte ecollect está listo:\n"
        f"  Chat web:           http://localhost:{s.web_port}/\n"
        f"  Revisión (líderes): http://localhost:{s.web_port}/revision/"
        "   (cuentas: python -m bot review add-user NOMBRE)\n"
        f'  API REST (integraciones): curl -H "Authorization: Bearer $(cat {s.data_dir / REST_TOKEN_FILE})" \\\n'
        f'      -d \'{{"sender": "cliente-1", "message": "hola"}}\' http://localhost:{s.rasa_port}/webhooks/rest/webhook\n'
        f"      (token en {s.data_dir / REST_TOKEN_FILE}, o REST_TOKEN)\n"
        f"  Socket.IO (widget): http://localhost:{s.rasa_port}/socket.io\n"
        f"  Servidor de acciones: http://localhost:{s.actions_port}/health\n"
        f"  Token de la API HTTP de Rasa: guardado en {s.data_dir / 'rasa_api_token'} (o RASA_API_TOKEN)\n"
        f"  Tickets: python -m bot tickets list   (datos en {s.data_dir})\n"
        "  Después del ticket: python -m bot tickets reply|status|thread CLAVE  (responder como agente sin JSM)\n"
        f"{jsm_line}"
        "Pulsa Ctrl-C para detener todo.\n",
        flush=True,
    )
    code = 0
    while not stopping:
        exited = servers.first_exited()
        if exited is not None:
            print(f"ERROR: el {exited.name} se detuvo (código {exited.exit_code()}); deteniendo todo.", file=sys.stderr)
            code = 1
            break
        time.sleep(0.5)
    print("Deteniendo...", flush=True)
    servers.stop()
    return code
