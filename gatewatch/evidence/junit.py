"""JUnit results (the live validation suite, ``gatewatch probe run --junit``) carried into the bundle.

Why: the live suite's checks are part of the session's proof; the bundle keeps each XML file as
written (under ``junit/``) and a summary in ``junit.json``, so the manifest covers them too, and the
report shows each suite's counts and every case that did not pass, so a reader sees them beside the
gates.
"""

from __future__ import annotations

import html
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


def _failing(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in result["cases"] if c["outcome"] in ("failed", "error", "skipped")]


def _counts(result: dict[str, Any]) -> str:
    return (f"{result['tests']} tests: {result['passed']} passed, {result['failed']} failed, "
            f"{result['error']} errors, {result['skipped']} skipped")


def html_section(results: list[dict[str, Any]]) -> str:
    """The report's section on the test suites run in the session (nothing when none was given)."""
    if not results:
        return ""
    out = ["<h2 id=\"test-suites\">Test suites run in the session (JUnit)</h2>"]
    for result in results:
        status = "PASS" if result["ok"] else "FAIL"
        css = "pass" if result["ok"] else "fail"
        out.append(f'<h3><code>{html.escape(result["file"])}</code>: <span class="{css}">{status}</span></h3>'
                   f"<p>{_counts(result)}.</p>")
        rows = _failing(result)
        if rows:
            out.append("<table><tr><th>Case</th><th>Outcome</th><th>Message</th></tr>")
            out += [f"<tr><td>{html.escape(c['name'])}</td><td>{c['outcome']}</td>"
                    f"<td>{html.escape(c['message'])}</td></tr>" for c in rows]
            out.append("</table>")
    return "\n".join(out)


def markdown_section(results: list[dict[str, Any]]) -> list[str]:
    """The same section for report.md."""
    if not results:
        return []
    lines = ["", "## Test suites run in the session (JUnit)", ""]
    for result in results:
        lines.append(f"- `{result['file']}`: **{'PASS' if result['ok'] else 'FAIL'}** ({_counts(result)})")
        lines += [f"  - {c['name']}: {c['outcome']} {c['message']}".rstrip() for c in _failing(result)]
    return lines
