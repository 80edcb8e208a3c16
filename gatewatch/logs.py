"""Loguru set-up shared by every long-running command.

One line per state change is the rule for gatewatch's logs; JSON lines are available so a log
shipper can parse them without regular expressions.
"""

from __future__ import annotations

import sys

from loguru import logger


def _to_stderr(message: str) -> None:
    """Write to whatever ``sys.stderr`` is now, not the stream that was current at set-up.

    Commands also run in-process (tests, the rehearsal), where stderr is swapped and closed behind
    the logger's back; a sink bound to the old stream would then raise on every line.
    """
    sys.stderr.write(message)


def setup_logging(level: str = "INFO", json_lines: bool = False) -> None:
    """Send logs to stderr at ``level``; ``json_lines`` switches to loguru's serialised format."""
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
