"""Domain, NLU data, rules, code and catalog agree with each other.

These fail when someone edits one of them and forgets the others: a request
type without its intent or examples, an intent that maps to nothing, a
response the code uses but the domain lacks, a retired option offered
anywhere.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from bot.catalog import Catalog
from bot.settings import PROJECT_ROOT
from bot.sync import generated_files

MIN_EXAMPLES_PER_REQUEST_TYPE = 25

# Intents that are conversation mechanics rather than catalog entries.
GENERAL_INTENTS = {
    "greet", "goodbye", "thanks", "affirm", "deny", "cancel", "help", "menu", "other",
    "bot_challenge", "chitchat", "out_of_scope", "inform", "correct",
    "ask_request_type_info", "choose_category", "choose_request_type", "check_status", "attach",
    "human_handoff",  # «quiero hablar con una persona» (bot/dialogue/handoff.py)
    "rate",  # the CSAT buttons (bot/dialogue/survey.py)
}
# Intents only ever sent by buttons, so they need no training examples.
PAYLOAD_ONLY_INTENTS = {"other", "choose_request_type", "attach", "rate"}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


@pytest.fixture(scope="module")
def domain() -> dict:
    return load(PROJECT_ROOT / "domain.yml")


@pytest.fixture(scope="module")
def nlu_examples() -> dict[str, list[str]]:
    examples: dict[str, list[str]] = {}
    for path in sorted((PROJECT_ROOT / "data" / "nlu").glob("*.yml")):
        for block in load(path).get("nlu", []):
            if "intent" in block:
                lines = [l[2:].strip() for l in block["examples"].splitlines() if l.strip().startswith("- ")]
                examples.setdefault(block["intent"], []).extend(lines)
    return examples


def rule_and_story_intents() -> set[str]:
    found: set[str] = set()
    for folder in ("rules", "stories"):
        for path in (PROJECT_ROOT / "data" / folder).glob("*.yml"):
            text = path.read_text(encoding="utf-8")
            found.update(re.findall(r"intent:\s*([a-z_]+)", text))
    return found


def test_generated_files_are_in_sync_with_the_catalog(catalog: Catalog) -> None:
    stale = [str(g.path) for g in generated_files(catalog) if not g.is_current()]
    assert not stale, f"desactualizados: {stale}; ejecuta `python -m bot sync`"


def test_every_active_request_type_has_its_intent_and_examples(
    catalog: Catalog, domain: dict, nlu_examples: dict[str, list[str]]
) -> None:
    intents = set(domain["intents"])
    for rt in catalog.request_types:
        assert rt.intent in intents, f"{rt.name}: falta el intent {rt.intent} en domain.yml"
        count = len(nlu_examples.get(rt.intent, []))
        assert count >= MIN_EXAMPLES_PER_REQUEST_TYPE, f"{rt.name}: solo {count} ejemplos de entrenamiento"
    for retired in catalog.retired:
        assert retired.intent in intents
        assert len(nlu_examples.get(retired.intent, [])) >= MIN_EXAMPLES_PER_REQUEST_TYPE


def test_every_intent_maps_to_something(catalog: Catalog, domain: dict, nlu_examples: dict) -> None:
    catalog_intents = set(catalog.request_intents) | set(catalog.retired_intents)
    handled = rule_and_story_intents()
    for intent in domain["intents"]:
        assert intent in catalog_intents or intent in GENERAL_INTENTS, f"intent {intent} no corresponde a nada"
        assert intent in handled or intent in catalog_intents, f"ninguna regla atiende el intent {intent}"
        if intent not in PAYLOAD_ONLY_INTENTS:
            assert nlu_examples.get(intent), f"el intent {intent} no tiene ejemplos de entrenamiento"
    assert set(nlu_examples) <= set(domain["intents"]), set(nlu_examples) - set(domain["intents"])


def test_no_training_example_is_under_two_intents(nlu_examples: dict[str, list[str]]) -> None:
    owners: dict[str, set[str]] = {}
    for intent, lines in nlu_examples.items():
        for line in lines:
            plain = re.sub(r"\[([^\]]+)\]\{[^}]*\}|\[([^\]]+)\]\([^)]*\)", lambda m: m.group(1) or m.group(2), line)
            owners.setdefault(plain.lower(), set()).add(intent)
    clashes = {text: intents for text, intents in owners.items() if len(intents) > 1}
    assert not clashes


def _all_button_payloads_and_texts(domain: dict) -> str:
    return yaml.safe_dump(domain.get("responses", {}), allow_unicode=True)


def test_retired_option_is_never_offered(catalog: Catalog, domain: dict) -> None:
    for retired in catalog.retired:
        # Not an ítem of its former request type...
        owner = catalog.request_type(retired.request_type_id)
        assert retired.id not in [o.id for o in owner.field(retired.field_id).options]
        # ...not in any domain response or button...
        responses = _all_button_payloads_and_texts(domain)
        assert retired.name not in responses
        assert retired.id not in responses
        # ...and not requested by any rule or story.
        for folder in ("rules", "stories"):
            for path in (PROJECT_ROOT / "data" / folder).glob("*.yml"):
                assert retired.id not in path.read_text(encoding="utf-8"), path


def test_retired_option_is_never_a_suggestion_or_menu_button(catalog: Catalog) -> None:
    from bot.dialogue import navigation
    from bot.dialogue.turn import Turn

    ranking = tuple(
        {"name": intent, "confidence": 0.9 - i * 0.1}
        for i, intent in enumerate(catalog.retired_intents + catalog.request_intents[:3])
    )
    _, says = navigation.suggestions(Turn(text="x", intent_ranking=ranking), {}, catalog)
    menus = navigation.categories_menu(catalog) + [
        s for c in catalog.categories for s in navigation.request_types_menu(c, catalog)
    ]
    for say in says + menus:
        for button in say.buttons:
            for retired in catalog.retired:
                assert retired.id not in button.payload and retired.intent not in button.payload
                assert retired.name != button.title


def _code_files() -> list[Path]:
    return sorted((PROJECT_ROOT / "bot").rglob("*.py")) + sorted((PROJECT_ROOT / "actions").rglob("*.py"))


def test_every_response_the_code_sends_exists(domain: dict) -> None:
    responses = set(domain["responses"])
    used: set[str] = set()
    for path in _code_files():
        used.update(re.findall(r"\"(utter_[a-z_]+)\"", path.read_text(encoding="utf-8")))
    used.discard("utter_action")  # the key Rasa uses in bot events' metadata, not a response
    # Prefixes the review app reads responses by («utter_invalid_»), not names of responses.
    used = {name for name in used if not name.endswith("_")}
    # Names built from validation problem codes.
    for problem in ("empty", "missing_at", "invalid"):
        used.add(f"utter_invalid_email_{problem}")
    for problem in ("empty", "too_short", "too_long", "invalid", "unsupported_country"):
        used.add(f"utter_invalid_phone_{problem}")
    for problem in ("empty", "too_short"):
        used.add(f"utter_invalid_description_{problem}")
    missing = sorted(used - responses)
    assert not missing, f"respuestas usadas en el código que faltan en domain.yml: {missing}"


def test_domain_actions_are_implemented_and_vice_versa(domain: dict) -> None:
    from actions.actions import _registered

    implemented = set(_registered())
    declared = {a for a in domain["actions"] if not a.startswith("utter_")}
    assert declared == implemented


def test_no_request_type_name_is_written_in_code(catalog: Catalog) -> None:
    """The catalog is data: names of types, ítems and retired options live only there."""
    names = [rt.name for rt in catalog.request_types] + [o.name for o in catalog.all_options()]
    names += [r.name for r in catalog.retired] + [c.name for c in catalog.categories]
    texts = {p: p.read_text(encoding="utf-8") for p in _code_files()}
    texts[PROJECT_ROOT / "domain.yml"] = (PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8")
    for path, text in texts.items():
        for name in names:
            assert name not in text, f"{path} repite el nombre «{name}» del catálogo"


def test_training_data_has_no_duplicate_examples(nlu_examples: dict[str, list[str]]) -> None:
    counts = Counter(line.lower() for lines in nlu_examples.values() for line in lines)
    assert [text for text, n in counts.items() if n > 1] == []
