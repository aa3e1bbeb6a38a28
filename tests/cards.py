"""The test card number and the one way tests look for it, so that a stray
"4111" inside a timestamp or an id never passes for a leaked card."""

from __future__ import annotations

import re

CARD = "4111 1111 1111 1111"
_CARD_PATTERN = re.compile(r"4111[\s.-]*1111[\s.-]*1111[\s.-]*1111")


def shows_card(text: str) -> bool:
    """True when the test card appears in text, in any of the usual spellings."""
    return bool(_CARD_PATTERN.search(text))
