"""The knowledge base's record of offers, views and answers, on a real SQLite file and on a dead database."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kb.deflections import (
    ANSWERED,
    DECLINED,
    HELPFUL,
    OFFERED,
    VIEWED,
    DeflectionError,
    DeflectionLog,
)
from bot.kb.model import JSM, Article

CARTERA = Article("eliminar-actualizar-registros-cartera", "Cómo eliminar o actualizar un registro de cartera")
PORTAL = Article(
    "jsm-42", "Reporte de transacciones", url="https://ecollect.atlassian.net/servicedesk/kb/42", source=JSM
)


@pytest.fixture
def log(tmp_path: Path) -> DeflectionLog:
    return DeflectionLog(f"sqlite:///{tmp_path / 'tickets.db'}")


def test_each_article_shown_gets_its_own_link_and_a_view_is_counted_for_its_conversation(log: DeflectionLog) -> None:
    first, second = log.offer("web:ana", OFFERED, [CARTERA, PORTAL], request_type="gestion_archivos", channel="web")
    assert first != second and len(first) >= 16

    target = log.view(second)
    assert target is not None and target.url == PORTAL.url and target.article_id == "jsm-42"
    embedded = log.view(first)
    assert embedded is not None and embedded.url is None and embedded.title == CARTERA.title

    events = log.events(conversation_id="web:ana")
    assert [(e.event, e.article_ids) for e in events] == [
        (OFFERED, (CARTERA.id, PORTAL.id)),
        (VIEWED, (PORTAL.id,)),
        (VIEWED, (CARTERA.id,)),
    ]
    assert events[0].request_type == "gestion_archivos" and events[0].channel == "web"
    assert log.events(conversation_id="web:otro") == []


def test_unknown_or_hostile_tokens_name_nothing(log: DeflectionLog) -> None:
    log.offer("web:ana", ANSWERED, [CARTERA])
    for token in ("", "x" * 33, "no-existe", "' OR 1=1 --"):
        assert log.view(token) is None
    assert [e.event for e in log.events()] == [ANSWERED]


def test_answers_are_kept_in_order(log: DeflectionLog) -> None:
    log.offer("wa:1", OFFERED, [CARTERA])
    log.answer("wa:1", DECLINED, [CARTERA.id])
    log.answer("wa:2", HELPFUL, [CARTERA.id], request_type="gestion_archivos", channel="whatsapp")
    assert [(e.conversation_id, e.event) for e in log.events()] == [
        ("wa:1", OFFERED),
        ("wa:1", DECLINED),
        ("wa:2", HELPFUL),
    ]
    with pytest.raises(ValueError):
        log.answer("wa:1", VIEWED, [CARTERA.id])


def test_a_dead_database_is_a_spanish_error_not_a_crash() -> None:
    log = DeflectionLog("postgresql://nadie:nada@127.0.0.1:1/tickets")  # nothing listens on port 1
    with pytest.raises(DeflectionError, match="No se pudo guardar"):
        log.offer("web:ana", OFFERED, [CARTERA])
