"""Checks an Adaptive Card as Microsoft's own renderer and a pinned JSON schema see it.

The renderer is the npm package ``adaptivecards`` (tests/vendor/adaptivecards/,
see SOURCE.md there), run in Node: it parses each card for the card's own
version (an element, action or property value newer than the version, or
unknown, is reported) and runs its validation (duplicate ids, required inputs
without a label, missing urls...). Teams' host config allows six actions.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

VENDOR = Path(__file__).resolve().parent / "vendor" / "adaptivecards"
RENDERER = VENDOR / "adaptivecards.min.js"
SCHEMA = VENDOR / "adaptive-card.schema.json"
TEAMS_MAX_ACTIONS = 6

_CHECK = (
    r"""
const AC = require(process.argv[1]);
const cards = JSON.parse(require("fs").readFileSync(0, "utf8"));
const hostConfig = new AC.HostConfig({ actions: { maxActions: %d } });
const versions = { "1.0": AC.Versions.v1_0, "1.1": AC.Versions.v1_1, "1.2": AC.Versions.v1_2,
  "1.3": AC.Versions.v1_3, "1.4": AC.Versions.v1_4, "1.5": AC.Versions.v1_5 };
const problems = cards.map((json) => {
  const found = [];
  const version = versions[json.version];
  if (!version) return ["unsupported version " + json.version];
  const card = new AC.AdaptiveCard();
  card.hostConfig = hostConfig;
  const context = new AC.SerializationContext(version);
  card.parse(json, context);
  for (let i = 0; i < context.eventCount; i++) found.push(context.getEventAt(i).message);
  for (const event of card.validateProperties().validationEvents) found.push(event.message);
  return found;
});
process.stdout.write(JSON.stringify(problems));
"""
    % TEAMS_MAX_ACTIONS
)


def renderer_problems(cards: list[dict[str, Any]]) -> list[list[str]]:
    """What the official renderer reports for each card (an empty list: a clean card)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("No hay node: `make test` lo necesita (npm instala el widget web); instala Node.js.")
    done = subprocess.run(
        [node, "-e", _CHECK, str(RENDERER)],
        input=json.dumps(cards),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    problems: list[list[str]] = json.loads(done.stdout)
    return problems


def schema_problems(card: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(card)]


def assert_valid_cards(cards: list[dict[str, Any]]) -> None:
    """Every card passes the pinned schema and the official renderer's parse and validation."""
    assert cards, "no cards to check"
    for card, problems in zip(cards, renderer_problems(cards), strict=True):
        assert problems == [], (problems, card)
        assert schema_problems(card) == [], card
