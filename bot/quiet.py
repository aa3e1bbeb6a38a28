"""Keep the operator's warning filters in force over Sanic's.

Sanic 21.12 calls ``warnings.filterwarnings("once", DeprecationWarning)`` when
it is imported, which puts the deprecation notices of Rasa's dependencies
back on the console ahead of ``PYTHONWARNINGS`` (the launcher sets it to
ignore them, so that the lines an operator needs are not buried). Applying the
interpreter's options again after importing Sanic gives them precedence.
"""

from __future__ import annotations

import importlib
import sys
import warnings


def honour_warning_options() -> None:
    """Import Sanic, then re-apply -W / PYTHONWARNINGS in front of its filter."""
    importlib.import_module("sanic")  # its import installs the filter overridden below

    # The interpreter's own parser of -W and PYTHONWARNINGS (CPython 3.10).
    warnings._processoptions(sys.warnoptions)  # type: ignore[attr-defined]
