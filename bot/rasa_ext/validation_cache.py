"""The action server's responses checked against a schema compiled once.

Replaces ``rasa.core.actions.action.RemoteAction._validate_action_result``.

Why: Rasa calls ``jsonschema.validate`` for every response of the action
server, and that first re-validates the (constant) response schema against
its meta-schema. The py-spy profile of ``make bench-load`` put half of the
Rasa process's CPU there. Here the validator is built once; each response is
checked against the same schema, and an invalid one raises the same error
(``best_match`` of the schema's errors) with Rasa's own message appended.
Performance: installed only with ``RASA_EXTENSIONS`` on (the default).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Text

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL

from bot.rasa_ext.patching import applied, expect_release, expect_signature, replace

PATCH = "validation_cache"

VALIDATE = "rasa.core.actions.action.RemoteAction._validate_action_result"
VALIDATE_SIGNATURE = "(self, result: Dict[str, Any]) -> bool"
SPEC = "rasa.core.actions.action.RemoteAction.action_response_format_spec"
SPEC_SIGNATURE = "() -> Dict[str, Any]"

Validate = Callable[[RemoteAction, Dict[Text, Any]], bool]


def check(validate: Any, spec: Any) -> None:
    """Raises PatchMismatch unless Rasa validates responses with the methods this module was written for."""
    expect_release(PATCH, "rasa")
    expect_signature(PATCH, VALIDATE, validate, VALIDATE_SIGNATURE)
    expect_signature(PATCH, SPEC, spec, SPEC_SIGNATURE)


def install() -> bool:
    if applied(RemoteAction, "_validate_action_result") == PATCH:
        return False
    check(RemoteAction._validate_action_result, RemoteAction.action_response_format_spec)
    return replace(PATCH, RemoteAction, "_validate_action_result", _compiled_once)


def _compiled_once(validate: Validate) -> Validate:
    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)  # what jsonschema.validate repeated for every response
    validator = validator_class(schema)

    @functools.wraps(validate)
    def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
        error = best_match(validator.iter_errors(result))
        if error is None:
            return True
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
        )
        raise error

    return validate_action_result
