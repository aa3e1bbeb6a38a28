"""A Teams customer picks a request type from a choice set and the form goes on, through Rasa itself.

The Teams webhook (with the fake Microsoft of ``test_teams.py``) hands
messages to Rasa's real agent for the trained model, whose custom actions run
on the session's real action server; replies go back through the Teams output
as Adaptive Cards. Taps only: the menu button, a category button, then a
request type chosen in the list of seven (six types and «Volver»).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from rasa.core.agent import Agent
from rasa.utils.endpoints import EndpointConfig

from bot.channels.teams import ADAPTIVE_CARD, CHOICE_ID, TeamsInput
from tests import test_teams
from tests.conftest import RunningAssistant
from tests.test_teams import FakeMicrosoft, Harness, SigningKey, activity_for, credentials, harness_for, token_for

# The fake Microsoft of test_teams.py and its signing key, as fixtures of this module.
key, microsoft = test_teams.key, test_teams.microsoft

pytestmark = pytest.mark.servers

CUSTOMER = "teams:29:user-1"


@pytest.fixture(scope="module")
def agent(model_path: Path, assistant: RunningAssistant) -> Agent:
    """Rasa's agent for the trained model, calling the session's action server with its token."""
    actions = EndpointConfig(
        f"http://127.0.0.1:{assistant.settings.actions_port}/webhook", token=assistant.settings.secrets.actions_token
    )
    return Agent.load(str(model_path), action_endpoint=actions)


@pytest.fixture
def teams(agent: Agent, microsoft: FakeMicrosoft, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TICKETS_DB_URL", raising=False)
    harness = harness_for(TeamsInput.from_credentials(credentials(microsoft)), microsoft)
    harness.rasa.reply = agent.handle_message  # what Rasa's server hands the channel as on_new_message
    yield harness


def card_of(activity: dict[str, Any]) -> dict[str, Any]:
    [attachment] = activity["attachments"]
    assert attachment["contentType"] == ADAPTIVE_CARD
    content: dict[str, Any] = attachment["content"]
    return content


def cards_since(microsoft: FakeMicrosoft, mark: int) -> list[dict[str, Any]]:
    return [card_of(a) for a in microsoft.activities[mark:] if a.get("attachments")]


def words(microsoft: FakeMicrosoft, mark: int) -> str:
    """Everything the customer read since ``mark``: texts and the cards' text blocks."""
    texts = [a.get("text") or "" for a in microsoft.activities[mark:]]
    texts += [b.get("text", "") for card in cards_since(microsoft, mark) for b in card["body"]]
    return "\n".join(texts)


def tap(teams: Harness, microsoft: FakeMicrosoft, key: SigningKey, action: dict[str, Any]) -> int:
    """The message Teams sends when the customer taps a button (messageBack); returns the activities mark."""
    back = action["data"]["msteams"]
    mark = len(microsoft.activities)
    click = activity_for(microsoft.base, text=back["text"], value=back["value"])
    assert teams.post(click, token=token_for(key, microsoft.base)).status == 200
    return mark


def test_a_request_type_chosen_from_the_list_starts_its_form(
    teams: Harness, agent: Agent, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    mark = len(microsoft.activities)
    assert (
        teams.post(
            activity_for(microsoft.base, text="", value={"payload": "/menu"}), token=token_for(key, microsoft.base)
        ).status
        == 200
    )
    [categories] = cards_since(microsoft, mark)
    by_title = {a["title"]: a for a in categories["actions"]}
    assert len(by_title) == 5 and "Requerimientos comerciales" in by_title, list(by_title)

    mark = tap(teams, microsoft, key, by_title["Requerimientos comerciales"])
    [types] = cards_since(microsoft, mark)
    [choices] = [b for b in types["body"] if b["type"] == "Input.ChoiceSet"]
    assert len(choices["choices"]) == 7 and types["actions"][0]["title"] == "Enviar"
    chosen = choices["choices"][0]
    request_type = json.loads(chosen["value"][chosen["value"].index("{") :])["request_type"]

    mark = len(microsoft.activities)
    submit = activity_for(microsoft.base, text="", value={CHOICE_ID: chosen["value"]})  # Action.Submit of the list
    assert teams.post(submit, token=token_for(key, microsoft.base)).status == 200
    assert [m.text for m in teams.rasa.messages][-1] == chosen["value"]  # the exact payload, not the NLU's guess

    tracker = asyncio.run(agent.tracker_store.retrieve(CUSTOMER))
    assert tracker is not None
    assert tracker.get_slot("request_type") == request_type
    assert tracker.active_loop_name == "ticket_form"
    asked = words(microsoft, mark)
    assert asked.strip() and "Elige una opción" not in asked, asked  # the form's next question, not a menu again
