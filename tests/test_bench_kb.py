"""`make bench-kb` keeps working: its computation on a slice, and a floor under the shipped articles' recall."""

from __future__ import annotations

from bot import bench_kb
from bot.catalog import Catalog
from bot.settings.kb import DEFAULT_KB_DIR
from tests.fake_jsm import FakeJsmServer

FLOOR = 0.85  # recall@3 on the shipped articles' held-out questions; the target is 0.9


def test_the_shipped_articles_held_out_recall_stays_above_the_floor(catalog: Catalog) -> None:
    questions = bench_kb.load_questions()
    assert len([q for q in questions if q.expect]) >= 30 and any(not q.expect for q in questions)
    kb = bench_kb.shipped_kb(catalog, DEFAULT_KB_DIR)
    ours = bench_kb.evaluate(bench_kb.ids_of(kb), questions)
    assert ours.recall >= FLOOR, ours.misses
    assert ours.rejected >= 0.75  # off-topic questions get no article
    assert 0 < ours.mrr <= 1 and ours.p95_ms < 100


def test_the_bench_measures_the_jsm_backend_and_the_baseline_on_a_slice(catalog: Catalog) -> None:
    articles = bench_kb.synthetic_articles()
    assert len(articles) >= 50 and all("sintético" in a.body for a in articles)
    held = bench_kb.synthetic_questions()[::8]
    server = FakeJsmServer()
    try:
        kb, pages = bench_kb.jsm_kb(catalog, server, DEFAULT_KB_DIR)
        ours = bench_kb.evaluate(lambda text: [pages.get(i, i) for i in bench_kb.ids_of(kb)(text)], held)
        assert len(server.fake.called("GET", "/knowledgebase/article")) == len(held)  # JSM answered each one
    finally:
        server.close()
    baseline = bench_kb.evaluate(bench_kb.KeywordBaseline(articles).search, held)
    assert ours.answered == baseline.answered == len(held)
    assert ours.recall >= 0.8 and ours.recall >= baseline.recall


def test_the_metrics() -> None:
    questions = [bench_kb.Question("a", ("x",)), bench_kb.Question("b", ("y",)), bench_kb.Question("c", ())]
    answers = {"a": ["x"], "b": ["z", "w", "q", "y"], "c": ["x"]}
    scores = bench_kb.evaluate(lambda text: answers[text], questions)
    assert scores.recall == 0.5 and scores.mrr == (1 + 1 / 4) / 2 and scores.rejected == 0.0
    assert scores.misses == ("b",)
