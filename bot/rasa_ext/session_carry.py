"""A new session keeps an open reply or CSAT form.

Wraps ``rasa.core.actions.action.ActionSessionStart.run`` (always on).

Why: Rasa starts a new session when the customer's last message is older
than the domain's session expiration (60 minutes), and a new session has no
active form. Agents answer hours later: without this, the customer's answer
to the agent would open a new request. Rasa's own events are kept as they
are (``SessionStarted``, the slots carried over, ``action_listen``); when
the session being closed had the reply or CSAT form open, the form and its
requested slot are set again before ``action_listen``. Which forms are kept
is the dialogue's decision (``bot.dialogue.followup.carried_loop``). Done
here, in the Rasa process, rather than by a custom ``action_session_start``,
so a new conversation never needs the action server to begin.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Coroutine, List

from rasa.core.actions.action import ActionSessionStart
from rasa.shared.core.constants import REQUESTED_SLOT
from rasa.shared.core.events import ActionExecuted, ActiveLoop, Event, SlotSet

from bot.dialogue.followup import carried_loop
from bot.rasa_ext.patching import applied, expect_release, expect_signature, replace

PATCH = "session_carry"

RUN = "rasa.core.actions.action.ActionSessionStart.run"
RUN_SIGNATURE = (
    "(self, output_channel: 'OutputChannel', nlg: 'NaturalLanguageGenerator', "
    "tracker: 'DialogueStateTracker', domain: 'Domain') -> List[rasa.shared.core.events.Event]"
)

Run = Callable[..., Coroutine[Any, Any, List[Event]]]


def install() -> bool:
    if applied(ActionSessionStart, "run") == PATCH:
        return False
    expect_release(PATCH, "rasa")
    expect_signature(PATCH, RUN, ActionSessionStart.run, RUN_SIGNATURE)
    return replace(PATCH, ActionSessionStart, "run", _keeping_followup_forms)


def carried_events(active_loop: Any, slots: dict[str, Any]) -> list[Event]:
    """The form (and its requested slot) the new session keeps; none for any other form."""
    carried = carried_loop(active_loop, slots)
    if carried is None:
        return []
    return [ActiveLoop(carried[0]), SlotSet(REQUESTED_SLOT, carried[1])]


def _keeping_followup_forms(run: Run) -> Run:
    @functools.wraps(run)
    async def run_keeping_forms(
        self: ActionSessionStart, output_channel: Any, nlg: Any, tracker: Any, domain: Any
    ) -> List[Event]:
        events = await run(self, output_channel, nlg, tracker, domain)
        if not domain.session_config.carry_over_slots:
            return events
        kept = carried_events(tracker.active_loop_name, tracker.current_slot_values())
        if not kept:
            return events
        listen = next((i for i, e in enumerate(events) if isinstance(e, ActionExecuted)), len(events))
        return events[:listen] + kept + events[listen:]

    return run_keeping_forms
