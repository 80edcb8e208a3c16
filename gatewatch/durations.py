"""Durations as people write them (``"90s"``, ``"2m"``, ``"1h30m"``, ``"250ms"``): parsed once.

Every file gatewatch reads (configuration, simulator scenarios and control requests, rehearsal
options, alert ``for:`` fields) uses this one parser, so a duration that one part accepts the
others accept too. The form is Prometheus's: units ``h``, ``m``, ``s``, ``ms`` in that order, each
at most once, plus bare numbers of seconds. Not a number that is infinite or NaN (``1e999``,
``.nan``), nor negative, nor above :data:`MAX_SECONDS`: such a value is a typo or an attack, and a
NaN or infinite wait would make a fault permanent or a timer never fire.

IB's own duration strings for historical data (``"1 D"``, ``"2 W"``) are a different language,
parsed where the simulator answers those requests.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

MAX_SECONDS = 1e9
"""About 31 years: longer than any session, timeout or fault could sensibly be."""

_FORM = re.compile(
    r"^(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?\s*(?:(\d+(?:\.\d+)?)ms)?$"
)
_HINT = "use seconds or strings like '30s', '2m', '1h30m', '250ms'"


def parse_duration(value: Any) -> float:
    """Seconds from a number, a ``timedelta`` or a string like ``"1h30m"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration: {value!r} ({_HINT})")
    if isinstance(value, timedelta):
        return _checked(value.total_seconds(), value)
    if isinstance(value, int | float):
        return _checked(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration: a {type(value).__name__} ({_HINT})")
    text = value.strip()
    if len(text) > 64:
        raise ValueError(f"invalid duration: a {len(text)}-character string ({_HINT})")
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return _checked(number, value)
    match = _FORM.match(text)
    if not text or match is None or not any(match.groups()):
        raise ValueError(f"invalid duration: {value!r} ({_HINT})")
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return _checked(hours * 3600 + minutes * 60 + seconds + millis / 1000, value)


def _checked(seconds: float, value: Any) -> float:
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration: {value!r} is not a finite number")
    if seconds < 0:
        raise ValueError(f"invalid duration: {value!r} is negative")
    if seconds > MAX_SECONDS:
        raise ValueError(f"invalid duration: {value!r} is above {MAX_SECONDS:.0e} s")
    return seconds
