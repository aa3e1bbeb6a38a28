"""Run Rasa (``python -m bot.rasa_runtime run ...``) with the project's safety net.

When the action server cannot be reached, Rasa 3.6 logs an error, drops the
action's events and answers nothing: the customer waits in silence. Here a
failed call to the action server ends the turn with one Spanish message
(``utter_service_unavailable``) instead. The form keeps its state, because
the failed action changed nothing, so the next message continues where the
conversation was once the action server is back.

The patch wraps two methods of the pinned Rasa version (3.6.21); tests start
Rasa through this entry point and stop the action server mid-form.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from typing import Any

logger = logging.getLogger(__name__)

UNAVAILABLE_RESPONSE = "utter_service_unavailable"
_action_server_failed: contextvars.ContextVar[bool] = contextvars.ContextVar("action_server_failed", default=False)


def install() -> None:
    from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.constants import ACTION_LISTEN_NAME
    from rasa.shared.core.events import ActionExecuted, BotUttered

    if getattr(MessageProcessor, "_soporte_ecollect_patched", False):
        return
    remote_run = RemoteAction.run
    run_action = MessageProcessor._run_action

    async def guarded_remote_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await remote_run(self, *args, **kwargs)
        except ActionExecutionRejection:
            raise
        except Exception:
            _action_server_failed.set(True)
            raise

    async def guarded_run_action(self: Any, action: Any, tracker: Any, output_channel: Any, nlg: Any, prediction: Any) -> bool:
        _action_server_failed.set(False)
        keep_predicting = await run_action(self, action, tracker, output_channel, nlg, prediction)
        if not _action_server_failed.get():
            return keep_predicting
        _action_server_failed.set(False)
        logger.error("Action server unavailable while running %s; the customer was told.", action.name())
        message = await nlg.generate(UNAVAILABLE_RESPONSE, tracker, output_channel.name())
        if message:
            await output_channel.send_response(tracker.sender_id, message)
            tracker.update(BotUttered(message.get("text"), data={k: v for k, v in message.items() if k != "text"},
                                      metadata={"utter_action": UNAVAILABLE_RESPONSE}))
        # Wait for the customer instead of predicting into the same failure; the
        # listen event tells the form that the next message is an answer again.
        tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
        return False

    RemoteAction.run = guarded_remote_run  # type: ignore[assignment]
    MessageProcessor._run_action = guarded_run_action  # type: ignore[assignment]
    MessageProcessor._soporte_ecollect_patched = True  # type: ignore[attr-defined]


def main() -> None:
    install()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *sys.argv[1:]]
    rasa_main()


if __name__ == "__main__":
    main()
