"""The commands the operator documents show, as the docs test finds and runs them.

Convention (stated in README.md): every command in README.md, docs/runbook.md and docs/stack.md runs
exactly as written against the simulator, unless it carries a visible marker: ``[Docker]``,
``[Gateway]``, ``[Pi]`` or ``[CI]``, written right after an inline command or as a shell comment on
a line of a code block. A bare ``gatewatch NAME`` in the text names a command (it must exist).

A command is any line of a ``bash``/``sh``/plain code block, and any inline code span whose first
word is a program the operator would type (``gatewatch``, ``docker``, ``curl`` ...).

Run as a script (inside a private network namespace, so the documented default ports are free):
``python doc_commands.py PLAN.json RESULTS.json`` with the sandbox as working directory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

DOCUMENTS = ("README.md", "docs/runbook.md", "docs/stack.md")
MARKERS = ("Docker", "Gateway", "Pi", "CI")
PROGRAMS = ("gatewatch", "docker", "bash", "python", "python3", "curl", "sha256sum", "ssh", "cd", "cp",
            "mkdir", "printf", "source", "timedatectl", "chronyc", "dmesg", "top", "kill", "pkill")
"""First words that make an inline code span a command."""
_FENCE = re.compile(r"^```(\w*)\s*$")
_INLINE = re.compile(r"`([^`\n]+)`")
_MARK_AFTER = re.compile(r"^\s*\*{0,2}\[(" + "|".join(MARKERS) + r")\]")
_MARK_COMMENT = re.compile(r"#\s*\[(" + "|".join(MARKERS) + r")\]")
_ENV_PREFIX = re.compile(r"^(?:[A-Z][A-Z0-9_]*=\S*\s+)+")


@dataclass(frozen=True)
class Command:
    doc: str
    line: int
    text: str
    marker: str | None
    fenced: bool

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def _program(text: str) -> str:
    return _ENV_PREFIX.sub("", text).split(" ", 1)[0]


def is_reference(text: str) -> bool:
    """``gatewatch`` or ``gatewatch NAME`` alone in prose: a name, not a command to type."""
    return re.fullmatch(r"gatewatch(?: [A-Za-z]+)?", text) is not None


def extract(root: Path) -> list[Command]:
    found: list[Command] = []
    for doc in DOCUMENTS:
        lines = (root / doc).read_text(encoding="utf-8").splitlines()
        fence: str | None = None
        pending = ""
        start = 0
        for number, line in enumerate(lines, 1):
            match = _FENCE.match(line.strip())
            if match:
                fence = None if fence is not None else match.group(1)
                continue
            if fence is not None:
                if fence not in {"", "bash", "sh", "shell"}:
                    continue
                stripped = line.strip()
                if not pending and (not stripped or stripped.startswith("#")):
                    continue
                if not pending:
                    start = number
                if stripped.endswith("\\"):
                    pending += stripped[:-1] + " "
                    continue
                text = pending + stripped
                pending = ""
                marked = _MARK_COMMENT.search(text)
                found.append(Command(doc, start, text, marked.group(1) if marked else None, True))
                continue
            for span in _INLINE.finditer(line):
                text = span.group(1).strip()
                if _program(text) not in PROGRAMS:
                    continue
                marked = _MARK_AFTER.match(line[span.end():])
                found.append(Command(doc, number, text, marked.group(1) if marked else None, False))
    return found


# ---------------------------------------------------------------------------------------------
# running them (inside the namespace)


@dataclass(frozen=True)
class Step:
    """How to run one command: ``once`` (to the end, exit status in ``ok_exit``) or ``service``
    (runs until stopped: it must become ready at ``ready`` URLs, then stop cleanly on SIGINT)."""

    text: str
    kind: str
    ok_exit: tuple[int, ...] = (0,)
    ready: tuple[str, ...] = ()
    timeout: float = 60.0
    expect: str = ""
    """A line fragment the output must contain (what shows the command did its job)."""
    only_if_absent: bool = False
    """A helper ``background`` step: skipped when its ready URLs answer within 10 s (something the
    documented commands started provides it)."""
    attempts: int = 1
    """Tries, ``retry_after`` seconds apart, when the document itself says to try again."""
    retry_after: float = 15.0


@dataclass
class Outcome:
    text: str
    ok: bool
    detail: str
    seconds: float


def _ready(urls: tuple[str, ...]) -> bool:
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status != 200:
                    return False
        except OSError:
            return False
    return True


def _wait_ready(urls: tuple[str, ...], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _ready(urls):
            return True
        time.sleep(0.5)
    return False


def _tail(path: Path, limit: int = 1500) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-limit:] if path.exists() else ""


def run_once(step: Step, log: Path) -> Outcome:
    began = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        try:
            done = subprocess.run(["bash", "-c", step.text], stdout=out, stderr=subprocess.STDOUT,
                                  timeout=step.timeout, check=False)
            code: int | None = done.returncode
        except subprocess.TimeoutExpired:
            code = None
    text = _tail(log, 100_000)
    seconds = time.monotonic() - began
    if code is None:
        return Outcome(step.text, False, f"still running after {step.timeout:g} s: {text[-1500:]}", seconds)
    problems = []
    if code not in step.ok_exit:
        problems.append(f"exit {code} (expected {step.ok_exit})")
    if "Traceback (most recent call last)" in text:
        problems.append("a traceback")
    if step.expect and step.expect not in text:
        problems.append(f"no {step.expect!r} in the output")
    return Outcome(step.text, not problems, "; ".join(problems) + (f": {text[-1500:]}" if problems else ""),
                   seconds)


def start_service(step: Step, log: Path) -> tuple[subprocess.Popen[bytes], Outcome | None]:
    """Start a long-running command; an Outcome only when it failed to become ready."""
    began = time.monotonic()
    out = log.open("wb")
    proc = subprocess.Popen(["bash", "-c", f"exec {step.text}"], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = began + step.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc, Outcome(step.text, False, f"exited {proc.returncode} before it was ready: {_tail(log)}",
                                 time.monotonic() - began)
        if _ready(step.ready):
            return proc, None
        time.sleep(0.5)
    stop_service(proc)
    return proc, Outcome(step.text, False, f"not ready within {step.timeout:g} s: {_tail(log)}",
                         time.monotonic() - began)


def stop_service(proc: subprocess.Popen[bytes], grace: float = 30.0) -> int:
    """Ctrl-C, as the documents say; SIGKILL only if it does not stop within ``grace``."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            return proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return -9
    return int(proc.returncode)


