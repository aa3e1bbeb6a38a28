"""Teams buttons as Adaptive Cards, through the real webhook and the fake Microsoft of ``test_teams.py``.

Up to six options are buttons (``Action.Submit`` with ``messageBack``), more
become one choice set and «Enviar»; a click or a submitted choice comes back
to Rasa as the exact payload. Every card built here is checked by Microsoft's
own renderer (npm ``adaptivecards``, run in Node) and a pinned JSON schema
(tests/adaptive_cards.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from bot.catalog import Catalog
from bot.channels.teams import ADAPTIVE_CARD, CHOICE_ID
from bot.channels.teams.cards import CARD_VERSION, adaptive_card, plain_text
from bot.dialogue.navigation import categories_menu, menu_button, request_types_menu
from bot.dialogue.notices import render
from bot.thread import ThreadMessage
from bot.thread.model import CSAT, TO_CUSTOMER
from tests import test_teams
from tests.adaptive_cards import assert_valid_cards, renderer_problems, schema_problems
from tests.test_teams import FakeMicrosoft, Harness, SigningKey, activity_for, answer_with, token_for

# The fake Microsoft and the channel of test_teams.py, as fixtures of this module.
bot, data_dir, key, microsoft = test_teams.bot, test_teams.data_dir, test_teams.key, test_teams.microsoft

QUESTION = "¿Sobre qué es tu solicitud?\nElige una opción:"


def options(count: int) -> list[dict[str, str]]:
    return [
        {"title": f"Opción {n} – ñ", "payload": f'/choose_request_type{{"request_type":"tipo_{n}"}}'}
        for n in range(1, count + 1)
    ]


def sent_card(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey, buttons: list[dict[str, Any]]) -> Any:
    """What the customer receives when Rasa answers QUESTION with ``buttons``: the activity and its one card."""
    answer_with(bot, {"text": QUESTION, "buttons": buttons})
    assert bot.post(activity_for(microsoft.base), token=token_for(key, microsoft.base)).status == 200
    [sent] = microsoft.activities
    [attachment] = sent["attachments"]
    assert attachment["contentType"] == ADAPTIVE_CARD
    return sent, attachment["content"]


def submitted_payloads(card: dict[str, Any]) -> list[str]:
    return [a["data"]["msteams"]["value"]["payload"] for a in card.get("actions", []) if a["type"] == "Action.Submit"]


@pytest.mark.parametrize("count", [2, 3, 6])
def test_up_to_six_options_are_buttons_on_one_card(
    count: int, bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    buttons = options(count)
    sent, card = sent_card(bot, microsoft, key, buttons)
    assert card["type"] == "AdaptiveCard" and card["version"] == CARD_VERSION
    assert [b["text"] for b in card["body"]] == ["¿Sobre qué es tu solicitud?", "Elige una opción:"]
    assert [a["title"] for a in card["actions"]] == [b["title"] for b in buttons]
    assert submitted_payloads(card) == [b["payload"] for b in buttons]
    for action in card["actions"]:  # the customer's choice shows in the chat (and the transcript) as their words
        assert action["data"]["msteams"]["displayText"] == action["title"]
    assert not any(b["type"] == "Input.ChoiceSet" for b in card["body"])
    assert sent["summary"] == card["fallbackText"]
    assert card["fallbackText"].splitlines()[:3] == [
        "¿Sobre qué es tu solicitud?",
        "Elige una opción:",
        "1. Opción 1 – ñ",
    ]
    assert_valid_cards([card])


@pytest.mark.parametrize("count, style", [(7, "expanded"), (10, "expanded"), (12, "compact")])
def test_more_than_six_options_are_one_choice_set_and_a_submit(
    count: int, style: str, bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    buttons = options(count)
    sent, card = sent_card(bot, microsoft, key, buttons)
    *texts, choices = card["body"]
    assert [t["text"] for t in texts] == ["¿Sobre qué es tu solicitud?", "Elige una opción:"]
    assert choices["type"] == "Input.ChoiceSet" and choices["id"] == CHOICE_ID and choices["style"] == style
    assert choices["isRequired"] is True and choices["errorMessage"].startswith("Elige una opción")
    assert choices["isMultiSelect"] is False
    assert choices["choices"] == [{"title": b["title"], "value": b["payload"]} for b in buttons]
    assert card["actions"] == [{"type": "Action.Submit", "title": "Enviar", "data": {}}]
    listed = card["fallbackText"].splitlines()
    assert listed[2 : 2 + count] == [f"{n}. Opción {n} – ñ" for n in range(1, count + 1)]
    assert sent["summary"] == card["fallbackText"] and "attachmentLayout" not in sent
    assert_valid_cards([card])


def test_link_buttons_open_https_urls_only(bot: Harness, microsoft: FakeMicrosoft, key: SigningKey) -> None:
    buttons = [
        {"title": "Ver estado", "payload": "/check_status"},
        {"title": "Portal", "url": "https://portal.ecollect.co/ayuda", "type": "web_url"},
        {"title": "Malo", "url": "javascript:alert(1)", "type": "web_url"},
        {"title": "Intranet", "url": "http://10.0.0.5/admin", "type": "web_url"},
    ]
    _, card = sent_card(bot, microsoft, key, buttons)
    assert [(a["type"], a["title"]) for a in card["actions"]] == [
        ("Action.Submit", "Ver estado"),
        ("Action.OpenUrl", "Portal"),
    ]
    assert card["actions"][1]["url"] == "https://portal.ecollect.co/ayuda"
    assert "javascript" not in json.dumps(card) and "10.0.0.5" not in json.dumps(card)
    assert_valid_cards([card])


def test_bot_text_is_shown_as_written_not_as_markdown() -> None:
    card = adaptive_card("Tu correo: ana_perez@empresa.co\n1. **no** es [un](https://x.co) enlace\n- ni lista", [])
    assert [b["text"] for b in card["body"]] == [
        "Tu correo: ana\\_perez@empresa.co",
        "1\\. \\*\\*no\\*\\* es \\[un\\](https://x.co) enlace",
        "\\- ni lista",
    ]
    assert plain_text("-5 % y 2,5 * 3") == "-5 % y 2,5 \\* 3"  # only markdown is escaped
    assert card["fallbackText"].splitlines()[0] == "Tu correo: ana_perez@empresa.co"  # plain text: no escapes


# ------------------------------------------------------------ submits back
def test_a_button_click_and_a_list_choice_reach_rasa_as_the_exact_payload(
    bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    buttons = options(7)
    _, card = sent_card(bot, microsoft, key, options(3))
    click = card["actions"][1]["data"]["msteams"]  # what Teams sends for a messageBack submit
    bot.rasa.reply = None
    assert (
        bot.post(
            activity_for(microsoft.base, text=click["text"], value=click["value"]), token=token_for(key, microsoft.base)
        ).status
        == 200
    )
    choice = activity_for(microsoft.base, text="", value={CHOICE_ID: buttons[6]["payload"]})  # an Action.Submit
    assert bot.post(choice, token=token_for(key, microsoft.base)).status == 200
    assert [m.text for m in bot.rasa.messages[1:]] == [options(3)[1]["payload"], buttons[6]["payload"]]


def test_a_messageback_value_sent_as_json_text_still_gives_the_payload(
    bot: Harness, microsoft: FakeMicrosoft, key: SigningKey
) -> None:
    value = json.dumps({"payload": "/menu"})
    assert (
        bot.post(activity_for(microsoft.base, text="Menú", value=value), token=token_for(key, microsoft.base)).status
        == 200
    )
    assert [m.text for m in bot.rasa.messages] == ["/menu"]


# ---------------------------------------------------- every card is valid
def test_the_catalogs_menus_the_welcome_and_the_csat_notice_are_valid_cards(catalog: Catalog) -> None:
    says = categories_menu(catalog) + [s for c in catalog.categories for s in request_types_menu(c, catalog)]
    cards = [adaptive_card(QUESTION, [{"title": b.title, "payload": b.payload} for b in s.buttons]) for s in says]
    welcome = menu_button(catalog)
    cards.append(
        adaptive_card(
            "¡Hola! Soy el asistente de Soporte ecollect.", [{"title": welcome.title, "payload": welcome.payload}]
        )
    )
    survey = ThreadMessage(
        id=7,
        ticket_key="ECO-000123",
        title="ECO-000123 · Falla en cargue",
        direction=TO_CUSTOMER,
        kind=CSAT,
        source="csat",
        body="",
        conversation_id="teams:29:user-1",
        channel="teams",
        created_at=datetime.now(timezone.utc),
    )
    csat = render(survey)
    cards.append(adaptive_card(csat.text, [{"title": b.title, "payload": b.payload} for b in csat.buttons]))
    assert any(any(e["type"] == "Input.ChoiceSet" for e in c["body"]) for c in cards)  # a menu of seven is a list
    assert_valid_cards(cards)


def test_the_checks_catch_a_broken_card() -> None:
    """The validators can fail: a card Teams would not render as meant is reported by both."""
    card = adaptive_card(QUESTION, options(8))
    card["body"][-1]["style"] = "filtered"  # Adaptive Cards 1.5: newer than the card's version
    card["body"].append({"type": "Input.Text", "id": CHOICE_ID})  # a duplicate id
    card["actions"] *= 7  # more actions than Teams shows
    problems = renderer_problems([card])[0]
    assert any("1.5" in p for p in problems) and any("Duplicate" in p for p in problems)
    assert any("Maximum number of actions" in p for p in problems)
    del card["version"]
    assert schema_problems(card)
