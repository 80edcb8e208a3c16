"""Pre-validation checks (``gatewatch preflight``): each returns a :class:`CheckResult`.

Why a result type with a FIX: a preflight that says only "failed" sends the operator to the
source code; every failing check here says what to change, so the session can start on time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["pass", "fail", "warn", "info"]


@dataclass
class CheckResult:
    """One line of the checklist."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    blocking: bool = True

    @property
    def blocks(self) -> bool:
        """A failed blocking check stops the session from starting (exit status 1)."""
        return self.status == "fail" and self.blocking


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, "pass", detail)


def failed(name: str, detail: str, fix: str, blocking: bool = True) -> CheckResult:
    return CheckResult(name, "fail" if blocking else "warn", detail, fix, blocking)
