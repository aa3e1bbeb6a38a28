"""Custom NLU components for Rasa 3.6: card masking and a leaner spaCy loader.

``CardNumberMasker`` runs first in the pipeline: customers paste card numbers
("me rechazó la tarjeta 4111 1111 1111 1111"), and a 16-digit run is noise the
classifier never saw in training, enough to drop a clear request into
fallback. It is masked to the same words the tracker store keeps
("[tarjeta oculta]"), which ``LeanSpacyNLP`` then blanks for the featurizers.
"""

from __future__ import annotations

from typing import Any, Dict, FrozenSet, List, Optional, Text, Tuple

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.utils.spacy_utils import SpacyModel, SpacyNLP
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.catalog import RetiredOption, get_catalog
from bot.contacts import only_contacts
from bot.privacy import CARD_MASK, mask_cards

INFORM = "inform"


class _Stateless(GraphComponent):
    """A component with no configuration, training or state."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        return cls()


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class CardNumberMasker(_Stateless):
    @staticmethod
    def _mask(message: Message) -> None:
        text = message.get(TEXT)
        if text and any(ch.isdigit() for ch in text):
            message.set(TEXT, mask_cards(text))

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._mask(message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            self._mask(example)
        return training_data


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MODEL_LOADER, DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER],
    is_trainable=False,
    model_from="LeanSpacyNLP",
)
class LeanSpacyNLP(SpacyNLP):
    """SpacyNLP without the named-entity recogniser.

    Rasa already switches off spaCy's parser; nothing in this pipeline reads
    spaCy's entities either, yet the recogniser ran on every message: half of
    spaCy's time per message (2.0 -> 1.0 ms, measured on the 1,899 training
    and held-out texts, with identical tokens, lemmas, POS and tags).
    """

    def _preprocess_text(self, text: Optional[Text]) -> Text:
        """The text spaCy tokenises: a masked card is blank, so no featurizer reads «tarjeta oculta».

        The mask's words are real words of the training data («tarjeta» leans
        to pagos mixtos): «pagaron con la tarjeta [tarjeta oculta]» read as
        two cards. Blanks of the same length keep every token's offset in
        the message text, which keeps the mask for everything else.
        """
        return super()._preprocess_text(text).replace(CARD_MASK, " " * len(CARD_MASK))

    @staticmethod
    def load_model(spacy_model_name: Text) -> SpacyModel:
        loaded = SpacyNLP.load_model(spacy_model_name)
        if "ner" in loaded.model.pipe_names:
            loaded.model.disable_pipe("ner")
        return loaded


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class ContactOnlyMessage(_Stateless):
    """A message made only of an e-mail or a phone is a datum ("inform").

    Bare addresses and numbers share character n-grams with request examples
    ("colegio.edu.co", "banco"), so the classifier sometimes reads
    "jorge@colegio.edu.co" as a request type; contact data is found exactly
    (email-validator, phonenumbers), so no guess is needed. Runs after the
    fallback classifier, so it also rescues a bare number read as nothing.
    """

    def process(self, messages: List[Message]) -> List[Message]:
        countries = get_catalog().country_ids
        for message in messages:
            text = message.get(TEXT) or ""
            if text.startswith("/") or not only_contacts(text, countries):
                continue
            message.set(INTENT, {INTENT_NAME_KEY: INFORM, PREDICTED_CONFIDENCE_KEY: 1.0}, add_to_output=True)
        return messages


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class RetiredOptionCheck(GraphComponent):
    """A second look when DIET puts a retired option and its owner first and second.

    Sending a cartera upload failure to the retired «eliminar/actualizar
    registros de cartera» redirect is the costliest confusion, and the catalog
    knows what DIET does not: the retired option is asked for with one of its
    verbs (``RetiredOption.asked_for_in``: borrar, actualizar, corregir…).
    - The retired option first, its owner second, and none of its verbs in
      the message: the owner goes first, however sure DIET is («el cargue de
      cartera de hoy falló y necesitamos que los clientes vean sus facturas»).
    - A call the FallbackClassifier would not trust (top below its threshold,
      or the two within its ambiguity margin): the retired option first when
      one of its verbs is there, otherwise the owner.
    A confident owner is never moved: verbs alone misread «la cartera no
    aparece actualizada». The confidences stay as they were, so a message that
    went to suggestions still does; only their order follows the catalog.
    """

    def __init__(self, threshold: float, ambiguity_threshold: float) -> None:
        self.threshold = threshold
        self.ambiguity_threshold = ambiguity_threshold
        # Built once: every parse of every message runs ``process``.
        self.pairs: Dict[FrozenSet[str], Tuple[RetiredOption, str]] = {
            frozenset((retired.intent, owner.intent)): (retired, owner.intent)
            for retired, owner in get_catalog().retired_with_owners()
        }

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"threshold": 0.5, "ambiguity_threshold": 0.1}  # config.yml's FallbackClassifier

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> GraphComponent:
        return cls(float(config["threshold"]), float(config["ambiguity_threshold"]))

    def _close_call(self, first: Dict[Text, Any], second: Dict[Text, Any]) -> bool:
        top = float(first.get(PREDICTED_CONFIDENCE_KEY) or 0)
        return top < self.threshold or top - float(second.get(PREDICTED_CONFIDENCE_KEY) or 0) < self.ambiguity_threshold

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            ranking = list(message.get(INTENT_RANKING_KEY) or [])
            if len(ranking) < 2:
                continue
            found = self.pairs.get(frozenset((ranking[0].get(INTENT_NAME_KEY), ranking[1].get(INTENT_NAME_KEY))))
            if found is None:
                continue
            retired, owner_intent = found
            asked = retired.asked_for_in(message.get(TEXT) or "")
            if self._close_call(ranking[0], ranking[1]):
                wanted = retired.intent if asked else owner_intent
            elif ranking[0].get(INTENT_NAME_KEY) == retired.intent and not asked:
                wanted = owner_intent
            else:
                continue
            if ranking[0].get(INTENT_NAME_KEY) == wanted:
                continue
            first, second = ranking[0], ranking[1]
            ranking[0] = {**second, PREDICTED_CONFIDENCE_KEY: first.get(PREDICTED_CONFIDENCE_KEY)}
            ranking[1] = {**first, PREDICTED_CONFIDENCE_KEY: second.get(PREDICTED_CONFIDENCE_KEY)}
            message.set(INTENT, dict(ranking[0]), add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
