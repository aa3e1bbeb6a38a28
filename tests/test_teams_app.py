"""`python -m bot teams-app` (what `make teams-app` runs): the Teams app package, checked as Teams would."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import jsonschema
import pytest
from PIL import Image  # in constraints.txt (a Rasa dependency); the package itself does not need it

from bot.channels.teams import app_package
from bot.channels.teams.app_package import PackageError, build_manifest, load_schema, validate
from bot.cli import main

APP_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def png_header(data: bytes) -> tuple[int, int, int]:
    """Width, height and color type from the PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height, _depth, color_type = struct.unpack(">IIBB", data[16:26])
    return width, height, color_type


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("TEAMS_APP_ID", APP_ID)
    monkeypatch.setenv("WEB_PUBLIC_URL", "https://soporte.ecollect.example/")
    return tmp_path


def test_the_subcommand_writes_a_package_that_validates(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["teams-app", "--out", str(env / "out")]) == 0
    path = env / "out" / "soporte-ecollect.zip"
    assert str(path) in capsys.readouterr().out
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        color, outline = archive.read("color.png"), archive.read("outline.png")

    schema = json.loads((Path(app_package.__file__).parent / "schema" / "MicrosoftTeams.schema.v1.17.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(manifest)  # the pinned schema, independently
    assert manifest["manifestVersion"] == "1.17" and manifest["id"] == APP_ID
    [bot] = manifest["bots"]
    assert bot["botId"] == APP_ID and bot["scopes"] == ["personal"] and bot["supportsFiles"] is True
    assert manifest["validDomains"] == ["soporte.ecollect.example"]
    assert manifest["name"]["short"] == "Soporte ecollect" and "Mesa de ayuda" in manifest["description"]["full"]
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert png_header(color)[:2] == (192, 192)
    assert png_header(outline) == (32, 32, 6)  # RGBA: a transparent background


def test_the_outline_icon_is_white_on_transparent() -> None:
    with Image.open(app_package.OUTLINE_ICON) as image:
        pixels = list(image.convert("RGBA").getdata())
    assert pixels[0][3] == 0  # corner: transparent
    assert {p[:3] for p in pixels if p[3] > 0} == {(255, 255, 255)}


def test_without_teams_app_id_it_refuses_in_spanish(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TEAMS_APP_ID")
    assert main(["teams-app", "--out", str(env / "out")]) != 0
    assert "Falta TEAMS_APP_ID" in capsys.readouterr().err
    assert not (env / "out").exists()


def test_an_app_id_that_is_not_a_guid_is_refused(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEAMS_APP_ID", "mi-bot")
    assert main(["teams-app", "--out", str(env / "out")]) != 0
    assert "debe ser el Id. de aplicación" in capsys.readouterr().err


def test_the_pinned_schema_catches_a_broken_manifest() -> None:
    manifest = build_manifest(APP_ID)
    validate(manifest, load_schema())
    del manifest["bots"][0]["scopes"]
    manifest["name"]["short"] = "x" * 31  # Teams allows 30
    with pytest.raises(PackageError) as refused:
        validate(manifest, load_schema())
    assert "bots/0" in str(refused.value) and "name/short" in str(refused.value)
