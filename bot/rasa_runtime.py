"""Run Rasa (``python -m bot.rasa_runtime run ...``) with the project's safety net
and one measured performance fix.

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
import os
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
    RemoteAction._validate_action_result = _cached_validation(RemoteAction)  # type: ignore[assignment]
    _keep_alive_endpoint_sessions()
    _cached_event_types()
    MessageProcessor._run_action = guarded_run_action  # type: ignore[assignment]
    MessageProcessor._soporte_ecollect_patched = True  # type: ignore[attr-defined]


def _cached_validation(remote_action: Any) -> Any:
    """The same check of action server responses, with the schema compiled once.

    Rasa calls ``jsonschema.validate`` for every action response, which first
    re-validates the (constant) schema against its meta-schema: the profile of
    ``make bench-load`` put half of the Rasa process's CPU there. The response
    is validated against the same schema, with the same error message.
    """
    from jsonschema import ValidationError
    from jsonschema.validators import validator_for
    from rasa.shared.constants import DOCS_BASE_URL

    schema = remote_action.action_response_format_spec()
    validator = validator_for(schema)(schema)

    def validate_action_result(self: Any, result: Any) -> bool:
        try:
            validator.validate(result)
            return True
        except ValidationError as e:
            e.message += (
                ". Failed to validate Action server response from API, "
                "make sure your response from the Action endpoint is valid. "
                f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
            )
            raise e

    return validate_action_result


def _keep_alive_endpoint_sessions() -> None:
    """Reuse one HTTP connection pool per endpoint instead of one per call.

    Rasa opens (and closes) a new aiohttp session, hence a new TCP connection,
    for every call to the action server: 12% of the Rasa process's CPU in
    the ``make bench-load`` profile. Here each endpoint keeps one session per
    event loop; ``async with`` no longer closes it. Idle connections are
    dropped by the client (30 s) before the action server's keep-alive
    limit (60 s, bot.action_server), so a reused connection is never stale.
    """
    import asyncio

    import aiohttp
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

    sessions: dict[tuple[int, int], aiohttp.ClientSession] = {}

    class _Kept:
        def __init__(self, session: aiohttp.ClientSession) -> None:
            self.session = session

        async def __aenter__(self) -> aiohttp.ClientSession:
            return self.session

        async def __aexit__(self, *exc: Any) -> None:
            return None

    def session(self: Any) -> Any:
        loop = asyncio.get_event_loop()
        key = (id(self), id(loop))
        kept = sessions.get(key)
        if kept is None or kept.closed:
            auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"]) if self.basic_auth else None
            kept = aiohttp.ClientSession(
                headers=self.headers,
                auth=auth,
                timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
                connector=aiohttp.TCPConnector(keepalive_timeout=30),
            )
            sessions[key] = kept
        return _Kept(kept)

    EndpointConfig.session = session  # type: ignore[assignment]


def _cached_event_types() -> None:
    """Event class by type name, looked up once instead of for every event.

    Rasa walks the whole Event class hierarchy for each event it
    deserialises (every tracker loaded from the store, every action
    response): 8% of the Rasa process's CPU in the bench profile.
    """
    import rasa.shared.utils.common
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    by_name: dict[str, Any] = {}

    def resolve_by_type(type_name: str, default: Any = None) -> Any:
        if not by_name:
            by_name.update({cls.type_name: cls for cls in rasa.shared.utils.common.all_subclasses(Event)})
        cls = by_name.get(type_name)
        return cls if cls is not None else original(type_name, default)

    Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[assignment]


def main() -> None:
    from bot.quiet import honour_warning_options

    honour_warning_options()
    install()
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *with_api_token(sys.argv[1:], os.environ.get("RASA_API_TOKEN", ""))]
    rasa_main()


def with_api_token(arguments: list[str], token: str) -> list[str]:
    """Rasa's arguments with the API token added inside this process.

    Rasa reads its token only from ``--auth-token``; a token on the command
    line that starts the process would be visible to every user in ``ps``.
    ``sys.argv`` changed here is not: ``/proc/<pid>/cmdline`` keeps the
    original. An API enabled without any token is refused.
    """
    if "--enable-api" not in arguments or "--auth-token" in arguments:
        return arguments
    token = token.strip()
    if not token:
        raise SystemExit("RASA_API_TOKEN está vacía: la API HTTP de Rasa no se abre sin token.")
    return [*arguments, "--auth-token", token]


if __name__ == "__main__":
    main()
