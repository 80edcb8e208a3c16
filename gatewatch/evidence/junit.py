"""JUnit results (the live validation suite, ``gatewatch probe run --junit``) carried into the bundle.

Why: the live suite's checks are part of the session's proof; the bundle keeps each XML file as
written (under ``junit/``) and a summary in ``junit.json``, so the manifest covers them too.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from gatewatch.config import ConfigError


def summarise(path: Path) -> dict[str, Any]:
    """Counts and per-case outcomes of one JUnit file; a bad file is a ConfigError naming it."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"--junit {path}: not a readable JUnit XML file ({exc})") from exc
    cases = []
    for case in root.iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = element.get("message") or (element.text or "").strip()
                break
        else:
            message = ""
        cases.append({"name": case.get("name", ""), "classname": case.get("classname", ""),
                      "outcome": outcome, "message": message[:300]})
    counts = {k: sum(c["outcome"] == k for c in cases) for k in ("passed", "failed", "error", "skipped")}
    return {"file": f"junit/{path.name}", "tests": len(cases), **counts,
            "ok": bool(cases) and counts["failed"] == 0 and counts["error"] == 0, "cases": cases}


def add_junit(paths: list[Path], folder: Path) -> dict[str, Any]:
    """Copy each file into ``folder/junit/`` and return the ``junit.json`` content."""
    summaries = [summarise(path) for path in paths]
    target = folder / "junit"
    target.mkdir(parents=True, exist_ok=True)
    for path in paths:
        shutil.copyfile(path, target / path.name)
    return {"results": summaries}
