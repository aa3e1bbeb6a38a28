"""Issue 16, item 3: a masked card number is blank to the NLU's featurizers.

«[tarjeta oculta]» is what customers and agents read in place of a card
number, but its words are real training words: «tarjeta» leans to pagos
mixtos. The spaCy loader of the pipeline (bot/nlu_components.py) blanks the
mask before tokenising; the message text keeps it. Real spaCy, real Rasa
tokenizer.
"""

from __future__ import annotations

import pytest
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer
from rasa.shared.nlu.training_data.message import Message

from bot.nlu_components import CardNumberMasker, LeanSpacyNLP


@pytest.fixture(scope="module")
def read():
    model = LeanSpacyNLP.load_model("es_core_news_sm")
    spacy = LeanSpacyNLP(model, {**LeanSpacyNLP.get_default_config(), "model": "es_core_news_sm"})
    tokenizer = SpacyTokenizer(SpacyTokenizer.get_default_config())

    def tokens(text: str) -> tuple[str, list[tuple[str, int]]]:
        message = Message({"text": text})
        CardNumberMasker().process([message])
        spacy.process([message], model)
        tokenizer.process([message])
        return message.get("text"), [(t.text, t.start) for t in message.get("text_tokens")]

    return tokens


def test_a_card_number_is_masked_in_the_text_and_blank_to_the_featurizers(read) -> None:
    text, tokens = read("pagaron con la tarjeta 5500 0000 0000 0004 y no aparece")
    assert text == "pagaron con la tarjeta [tarjeta oculta] y no aparece"
    assert [t for t, _ in tokens] == ["pagaron", "con", "la", "tarjeta", "y", "no", "aparece"]
    # Offsets still point into the masked text, as the entity extractors read it.
    assert all(text[start : start + len(word)].lower() == word for word, start in tokens)


def test_the_same_message_without_the_number_reads_the_same(read) -> None:
    _, with_card = read("pagaron con la tarjeta 5500 0000 0000 0004 y no aparece")
    _, without = read("pagaron con la tarjeta y no aparece")
    assert [t for t, _ in with_card] == [t for t, _ in without]


def test_words_next_to_the_mask_and_other_numbers_are_kept(read) -> None:
    _, tokens = read("PAGO 4111 1111 1111 1111 REFERENCIA 12345")
    assert [t for t, _ in tokens] == ["pago", "referencia", "12345"]
