"""The house plan, checked: imports point down, rooms beside each other stay apart, one reader of the environment.

Levels, bottom to top (README «Estructura»):
  0 foundation: settings, catalog, validation, text, privacy, contacts, HTTP retry, SQL engines, secrets
  1 dialogue (pure), the ticket model, the attachment store, the mail sender
  2 tickets, channels, Rasa's extensions and stores, transcripts, the NLU components
  3 web, review, the Rasa SDK actions
  4 the composition root and the process entry points (action server, launcher, CLIs, benchmarks)
A module may import its own room and anything on a lower level; rooms on
levels 1 to 3 never import a neighbour on their level except where ALLOWED
says why (the foundation and the top are shared floors).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Optional

import pytest

from bot.settings import PROJECT_ROOT

LEVELS: dict[str, int] = {
    "bot": 0, "bot.settings": 0, "bot.catalog": 0, "bot.validation": 0, "bot.text": 0, "bot.privacy": 0,
    "bot.contacts": 0, "bot.http_retry": 0, "bot.sliding_window": 0, "bot.sqlengine": 0, "bot.heartbeat": 0, "bot.kept_secrets": 0,
    "bot.hours": 0,  # business hours and national holidays (catalog data + the holidays package)
    "bot.dialogue": 1, "bot.attachments": 1, "bot.mail": 1, "bot.thread": 1,
    "bot.thread.model": 1,  # what a thread message is: recorded by the thread, worded by the dialogue
    "bot.tickets.model": 1,  # what a ticket is: built by the dialogue, stored by the tickets room
    "bot.kb.model": 1,  # what an article and a search hit are: found by the knowledge base, offered by the dialogue
    "bot.tickets": 2, "bot.channels": 2, "bot.rasa_ext": 2, "bot.stores": 2, "bot.transcripts": 2,
    "bot.nlu_components": 2,
    "bot.kb": 2,  # the knowledge base: embedded Markdown articles and JSM's, one search
    "bot.web": 3, "bot.review": 3, "actions": 3, "bot.followup": 3,
    "bot.services": 4, "bot.action_server": 4, "bot.launcher": 4, "bot.cli": 4, "bot.bench_load": 4, "bot.nlu_eval": 4,
    "bot.sync": 4, "bot.__main__": 4, "bot.rasa_runtime": 4, "bot.bench_followup": 4,
    "bot.bench_kb": 4,
    "bot.bench_review": 4,
}
# Same-level rooms that may import each other, and why.
ALLOWED = {
    ("bot.dialogue", "bot.tickets.model"),  # the dialogue builds the ticket it confirms
    ("bot.dialogue", "bot.kb.model"),  # the dialogue offers the articles the knowledge base found
    ("bot.thread", "bot.tickets.model"),  # the customer's answers carry attachments like tickets do
    ("bot.thread.model", "bot.tickets.model"),  # likewise
    ("bot.thread", "bot.thread.model"),  # the thread stores the messages its model describes
    ("bot.dialogue", "bot.thread.model"),  # the dialogue words the thread's messages for the customer
    ("bot.stores", "bot.rasa_ext"),  # Rasa builds the tracker store first: it installs the extensions
    ("bot.channels", "bot.rasa_ext"),  # the socket.io channel swaps handlers through the one patch module
    ("bot.tickets", "bot.transcripts"),  # the transcript goes to JSM as an internal comment
    ("bot.web", "bot.review"),  # the web server hosts the review app
}
ENVIRONMENT_READERS = ("bot.settings",)


def modules() -> Iterator[tuple[str, Path]]:
    for root in ("bot", "actions"):
        for path in sorted((PROJECT_ROOT / root).rglob("*.py")):
            relative = path.relative_to(PROJECT_ROOT).with_suffix("")
            parts = list(relative.parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def room_of(module: str) -> Optional[str]:
    """The longest prefix of ``module`` that names a room."""
    candidates = [room for room in LEVELS if module == room or module.startswith(room + ".")]
    return max(candidates, key=len) if candidates else None


def is_cli(module: str) -> bool:
    return module.endswith(".cli") or module in ("bot.cli", "bot.__main__")


def level_of(module: str) -> int:
    room = room_of(module)
    assert room is not None, f"{module} no está en ningún nivel de la casa: añádelo a LEVELS"
    return 4 if is_cli(module) else LEVELS[room]


def imports(path: Path) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every project import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(child) for child in ast.walk(node) if child is not node)
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] in ("bot", "actions"):
                yield name, node.lineno, id(node) in inside


ALL = list(modules())


@pytest.mark.parametrize("module, path", ALL, ids=[m for m, _ in ALL])
def test_imports_point_down_and_rooms_beside_each_other_stay_apart(module: str, path: Path) -> None:
    own_room, own_level = room_of(module), level_of(module)
    wrong = []
    for name, line, _ in imports(path):
        room = room_of(name)
        if room is None or room == own_room:
            continue
        level = 4 if is_cli(name) else LEVELS[room]
        neighbour = level == own_level and own_level in (1, 2, 3) and (own_room, room) not in ALLOWED
        if level > own_level or neighbour:
            wrong.append(f"línea {line}: {name} (nivel {level}) desde nivel {own_level}")
    assert not wrong, f"{module} importa hacia arriba o a una habitación vecina:\n" + "\n".join(wrong)


@pytest.mark.parametrize("module, path", ALL, ids=[m for m, _ in ALL])
def test_no_import_hides_inside_a_function(module: str, path: Path) -> None:
    if is_cli(module):
        return
    hidden = [f"línea {line}: {name}" for name, line, inside in imports(path) if inside]
    assert not hidden, f"{module} importa dentro de una función:\n" + "\n".join(hidden)


@pytest.mark.parametrize("module, path", ALL, ids=[m for m, _ in ALL])
def test_only_the_settings_read_the_environment(module: str, path: Path) -> None:
    if room_of(module) in ENVIRONMENT_READERS:
        return
    tree = ast.parse(path.read_text(encoding="utf-8"))
    reads = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
        and isinstance(node.value, ast.Name) and node.value.id == "os"
    ]
    assert not reads, f"{module} lee el entorno (líneas {reads}): léelo en bot/settings/ y pásalo"


@pytest.mark.parametrize("module, path", ALL, ids=[m for m, _ in ALL])
def test_no_module_is_a_hub(module: str, path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines < 400, f"{module} tiene {lines} líneas: divídelo en módulos con un solo trabajo"


def test_every_module_has_a_level() -> None:
    assert all(room_of(module) is not None for module, _ in ALL)
