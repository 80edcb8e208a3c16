"""Loguru set-up shared by every long-running command.

One line per state change is the rule for gatewatch's logs; JSON lines are available so a log
shipper can parse them without regular expressions.
"""

from __future__ import annotations

import logging
import sys

from loguru import logger

CLIENT_LIBRARY = "ib_async"
"""Its own log lines repeat, at ERROR and WARNING, what gatewatch already handles and reports in
its terms (an expected 201 of the reject probe, a 161 of the cancel race, ``Canceled order:
Trade(...)`` dumps of a whole order object): in an operator's log they read as faults that are not.
They are kept at DEBUG (``exporter.log_level: DEBUG`` shows them). Below that level the library's
loggers are switched off at the source: it logs every message sent and received at DEBUG, and building
those records only for loguru to drop them cost more CPU than everything else the exporter does
(docs/performance.md)."""


class _ClientLibraryToDebug(logging.Handler):
    """Forward the client library's records to loguru at DEBUG, one line each."""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().replace("\n", " ")
        logger.opt(depth=0).debug("{} {}: {}", record.name, record.levelname.lower(), text[:500])


def quiet_client_library(level: str = "DEBUG") -> None:
    """Route the client library's Python logging into loguru at DEBUG (idempotent); when ``level``
    hides DEBUG, the library's records are not made at all."""
    library = logging.getLogger(CLIENT_LIBRARY)
    if not any(isinstance(h, _ClientLibraryToDebug) for h in library.handlers):
        library.addHandler(_ClientLibraryToDebug())
    shown = logger.level(level.upper()).no <= logger.level("DEBUG").no
    library.setLevel(logging.DEBUG if shown else logging.CRITICAL + 1)
    library.propagate = False


def _to_stderr(message: str) -> None:
    """Write to whatever ``sys.stderr`` is now, not the stream that was current at set-up.

    Commands also run in-process (tests, the rehearsal), where stderr is swapped and closed behind
    the logger's back; a sink bound to the old stream would then raise on every line.
    """
    sys.stderr.write(message)


def setup_logging(level: str = "INFO", json_lines: bool = False) -> None:
    """Send logs to stderr at ``level``; ``json_lines`` switches to loguru's serialised format."""
    quiet_client_library(level)
    logger.remove()
    if json_lines:
        logger.add(_to_stderr, level=level, serialize=True)
    else:
        logger.add(
            _to_stderr,
            level=level,
            colorize=sys.stderr.isatty(),
            format="<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
            "<cyan>{name}</cyan> {message}",
        )
