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

# The enlarged held-out set of issue 16: its size is part of what the figures mean.
MIN_HELDOUT = 600
MIN_PER_REQUEST_TYPE = 20
MIN_PER_CLOSE_PAIR_SIDE = 40  # retired option / cartera upload failures
# A training phrase that shares this much of a long held-out phrase's words is a near-copy.
NEAR_COPY_MIN_WORDS = 8
NEAR_COPY_JACCARD = 0.75


def _norm(text: str) -> str:
    text = "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w@]+", " ", text).split())


def test_heldout_set_is_never_used_for_training() -> None:
    training = {_norm(t) for lines in examples_by_intent(sorted(TRAINING.glob("*.yml"))).values() for t in lines}
    heldout = examples_by_intent([HELDOUT])
    leaked = [t for lines in heldout.values() for t in lines if _norm(t) in training]
    assert leaked == []


def test_no_training_phrase_is_a_near_copy_of_a_heldout_phrase() -> None:
    """Rewording a held-out phrase into training would measure memory, not understanding."""
    training = [
        set(_norm(t).split()) for lines in examples_by_intent(sorted(TRAINING.glob("*.yml"))).values() for t in lines
    ]
    near = []
    for lines in examples_by_intent([HELDOUT]).values():
        for text in lines:
            words = set(_norm(text).split())
            if len(words) < NEAR_COPY_MIN_WORDS:
                continue
            for other in training:
                if len(words & other) / len(words | other) >= NEAR_COPY_JACCARD:
                    near.append(text)
                    break
    assert near == []


def test_heldout_set_covers_every_request_type(catalog: Catalog) -> None:
    heldout = examples_by_intent([HELDOUT])
    assert sum(map(len, heldout.values())) >= MIN_HELDOUT
    for intent in catalog.request_intents:
        assert len(heldout.get(intent, [])) >= MIN_PER_REQUEST_TYPE, intent
    for owner, retired in cartera_pair(catalog):
        assert len(heldout.get(retired, [])) >= MIN_PER_CLOSE_PAIR_SIDE, retired
        uploads = [t for t in heldout.get(owner, []) if "cartera" in _norm(t)]
        assert len(uploads) >= MIN_PER_CLOSE_PAIR_SIDE, owner


def test_understanding_stays_above_the_regression_floor(catalog: Catalog, model_path: Path, tmp_path: Path) -> None:
    evaluation = evaluate(model_path, tmp_path, "modelo entrenado")
    accuracy, macro_f1 = evaluation.subset(catalog_intents(catalog))
    assert accuracy >= FLOOR_ACCURACY, f"exactitud {accuracy:.3f}; confusiones: {evaluation.confusions.most_common(10)}"
    assert macro_f1 >= FLOOR_MACRO_F1, f"macro-F1 {macro_f1:.3f}"
    for owner, retired in cartera_pair(catalog):
        assert evaluation.confusions_between(owner, retired) == 0, (owner, retired)
