"""Custom NLU components for Rasa 3.6.

``CardNumberMasker`` runs first in the pipeline: customers paste card numbers
("me rechazó la tarjeta 4111 1111 1111 1111"), and a 16-digit run is noise the
classifier never saw in training, enough to drop a clear request into
fallback. Masking it to the same words the tracker store keeps
("[tarjeta oculta]") gives the classifier text it knows.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.privacy import mask_cards


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class CardNumberMasker(GraphComponent):
    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "CardNumberMasker":
        return cls()

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