def run_service(step: Step, log: Path) -> Outcome:
    began = time.monotonic()
    proc, failed = start_service(step, log)
    if failed:
        return failed
    code = stop_service(proc)
    ok = code == 0
    return Outcome(step.text, ok, "" if ok else f"exit {code} after Ctrl-C: {_tail(log)}", time.monotonic() - began)


def main(plan_file: str, results_file: str) -> int:
    """Run the plan: ``once``/``service`` steps in order; ``background`` steps stay up for the
    steps after them until an ``end-background`` step stops them (last started, first stopped)."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False, capture_output=True)
    plan = [Step(**{**item, "ok_exit": tuple(item.get("ok_exit", (0,))), "ready": tuple(item.get("ready", ()))})
            for item in json.loads(Path(plan_file).read_text(encoding="utf-8"))]
    logs = Path("doc-command-logs")
    logs.mkdir(exist_ok=True)
    outcomes: list[Outcome] = []
    background: list[tuple[Step, subprocess.Popen[bytes], float]] = []
    for index, step in enumerate(plan):
        log = logs / f"{index:02d}.log"
        if step.kind == "once":
            outcome = run_once(step, log)
            for _ in range(step.attempts - 1):
                if outcome.ok:
                    break
                time.sleep(step.retry_after)
                outcome = run_once(step, log)
            outcomes.append(outcome)
        elif step.kind == "service":
            outcomes.append(run_service(step, log))
        elif step.kind == "background":
            if step.only_if_absent and _wait_ready(step.ready, 10.0):
                continue
            proc, failed = start_service(step, log)
            if failed:
                outcomes.append(failed)
                break
            background.append((step, proc, time.monotonic()))
        elif step.kind == "end-background":
            for bg_step, proc, began in reversed(background):
                code = stop_service(proc)
                outcomes.append(Outcome(bg_step.text, code == 0, "" if code == 0 else f"exit {code} after Ctrl-C",
                                        time.monotonic() - began))
            background = []
        Path(results_file).write_text(json.dumps([asdict(o) for o in outcomes], indent=1), encoding="utf-8")
    for _, proc, _ in reversed(background):
        stop_service(proc)
    Path(results_file).write_text(json.dumps([asdict(o) for o in outcomes], indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
