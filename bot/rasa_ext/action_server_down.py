"""The customer hears «Tengo un problema técnico…» when the action server cannot answer.

Replaces (wraps) ``rasa.core.actions.action.RemoteAction.run``, which notes
that the call to the action server failed, and
``rasa.core.processor.MessageProcessor._run_action``, which ends such a turn
with the ``utter_service_unavailable`` response.

Why: when the action server is down (or fails), Rasa 3.6 logs an error, drops
the action's events and answers nothing: the customer waits in silence. Here
the turn ends with one Spanish message instead, followed by ``action_listen``
so that Rasa waits for the customer rather than predicting into the same
failure. The form keeps its state, because the failed action changed nothing,
so the next message continues where the conversation was once the action
server is back. Always installed, also with ``RASA_EXTENSIONS=off``: it is
behaviour the customer relies on, not performance.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from typing import Any, Awaitable, Callable, List

from rasa.core.actions.action import Action, ActionExecutionRejection, RemoteAction
from rasa.core.channels.channel import OutputChannel
from rasa.core.nlg.generator import NaturalLanguageGenerator
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.processor import MessageProcessor
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event
from rasa.shared.core.trackers import DialogueStateTracker

from bot.rasa_ext.patching import applied, expect_release, expect_signature, replace

PATCH = "action_server_down"
UNAVAILABLE_RESPONSE = "utter_service_unavailable"

REMOTE_RUN = "rasa.core.actions.action.RemoteAction.run"
REMOTE_RUN_SIGNATURE = (
    "(self, output_channel: 'OutputChannel', nlg: 'NaturalLanguageGenerator', tracker: 'DialogueStateTracker', "
    "domain: 'Domain') -> List[rasa.shared.core.events.Event]"
)
RUN_ACTION = "rasa.core.processor.MessageProcessor._run_action"
RUN_ACTION_SIGNATURE = (
    "(self, action: rasa.core.actions.action.Action, tracker: rasa.shared.core.trackers.DialogueStateTracker, "
    "output_channel: rasa.core.channels.channel.OutputChannel, nlg: rasa.core.nlg.generator.NaturalLanguageGenerator, "
    "prediction: rasa.core.policies.policy.PolicyPrediction) -> bool"
)

logger = logging.getLogger(__name__)

# Set by the remote action when its call failed, read by the processor in the
# same turn: Rasa awaits one inside the other, in one task, so they share it.
_failed: contextvars.ContextVar[bool] = contextvars.ContextVar("rasa_ext_action_server_failed", default=False)

RemoteRun = Callable[
    [RemoteAction, OutputChannel, NaturalLanguageGenerator, DialogueStateTracker, Domain], Awaitable[List[Event]]
]
RunAction = Callable[
    [MessageProcessor, Action, DialogueStateTracker, OutputChannel, NaturalLanguageGenerator, PolicyPrediction],
    Awaitable[bool],
]


def check(remote_run: Any, run_action: Any) -> None:
    """Raises PatchMismatch unless both methods are the ones of Rasa 3.6 this module wraps."""
    expect_release(PATCH, "rasa")
    expect_signature(PATCH, REMOTE_RUN, remote_run, REMOTE_RUN_SIGNATURE)
    expect_signature(PATCH, RUN_ACTION, run_action, RUN_ACTION_SIGNATURE)


def install() -> bool:
    """Wrap both methods once; False if they already were."""
    if applied(RemoteAction, "run") == PATCH and applied(MessageProcessor, "_run_action") == PATCH:
        return False
    check(RemoteAction.run, MessageProcessor._run_action)
    replace(PATCH, RemoteAction, "run", _noting_failures)
    replace(PATCH, MessageProcessor, "_run_action", _explaining_failures)
    return True


def _noting_failures(run: RemoteRun) -> RemoteRun:
    @functools.wraps(run)
    async def run_noting_failures(
        self: RemoteAction,
        output_channel: OutputChannel,
        nlg: NaturalLanguageGenerator,
        tracker: DialogueStateTracker,
        domain: Domain,
    ) -> List[Event]:
        try:
            return await run(self, output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise  # a form refusing the message: Rasa's own path, not a failure
        except Exception:
            _failed.set(True)
            raise

    return run_noting_failures


def _explaining_failures(run_action: RunAction) -> RunAction:
    @functools.wraps(run_action)
    async def run_action_explaining_failures(
        self: MessageProcessor,
        action: Action,
        tracker: DialogueStateTracker,
        output_channel: OutputChannel,
        nlg: NaturalLanguageGenerator,
        prediction: PolicyPrediction,
    ) -> bool:
        _failed.set(False)
        keep_predicting = await run_action(self, action, tracker, output_channel, nlg, prediction)
        if not _failed.get():
            return keep_predicting
        _failed.set(False)
        logger.error("Action server unavailable while running %s; the customer was told.", action.name())
        await _tell_the_customer(tracker, output_channel, nlg)
        # Wait for the customer instead of predicting into the same failure; the
        # listen event tells the form that the next message is an answer again.
        tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
        return False

    return run_action_explaining_failures


async def _tell_the_customer(
    tracker: DialogueStateTracker, output_channel: OutputChannel, nlg: NaturalLanguageGenerator
) -> None:
    message: Any = await nlg.generate(UNAVAILABLE_RESPONSE, tracker, output_channel.name())
    if not message:
        return
    await output_channel.send_response(tracker.sender_id, message)
    data = {key: value for key, value in message.items() if key != "text"}
    tracker.update(BotUttered(message.get("text"), data=data, metadata={"utter_action": UNAVAILABLE_RESPONSE}))
