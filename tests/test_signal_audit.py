"""Every long-running command stops cleanly on SIGTERM/SIGINT: bounded, no child left, a conventional status.

Services (the simulator, the proxy, the native stack) exit 0 when asked to stop; jobs cut short
(`rehearse`, like `probe run` and `flatten` in tests/active) exit 128 + signum. Children are found
with psutil before the signal and must all be gone after it. Signals go to the process, or (Ctrl-C
in a terminal) to its whole process group.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from gatewatch.config import load_config
from gatewatch.localstack.net import free_port
from gatewatch.stack import add_arguments, plan_stack
from probes.active.runner import unwind_bound

ROOT = Path(__file__).resolve().parents[1]
GATEWATCH = [sys.executable, "-m", "gatewatch"]
ENV = {k: v for k, v in os.environ.items()
       if k != "GATEWATCH_GATEWAY" and not k.startswith(("GATEWATCH_SMTP_", "GATEWATCH_ALERT_"))}


def _answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=1).status == 200
    except OSError:
        return False


def _until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def _alive(processes: list[psutil.Process]) -> list[str]:
    left = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(" ".join(process.cmdline()[:4]))
        except psutil.NoSuchProcess:
            pass
    return left


def _signalled(argv: list[str], ready: Callable[[Path], bool], signals: list[signal.Signals], out: Path, *,
               group: bool = False, children: int = 0, before: Callable[[list[psutil.Process]], None] | None = None,
               ) -> tuple[int, float, list[str], str]:
    """Start ``argv`` in its own session, signal it once ready; (status, seconds, children alive, output).

    ``before`` gets the children just before the first signal."""
    with out.open("w") as sink:
        proc = subprocess.Popen(argv, cwd=ROOT, env=ENV, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    kids: list[psutil.Process] = []
    try:
        assert _until(lambda: ready(out) or proc.poll() is not None, 60) and proc.poll() is None, out.read_text()
        kids = psutil.Process(proc.pid).children(recursive=True)
        assert len(kids) >= children, f"expected {children} children, found {[k.cmdline()[:4] for k in kids]}"
        if before is not None:
            before(kids)
        started = time.monotonic()
        for sig in signals:
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
            time.sleep(0.3)
        status = proc.wait(60)
        seconds = time.monotonic() - started
        _until(lambda: not _alive(kids), 2)
        return status, seconds, _alive(kids), out.read_text()
    finally:
        for kid in kids:
            with contextlib.suppress(psutil.NoSuchProcess):
                kid.kill()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize(("sig", "group"), [(signal.SIGTERM, False), (signal.SIGINT, True)])
def test_simulator_stops_on_sigterm_and_on_ctrl_c(tmp_path: Path, sig: signal.Signals, group: bool) -> None:
    control = free_port()
    status, seconds, _, out = _signalled(
        [*GATEWATCH, "sim", "--port", str(free_port()), "--control-port", str(control)],
        lambda _: _answers(f"http://127.0.0.1:{control}/healthz"), [sig], tmp_path / "sim.out", group=group)
    assert status == 0 and seconds < 5 and "Traceback" not in out, (status, seconds, out[-1500:])


def test_proxy_stops_on_ctrl_c(tmp_path: Path) -> None:  # SIGTERM: tests/proxy/test_cli.py
    metrics = free_port()
    status, seconds, _, out = _signalled(
        [*GATEWATCH, "proxy", "--listen", f"127.0.0.1:{free_port()}", "--upstream", f"127.0.0.1:{free_port()}",
         "--metrics", f"127.0.0.1:{metrics}", "--control-port", "0"],
        lambda _: _answers(f"http://127.0.0.1:{metrics}/healthz"), [signal.SIGINT], tmp_path / "proxy.out", group=True)
    assert status == 0 and seconds < 5 and "proxy stopping" in out and "Traceback" not in out, out[-1500:]


def _stack_config(tmp_path: Path) -> Path:
    sim, exporter, bot, proxy, faults = (free_port() for _ in range(5))
    config = tmp_path / "gatewatch.yaml"
    config.write_text(f"gateway: {{host: 127.0.0.1, port: {sim}}}\nexporter: {{listen: 127.0.0.1:{exporter}}}\n"
                      f"proxy: {{listen: 127.0.0.1:{bot}, metrics_listen: 127.0.0.1:{proxy}, "
                      f"control_port: {faults}}}\n", encoding="utf-8")
    return config


def test_stack_stops_every_child_on_ctrl_c(tmp_path: Path) -> None:  # SIGTERM: tests/stack/test_native_stack.py
    config = _stack_config(tmp_path)
    status, seconds, alive, out = _signalled(
        [*GATEWATCH, "stack", "--config", str(config), "--data-dir", str(tmp_path / "data"), "--no-prometheus",
         "--sim-control-port", str(free_port())],
        lambda path: "gatewatch stack is up" in path.read_text(), [signal.SIGINT], tmp_path / "stack.out",
        group=True, children=3)
    assert status == 0 and not alive and "Traceback" not in out, (status, alive, out[-2000:])
    assert seconds < 15, f"{seconds:.1f} s"


def _freeze_exporter(kids: list[psutil.Process]) -> None:
    """SIGSTOP the exporter: a first stop then waits out its grace, as for an unwind on a stalled Gateway."""
    [exporter] = [k for k in kids if "exporter" in k.cmdline()]
    exporter.suspend()


def test_a_second_signal_stops_the_stack_at_once(tmp_path: Path) -> None:
    config = _stack_config(tmp_path)
    status, seconds, alive, out = _signalled(
        [*GATEWATCH, "stack", "--config", str(config), "--data-dir", str(tmp_path / "data"), "--no-prometheus",
         "--sim-control-port", str(free_port())],
        lambda path: "gatewatch stack is up" in path.read_text(), [signal.SIGTERM, signal.SIGTERM],
        tmp_path / "stack.out", children=3, before=_freeze_exporter)
    assert status == 0 and not alive and "Traceback" not in out, (status, alive, out[-2000:])
    assert seconds < 5 and "killing every part now" in out, (seconds, out[-2000:])


def test_stack_gives_the_exporter_its_unwind_before_sigkill(tmp_path: Path) -> None:
    """The stack SIGKILLed its exporter 10 s after SIGTERM, cutting an unwind that may take unwind_bound."""
    config_path = _stack_config(tmp_path)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--config", str(config_path), "--data-dir", str(tmp_path / "data"), "--no-prometheus"])
    config = load_config(config_path)
    [exporter] = [p for p in plan_stack(args, config, config_path, dict(ENV)).processes if p.name == "exporter"]
    assert exporter.stop_grace > unwind_bound(config)
    others = [p for p in plan_stack(args, config, config_path, dict(ENV)).processes if p.name != "exporter"]
    assert all(p.own_session for p in [exporter, *others]), "Ctrl-C in a terminal would reach the children"


def _rehearse(tmp_path: Path) -> list[str]:
    return [*GATEWATCH, "rehearse", "--duration", "60s", "--no-prometheus", "--out", str(tmp_path / "rehearsal"),
            "--scenario", str(ROOT / "scenarios" / "calm.yaml")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_rehearse_stops_its_parts_and_reports_the_books(tmp_path: Path, sig: signal.Signals) -> None:
    """SIGTERM killed rehearse at once and orphaned the simulator, exporter, proxy and bot."""
    status, seconds, alive, out = _signalled(
        _rehearse(tmp_path), lambda path: "rehearsal window opened" in path.read_text(), [sig],
        tmp_path / "rehearse.out", group=sig == signal.SIGINT, children=4)
    assert status == 128 + sig and not alive, (status, alive, out[-2000:])
    assert f"stopped by {sig.name}" in out and "books after the stop: clean" in out, out[-2000:]
    assert "Traceback" not in out and seconds < 30, (seconds, out[-2000:])


def test_a_second_signal_stops_rehearse_at_once(tmp_path: Path) -> None:
    """The exporter is frozen, so the first stop would wait out its grace; the second kills all."""
    status, seconds, alive, out = _signalled(
        _rehearse(tmp_path), lambda path: "rehearsal window opened" in path.read_text(),
        [signal.SIGTERM, signal.SIGTERM], tmp_path / "rehearse.out", children=4, before=_freeze_exporter)
    assert status == 128 + signal.SIGTERM and not alive, (status, alive, out[-2000:])
    assert "stopped at once (second signal)" in out, out[-2000:]
    assert "Traceback" not in out and seconds < 5, (seconds, out[-2000:])
