"""The launcher refuses to start over another instance, in Spanish, before
spawning anything (otherwise the old servers would pass the health checks)."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Iterator

import pytest

from bot.launcher import LaunchError, Servers, port_in_use
from bot.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield listener.getsockname()[1]


def settings_for(tmp_path: Path, **ports: int) -> Settings:
    model = tmp_path / "modelo.tar.gz"
    model.write_bytes(b"x")
    base = Settings.from_env()
    values = {"rasa_port": free_port(), "actions_port": free_port(), "web_port": free_port(), **ports}
    return dataclasses.replace(base, data_dir=tmp_path / "var", model_path=model, **values)


def test_port_in_use_tells_a_listening_port_from_a_free_one(busy_port: int) -> None:
    assert port_in_use(busy_port)
    assert not port_in_use(free_port())


@pytest.mark.parametrize("field, variable", [("rasa_port", "RASA_PORT"), ("actions_port", "ACTIONS_PORT"), ("web_port", "WEB_PORT")])
def test_a_busy_port_stops_the_start_with_its_variable_and_spawns_nothing(
    tmp_path: Path, busy_port: int, field: str, variable: str
) -> None:
    servers = Servers(settings_for(tmp_path, **{field: busy_port}))
    with pytest.raises(LaunchError) as refused:
        servers.start()
    message = str(refused.value)
    assert f"El puerto {busy_port} ({variable}) ya está en uso" in message
    assert f"{variable}={busy_port + 100}" in message
    assert all(server.process is None for server in servers.servers)


def test_generated_secrets_are_kept_private_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.launcher import actions_token, api_token

    monkeypatch.delenv("ACTIONS_TOKEN", raising=False)
    settings = dataclasses.replace(settings_for(tmp_path), rasa_api_token="")
    first_api, first_actions = api_token(settings), actions_token(settings)
    assert len(first_api) >= 32 and first_api != first_actions
    assert (api_token(settings), actions_token(settings)) == (first_api, first_actions)
    for name in ("rasa_api_token", "actions_token"):
        assert (settings.data_dir / name).stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("ACTIONS_TOKEN", "configurado")
    settings = dataclasses.replace(settings_for(tmp_path), rasa_api_token="")  # settings are read at start-up
    assert actions_token(settings) == "configurado"
