"""Settings read from the environment, with the embedded defaults.

One place for every variable the project reads, so that the launcher, the
action server, the CLI and the tests agree on where data lives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Rasa's telemetry and its Sentry error reports would send data to third
# parties (and try the network) from every `rasa` process; off unless the
# deployer explicitly turns them on.
# Rasa 3.6's dependencies print dozens of DeprecationWarnings at start-up that
# no operator can act on and that hide the lines that matter (which channels
# are on, where the data is). PYTHONWARNINGS in the environment still wins.
QUIET_RASA_ENV = {"RASA_TELEMETRY_ENABLED": "false", "PYTHONWARNINGS": "ignore::DeprecationWarning"}


def quiet_rasa_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for key, value in QUIET_RASA_ENV.items():
        env.setdefault(key, value)
    return env


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} debe ser un número entero (valor actual: {raw!r})") from exc


def env_seconds(name: str, default: float) -> float:
    """A duration in seconds from the environment; a bad value stops with its name."""
    raw = (os.environ.get(name) or "").strip()
    try:
        return float(raw) if raw else default
    except ValueError as exc:
        raise SystemExit(f"{name} debe ser un número de segundos (valor actual: {raw!r})") from exc


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    tickets_db_url: str
    tracker_db_url: str
    rasa_port: int
    actions_port: int
    web_port: int
    rasa_api_token: str
    model_path: Path

    @classmethod
    def from_env(cls) -> "Settings":
        data_dir = Path(os.environ.get("BOT_DATA_DIR") or PROJECT_ROOT / "var").resolve()
        tickets_url = os.environ.get("TICKETS_DB_URL") or f"sqlite:///{data_dir / 'tickets.db'}"
        return cls(
            data_dir=data_dir,
            tickets_db_url=tickets_url,
            # Where Rasa's tracker store lives (endpoints.yml); read by the review app.
            tracker_db_url=os.environ.get("TRACKER_DB_URL") or f"sqlite:///{data_dir / 'tracker.db'}",
            rasa_port=_int("RASA_PORT", 5005),
            actions_port=_int("ACTIONS_PORT", 5055),
            web_port=_int("WEB_PORT", 8000),
            rasa_api_token=os.environ.get("RASA_API_TOKEN", ""),
            model_path=Path(os.environ.get("BOT_MODEL") or PROJECT_ROOT / "models" / "ecollect.tar.gz"),
        )
