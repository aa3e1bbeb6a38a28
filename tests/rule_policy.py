"""Rasa's RulePolicy trained in-process on the project's rules, and the conversations of the follow-up forms.

No model is needed: the RulePolicy (the policy that decides every turn here,
config.yml) learns domain.yml and data/ in seconds, then says what comes next
in a conversation given as Rasa events. Used by tests/test_followup_rules.py
and tests/test_followup_forms.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    BotUttered,
    Event,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.generator import TrainingDataGenerator
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.importers.importer import TrainingDataImporter

from bot.settings import PROJECT_ROOT

LISTEN = "action_listen"


Trained = tuple[RulePolicy, Domain]


def train_rule_policy(folder: Path) -> Trained:
    """Rasa's RulePolicy, configured as config.yml says, trained on domain.yml and data/ (seconds)."""
    importer = TrainingDataImporter.load_from_config(
        str(PROJECT_ROOT / "config.yml"), str(PROJECT_ROOT / "domain.yml"), [str(PROJECT_ROOT / "data")]
    )
    domain = importer.get_domain()
    trackers = TrainingDataGenerator(importer.get_stories(), domain, augmentation_factor=0).generate()
    config = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    (rules,) = [p for p in config["policies"] if p["name"] == "RulePolicy"]
    settings = {**RulePolicy.get_default_config(), **{k: v for k, v in rules.items() if k != "name"}}
    storage = LocalModelStorage(folder)
    policy = RulePolicy.create(settings, storage, Resource("reglas"), ExecutionContext(GraphSchema({}), "seguimiento"))
    policy.train(trackers, domain)
    return policy, domain


def said(text: str, intent: str) -> list[Event]:
    return [UserUttered(text, {"name": intent, "confidence": 0.95})]


def next_action(trained: Trained, events: list[Event]) -> str:
    policy, domain = trained
    tracker = DialogueStateTracker.from_events("conv", events, slots=domain.slots)
    probabilities = policy.predict_action_probabilities(tracker, domain).probabilities
    best = max(range(len(probabilities)), key=probabilities.__getitem__)
    return domain.action_names_or_texts[best]


def opened(form: str, requested: str, slots: dict[str, Any]) -> list[Event]:
    """A conversation where a ticket was created, then the worker delivered the help desk's message."""
    return [
        ActionExecuted(LISTEN),
        *said("/affirm", "affirm"),
        ActionExecuted("action_create_ticket"),
        ActionExecuted(LISTEN),
        BotUttered("💬 ECO-000001 · …"),
        *[SlotSet(name, value) for name, value in slots.items()],
        ActiveLoop(form),
        SlotSet("requested_slot", requested),
    ]


REPLY = opened("reply_form", "reply_text", {"reply_ticket": "ECO-000001", "reply_since": 7})
CSAT = opened("csat_form", "csat_rating", {"csat_ticket": "ECO-000001"})
RELEASED = [ActiveLoop(None), SlotSet("requested_slot", None), ActionExecutionRejected("reply_form")]
