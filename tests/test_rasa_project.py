"""Rasa's own checks on the project: data validation and conversation tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.settings import PROJECT_ROOT, quiet_rasa_env


def rasa(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rasa", *args], cwd=cwd, capture_output=True, text=True, timeout=900,
        env=quiet_rasa_env(),
    )


def test_rasa_data_validate_passes() -> None:
    result = rasa("data", "validate", "--fail-on-warnings")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_conversation_stories_have_no_prediction_errors(model_path: Path, tmp_path: Path) -> None:
    result = rasa(
        "test", "core",
        "--e2e",  # the customer's words go through the NLU and must give the written intent
        "--model", str(model_path),
        "--stories", str(PROJECT_ROOT / "tests" / "stories"),
        "--fail-on-prediction-errors",
        "--no-plot",
        "--out", str(tmp_path),
    )
    failed = tmp_path / "failed_test_stories.yml"
    detail = failed.read_text(encoding="utf-8") if failed.exists() else ""
    assert result.returncode == 0, detail or (result.stdout[-4000:] + result.stderr[-4000:])
    # The run really evaluated every story (test files must be named test_*.yml).
    import json
    import yaml

    written = sum(
        len(yaml.safe_load(p.read_text(encoding="utf-8"))["stories"])
        for p in (PROJECT_ROOT / "tests" / "stories").glob("test_*.yml")
    )
    report = json.loads((tmp_path / "story_report.json").read_text(encoding="utf-8"))
    assert report["conversation_accuracy"]["total"] == written >= 14
    assert report["conversation_accuracy"]["correct"] == written
