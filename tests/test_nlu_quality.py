"""Understanding quality on the held-out set: a regression floor for CI.

`make bench-nlu` prints the full figures against the targets and Rasa's
default pipeline; this test only stops regressions, with floors below the
targets so that ordinary noise does not fail CI.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path


from bot.catalog import Catalog
from bot.nlu_eval import (
    FLOOR_ACCURACY,
    FLOOR_MACRO_F1,
    HELDOUT,
    TRAINING,
    cartera_pair,
    catalog_intents,
    evaluate,
    examples_by_intent,
)


def _norm(text: str) -> str:
    text = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w@]+", " ", text).split())


def test_heldout_set_is_never_used_for_training() -> None:
    training = {_norm(t) for lines in examples_by_intent(sorted(TRAINING.glob("*.yml"))).values() for t in lines}
    heldout = examples_by_intent([HELDOUT])
    leaked = [t for lines in heldout.values() for t in lines if _norm(t) in training]
    assert leaked == []


def test_heldout_set_covers_every_request_type(catalog: Catalog) -> None:
    heldout = examples_by_intent([HELDOUT])
    for intent in catalog_intents(catalog):
        assert len(heldout.get(intent, [])) >= 8, intent


def test_understanding_stays_above_the_regression_floor(catalog: Catalog, model_path: Path, tmp_path: Path) -> None:
    evaluation = evaluate(model_path, tmp_path, "modelo entrenado")
    accuracy, macro_f1 = evaluation.subset(catalog_intents(catalog))
    assert accuracy >= FLOOR_ACCURACY, f"exactitud {accuracy:.3f}; confusiones: {evaluation.confusions.most_common(10)}"
    assert macro_f1 >= FLOOR_MACRO_F1, f"macro-F1 {macro_f1:.3f}"
    for owner, retired in cartera_pair(catalog):
        assert evaluation.confusions_between(owner, retired) == 0, (owner, retired)
