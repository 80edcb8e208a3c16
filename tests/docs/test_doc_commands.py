"""Every command in README.md, docs/runbook.md and docs/stack.md runs as written, or is marked.

The documents promise that an operator following them literally succeeds. This test finds every
command in them (tests/support/doc_commands.py says how), checks that each unmarked one is known
here with what success looks like, and runs them all exactly as written, in a sandbox that looks
like the repository, inside a private network namespace: the documented default ports (4002, 9090,
14002 ...) are then free whatever else runs on this machine. Only two liberties are taken, both
named in RUN below: the 10-minute rehearsal is run for 20 s, and long-running commands (the stack)
are stopped with Ctrl-C once they are ready, as the documents say to.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from support import doc_commands
from support.doc_commands import Command, Step, extract, is_reference
from support.stack import ROOT

EXPORTER_READY = "http://127.0.0.1:14002/healthz"
PROMETHEUS_READY = "http://127.0.0.1:9090/-/ready"
REHEARSAL_DURATION = "20s"


def _key(text: str) -> str:
    """The command without its trailing shell comment (the key of RUN)."""
    return re.sub(r"\s+#.*$", "", text).strip()


# Phase "stack" (and "after-evidence"): runs while the runbook's `gatewatch stack --config
# config/gatewatch.yaml` is up (simulator on 4002, exporter, Prometheus). Phase "alone": nothing else up.
RUN: dict[str, tuple[str, dict[str, Any]]] = {
    "source .venv/bin/activate": ("alone", {"kind": "once"}),
    "gatewatch sim --list-faults": ("alone", {"kind": "once", "expect": "drop_bid_ask"}),
    "python grafana/build_dashboards.py": ("alone", {"kind": "once", "expect": "session.json"}),
    "gatewatch rehearse --duration 10m --scenario scenarios/calm.yaml": (
        "alone", {"kind": "once", "timeout": 240, "run_as": "gatewatch rehearse --duration "
                  f"{REHEARSAL_DURATION} --scenario scenarios/calm.yaml"}),
    "gatewatch stack": ("alone", {"kind": "service", "ready": [EXPORTER_READY, PROMETHEUS_READY]}),
    "gatewatch stack --no-prometheus": ("alone", {"kind": "service", "ready": [EXPORTER_READY]}),
    "bash scripts/up.sh": ("alone", {"kind": "service", "ready": [EXPORTER_READY, PROMETHEUS_READY]}),
    "gatewatch stack --config config/gatewatch.yaml": (
        "background", {"kind": "background", "ready": [EXPORTER_READY, PROMETHEUS_READY]}),
    "curl -s 127.0.0.1:14002/healthz": ("stack", {"kind": "once", "expect": "ok"}),
    # The runbook's proxy commands need a running proxy (it says so); HELPERS starts one on the simulator.
    "curl -s 127.0.0.1:14012/healthz": ("stack", {"kind": "once"}),
    """curl -s -X POST 127.0.0.1:4081/faults -d '{"fault": "disconnect", "for": "30s"}'""": (
        "stack", {"kind": "once", "expect": "disconnect"}),
    "curl -s -X DELETE 127.0.0.1:4081/faults": ("stack", {"kind": "once"}),
    "gatewatch preflight": ("stack", {"kind": "once", "ok_exit": [0, 1], "expect": "PASS"}),
    "gatewatch preflight --config config/gatewatch.yaml": (
        "stack", {"kind": "once", "ok_exit": [0, 1], "expect": "PASS"}),
    # A session of seconds fails its gates (exit 1): the command still has to judge it and write
    # the bundle, which the next command checks.
    "gatewatch evidence --prometheus http://127.0.0.1:9090 --last 2h --out evidence/$(date +%F)": (
        "stack", {"kind": "once", "ok_exit": [0, 1], "timeout": 120}),
    "gatewatch evidence --prometheus http://127.0.0.1:9090  --from 2026-03-02T14:35:00Z "
    "--to 2026-03-02T16:35:00Z  --out evidence/2026-03-02 --config config/gatewatch.yaml  "
    "--sign-key ~/.ssh/id_ed25519  --grafana http://127.0.0.1:3000": (
        "stack", {"kind": "once", "ok_exit": [0, 1], "timeout": 120,
                  "expect": "Grafana unreachable at http://127.0.0.1:3000"}),
    # The operator's SSH key is a throwaway one in the sandbox's HOME (made by _sandbox).
    "gatewatch evidence verify evidence/2026-03-02 --key ~/.ssh/id_ed25519.pub": (
        "after-evidence", {"kind": "once"}),
    # The exporter runs the order probes as soon as it starts; while a run holds the probe client id,
    # flatten is refused with 326, and the runbook says to run it again a minute later.
    "gatewatch flatten": ("after-evidence", {"kind": "once", "attempts": 4, "retry_after": 10}),
    "gatewatch flatten --config config/gatewatch.yaml": (
        "after-evidence", {"kind": "once", "attempts": 4, "retry_after": 10}),
}
"""Every unmarked command of the documents -> its phase and what success looks like."""

HELPERS: dict[str, list[dict[str, Any]]] = {
    "background": [{"text": "gatewatch proxy", "kind": "background", "only_if_absent": True,
                    "ready": ["http://127.0.0.1:14012/healthz"]}],
}
"""Steps that are not documented commands but make some runnable (appended to their phase)."""

PHASES = ("background", "stack", "after-evidence", "alone")
"""The runbook's stack first, on a fresh sandbox (flatten compares the probe journal with that
simulator), then the commands that run alone, each stack of those stopped before the next starts."""


def commands() -> list[Command]:
    return extract(ROOT)


def runnable() -> list[Command]:
    return [c for c in commands() if c.marker is None and not is_reference(c.text)]


def test_every_unmarked_command_is_run_by_this_test() -> None:
    unknown = sorted({f"{c.where}: {c.text}" for c in runnable() if _key(c.text) not in RUN})
    assert not unknown, ("commands neither marked [Docker]/[Gateway]/[Pi]/[CI] nor run here (mark them, or add "
                         "them to RUN with what success looks like):\n" + "\n".join(unknown))
    stale = sorted(set(RUN) - {_key(c.text) for c in runnable()})
    assert not stale, f"RUN lists commands no document shows any more: {stale}"


def test_bare_command_names_are_real_commands() -> None:
    from gatewatch.cli import COMMANDS

    for command in commands():
        name = command.text.split(" ", 1)[1] if " " in command.text else ""
        if is_reference(command.text) and name.islower():
            assert name in COMMANDS, f"{command.where}: `{command.text}` names no gatewatch command"


def test_ci_runs_the_command_marked_ci() -> None:
    marked = {_key(c.text) for c in commands() if c.marker == "CI"}
    assert marked == {"bash scripts/test.sh"}
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^exec bash scripts/test\.sh$", ci, re.M), ci


def _sandbox(tmp_path: Path) -> Path:
    """A working copy where the commands may write: folders they only read are links."""
    box = tmp_path / "repo"
    box.mkdir()
    for name in (".venv", "config", "scenarios", "prometheus", "alertmanager", ".env.example", "pyproject.toml"):
        (box / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "scripts", box / "scripts")
    shutil.copytree(ROOT / "grafana", box / "grafana", ignore=shutil.ignore_patterns("__pycache__"))
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "operator", "-f", str(ssh / "id_ed25519")],
                   check=True, capture_output=True)
    return box


def _plan() -> list[dict[str, Any]]:
    seen: dict[str, str] = {_key(c.text): c.text for c in runnable()}
    steps: list[dict[str, Any]] = []
    for phase in PHASES:
        for key, (where, spec) in RUN.items():
            if where != phase or key not in seen:
                continue
            spec = dict(spec)
            text = spec.pop("run_as", seen[key])
            steps.append(asdict(Step(text=text, **spec)))
        steps += [asdict(Step(**{**helper, "ready": tuple(helper.get("ready", ()))}))
                  for helper in HELPERS.get(phase, [])]
        if phase == "after-evidence":  # the runbook's stack stops here
            steps.append({"text": "", "kind": "end-background"})
    return steps


@pytest.mark.e2e
def test_documented_commands_run_as_written(tmp_path: Path) -> None:
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"], check=False).returncode:
        pytest.skip("needs unshare -n (a private network namespace, so the documented ports are free)")
    box = _sandbox(tmp_path)
    plan, results = tmp_path / "plan.json", tmp_path / "results.json"
    plan.write_text(json.dumps(_plan()), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWATCH_", "GRAFANA_", "PYTEST"))}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(tmp_path / "home")
    done = subprocess.run(["unshare", "-n", sys.executable, doc_commands.__file__, str(plan), str(results)],
                          cwd=box, env=env, capture_output=True, text=True, timeout=560, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    outcomes = json.loads(results.read_text(encoding="utf-8"))
    ran = {o["text"] for o in outcomes} - {s["text"] for s in _plan() if s.get("only_if_absent")}
    expected = {s["text"] for s in _plan() if s["kind"] != "end-background" and not s.get("only_if_absent")}
    failed = [f"{o['text']} ({o['seconds']:.0f} s): {o['detail']}" for o in outcomes if not o["ok"]]
    assert not failed, "documented commands that fail:\n" + "\n\n".join(failed)
    assert ran == expected, f"not run: {sorted(expected - ran)}"
