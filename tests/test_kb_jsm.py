"""The knowledge base with JSM's: used when configured, the embedded articles when JSM is slow, down or empty."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bot.catalog import Catalog
from bot.kb import EMBEDDED, JSM, KnowledgeBase, build_knowledge_base
from bot.kb.analysis import Analyzer
from bot.kb.embedded import EmbeddedBase
from bot.kb.jsm import JsmArticles
from bot.kb.synonyms import Synonyms
from bot.settings.kb import DEFAULT_KB_DIR, KbSettings
from bot.settings.tickets import JsmSettings, TicketsSettings
from tests.fake_jsm import DESK_ID, EMAIL, TOKEN, FakeJsmServer, Scripted, jsm_server  # noqa: F401 (fixture)

ROUTE = "/rest/servicedeskapi/servicedesk/{desk}/knowledgebase/article"
QUESTION = "¿cómo actualizo registros de cartera?"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def jsm_settings(server: FakeJsmServer, token: str = TOKEN) -> JsmSettings:
    return JsmSettings(site_url=server.url, service_desk_id=DESK_ID, email=EMAIL, api_token=token)


def kb_calls(server: FakeJsmServer) -> list[Any]:
    return server.fake.called("GET", "/knowledgebase/article")


@pytest.fixture
def desk(jsm_server: FakeJsmServer) -> FakeJsmServer:  # noqa: F811 (the fixture above)
    jsm_server.fake.add_article(
        "Cómo actualizar los registros de cartera desde JSM",
        "Los registros de cartera se actualizan con el cargue de cartera.",
        "Registros de cartera: eliminar, actualizar, cargue de cartera del Módulo Administrativo.",
        page_id="4242",
    )
    jsm_server.fake.add_article("Cómo descargar el reporte", "Pasos para descargar el reporte de transacciones.")
    return jsm_server


@pytest.fixture
def clock() -> Clock:
    return Clock()


def knowledge_base(desk: FakeJsmServer, catalog: Catalog, clock: Clock, timeout: float) -> KnowledgeBase:
    synonyms = Synonyms(catalog, Analyzer())
    jsm = JsmArticles(jsm_settings(desk), synonyms, timeout=timeout, cache_seconds=60, clock=clock)
    return KnowledgeBase(EmbeddedBase(DEFAULT_KB_DIR, synonyms), jsm, threshold=0.5, retry_seconds=30, clock=clock)


@pytest.fixture
def kb(desk: FakeJsmServer, catalog: Catalog, clock: Clock) -> KnowledgeBase:
    """A patient one: with the clock still, one stall on a loaded machine would pause JSM for the whole test."""
    return knowledge_base(desk, catalog, clock, timeout=5.0)


def test_jsm_answers_when_the_tickets_go_to_jsm(desk: FakeJsmServer, catalog: Catalog) -> None:
    tickets = TicketsSettings(backend="jsm", jsm=jsm_settings(desk))
    kb = build_knowledge_base(KbSettings(), tickets, catalog)  # KB_BACKEND=auto
    assert kb.backend == JSM
    found = kb.search(QUESTION)
    assert found and found[0].source == JSM
    assert found[0].article.title == "Cómo actualizar los registros de cartera desde JSM"
    assert found[0].article.url == f"{desk.url}/servicedesk/customer/portal/{DESK_ID}/article/4242"
    assert found[0].article.id == "jsm-4242" and kb.get("jsm-4242") == found[0].article
    ((method, path, query, _),) = kb_calls(desk)
    assert query["highlight"] == "false" and "actualizo" in query["query"] and "cómo" not in query["query"]


def test_the_embedded_base_answers_when_the_tickets_stay_local(catalog: Catalog) -> None:
    kb = build_knowledge_base(KbSettings(), TicketsSettings(), catalog)
    assert kb.backend == EMBEDDED and kb.search(QUESTION)[0].source == EMBEDDED


def test_jsm_asked_for_without_credentials_falls_back_with_an_error(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.kb"):
        kb = build_knowledge_base(KbSettings(backend="jsm"), TicketsSettings(), catalog)
    assert kb.backend == EMBEDDED and kb.search(QUESTION)[0].source == EMBEDDED
    assert "JSM_SITE_URL" in caplog.text


def test_a_slow_jsm_is_replaced_by_the_embedded_base_and_tried_again_later(
    desk: FakeJsmServer, catalog: Catalog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    kb = knowledge_base(desk, catalog, clock, timeout=0.5)
    desk.fake.kb_delay = 5.0  # well past the 0.5 s timeout
    with caplog.at_level(logging.DEBUG, logger="bot.kb"):
        first = kb.search(QUESTION)
        second = kb.search("¿cómo elimino un registro de cartera?")
    assert first[0].source == EMBEDDED and second[0].source == EMBEDDED
    assert len(kb_calls(desk)) == 1  # paused after the failure: the second customer did not wait
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no respondió" in warnings[0].getMessage()
    desk.fake.kb_delay = 0.0
    clock.now += 31
    with caplog.at_level(logging.WARNING, logger="bot.kb"):
        again = kb.search("¿cómo borro un registro de cartera?")
    assert again[0].source == JSM and len(kb_calls(desk)) == 2
    assert "volvió a responder" in caplog.records[-1].getMessage()


def test_a_jsm_site_down_and_back_up(kb: KnowledgeBase, desk: FakeJsmServer, clock: Clock) -> None:
    desk.down()
    assert kb.search(QUESTION)[0].source == EMBEDDED
    clock.now += 31
    assert kb.search(QUESTION)[0].source == EMBEDDED  # still down: tried, and the embedded base answered
    desk.up()
    clock.now += 31
    assert kb.search(QUESTION)[0].source == JSM


def test_an_outage_is_logged_once_not_per_question(
    kb: KnowledgeBase, desk: FakeJsmServer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    desk.down()
    with caplog.at_level(logging.WARNING, logger="bot.kb"):
        for _ in range(4):
            kb.search(QUESTION)
            clock.now += 31
    assert len([r for r in caplog.records if "JSM" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    "answer",
    [
        Scripted(status=500, body={"errorMessage": "Internal server error"}),
        Scripted(status=503, body="<html>Service Unavailable</html>"),
        Scripted(status=200, body="no es json"),
        Scripted(status=200, body={"values": "no es una lista"}),
        Scripted(status=404, body={"errorMessage": "The service desk does not exist."}),
    ],
)
def test_jsm_errors_fall_back_to_the_embedded_base(kb: KnowledgeBase, desk: FakeJsmServer, answer: Scripted) -> None:
    desk.fake.script("GET", ROUTE, answer)
    assert kb.search(QUESTION)[0].source == EMBEDDED


def test_jsm_asking_to_wait_is_obeyed(kb: KnowledgeBase, desk: FakeJsmServer, clock: Clock) -> None:
    desk.fake.script(
        "GET", ROUTE, Scripted(status=429, body={"errorMessage": "Rate limit"}, headers={"Retry-After": "120"})
    )
    assert kb.search(QUESTION)[0].source == EMBEDDED
    clock.now += 60
    assert kb.search(QUESTION)[0].source == EMBEDDED and len(kb_calls(desk)) == 1
    clock.now += 61
    assert kb.search(QUESTION)[0].source == JSM and len(kb_calls(desk)) == 2


def test_refused_credentials_fall_back(desk: FakeJsmServer, catalog: Catalog, caplog: pytest.LogCaptureFixture) -> None:
    synonyms = Synonyms(catalog, Analyzer())
    jsm = JsmArticles(jsm_settings(desk, token="otro"), synonyms)
    kb = KnowledgeBase(EmbeddedBase(DEFAULT_KB_DIR, synonyms), jsm)
    with caplog.at_level(logging.WARNING, logger="bot.kb"):
        assert kb.search(QUESTION)[0].source == EMBEDDED
    assert "JSM_API_TOKEN" in caplog.text


def test_jsm_with_nothing_relevant_leaves_the_answer_to_the_embedded_base(
    kb: KnowledgeBase, desk: FakeJsmServer
) -> None:
    desk.fake.kb_articles.clear()
    found = kb.search(QUESTION)
    assert found and found[0].source == EMBEDDED and len(kb_calls(desk)) == 1


def test_the_same_question_is_answered_from_the_cache(kb: KnowledgeBase, desk: FakeJsmServer, clock: Clock) -> None:
    assert kb.search(QUESTION)[0].source == JSM
    assert kb.search(QUESTION)[0].source == JSM and len(kb_calls(desk)) == 1
    clock.now += 61
    assert kb.search(QUESTION)[0].source == JSM and len(kb_calls(desk)) == 2


def test_jsm_results_are_re_ranked_and_held_to_the_threshold(kb: KnowledgeBase, desk: FakeJsmServer) -> None:
    # JSM's search puts the reporte page first (more shared words); the scorer puts the cartera one first.
    desk.fake.kb_articles.reverse()
    found = kb.search("registros de cartera y reporte de cartera")
    assert [m.article.id for m in found][:1] == ["jsm-4242"]
    assert kb.search("quiero pedir una pizza") == []


def test_hostile_article_values_are_dropped_or_defused(kb: KnowledgeBase, desk: FakeJsmServer) -> None:
    values = [
        {
            "title": "Cartera: registros",
            "excerpt": "<script>alert(1)</script>registros de cartera",
            "source": {"type": "confluence", "pageId": "../../x"},
            "content": {"iframeSrc": "javascript:alert(1)"},
        },
        {"title": None, "excerpt": "sin título"},
        "no es un objeto",
        {"title": "   "},
    ]
    desk.fake.script("GET", ROUTE, Scripted(status=200, body={"values": values, "isLastPage": True}))
    found = kb.search("registros de cartera", k=5)
    jsm_found = [m for m in found if m.source == JSM]
    assert len(jsm_found) == 1
    hostile = jsm_found[0].article
    assert hostile.url is None and "<script>" not in hostile.excerpt and hostile.id.startswith("jsm-")
    assert "/" not in hostile.id and "." not in hostile.id


def test_embedded_ids_do_not_reach_jsm(kb: KnowledgeBase, desk: FakeJsmServer, tmp_path: Path) -> None:
    assert kb.get("eliminar-actualizar-registros-cartera") is not None
    assert kb.get("jsm-0000") is None and kb_calls(desk) == []
