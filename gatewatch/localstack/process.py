"""One supervisor for the local stack's processes: start, wait until ready, restart, stop in order.

Why one: ``gatewatch stack``, ``gatewatch rehearse``, the tests and the benchmarks all run the same
long-lived servers (simulator, exporter, Prometheus, Alertmanager); each needs its own log file, a
readiness check that fails fast with the cause when the process dies, and a polite-then-firm stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from loguru import logger

from gatewatch.localstack.net import url_answers

REPO_ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_SECONDS = 10.0
RESTART_BACKOFF_INITIAL = 1.0
RESTART_BACKOFF_MAX = 30.0
HEALTHY_RESET_AFTER = 60.0
"""A process that stayed up this long is considered healthy again: its back-off starts over."""


class StartError(RuntimeError):
    """A process could not be started or did not become ready; the message names it and the cause."""


def gatewatch_command(*args: str) -> list[str]:
    """``python -m gatewatch ARGS``: the same entry point an operator uses, with this interpreter."""
    return [sys.executable, "-m", "gatewatch", *args]


def child_environment(extra: dict[str, str] | None = None, drop: Sequence[str] = ()) -> dict[str, str]:
    """This process's environment without ``drop`` (names or ``PREFIX*``), plus ``extra``."""

    def dropped(name: str) -> bool:
        return any(name.startswith(d[:-1]) if d.endswith("*") else name == d for d in drop)

    env = {k: v for k, v in os.environ.items() if not dropped(k)}
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


class Process:
    """One child process with its output in a log file; stopped politely, then firmly.

    ``env`` is the child's whole environment (None: this process's). ``ready_url`` is what
    :meth:`wait_ready` polls; ``own_session`` keeps Ctrl-C in a terminal away from the child, so
    the supervisor stops children in order (the exporter before the Gateway it watches), and a child
    that unwinds on its first signal (the exporter's active probes) is not cut short by a second.
    ``stop_grace`` is how long :meth:`stop` waits after SIGTERM before SIGKILL: the exporter's must
    cover its unwind (``probes.active.runner.unwind_bound``), or a stop would leave orders behind.
    """

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, *, cwd: Path = REPO_ROOT,
                 env: dict[str, str] | None = None, ready_url: str | None = None, own_session: bool = False,
                 stop_grace: float = STOP_GRACE_SECONDS) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.ready_url = ready_url
        self.own_session = own_session
        self.stop_grace = stop_grace
        self.started_at = 0.0
        self.started_monotonic = 0.0
        self.restarts = 0
        self.backoff = RESTART_BACKOFF_INITIAL
        self.restart_at: float | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._popen = subprocess.Popen(self.argv, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=self.env, start_new_session=self.own_session)
        self.started_at = time.time()
        self.started_monotonic = time.monotonic()
        self.restart_at = None
        logger.info("{} started (pid {}), log {}", self.name, self._popen.pid, self.log_path)
        return self

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._popen.pid

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def wait_ready(self, timeout: float, stopping: threading.Event | None = None) -> None:
        """Wait until ``ready_url`` answers 2xx; StartError with the log's tail if the process dies first.

        The message says what happened and when: an exit after 0.4 s is reported as that, not as a
        time-out.
        """
        if self.ready_url is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stopping is not None and stopping.is_set():
                raise StartError(f"{self.name}: start interrupted")
            if not self.alive():
                raise StartError(self.exit_report())
            if url_answers(self.ready_url):
                if not self.alive():  # someone else answered on its address, and it died meanwhile
                    raise StartError(self.exit_report())
                logger.info("{} ready at {} after {:.1f} s", self.name, self.ready_url,
                            time.monotonic() - self.started_monotonic)
                return
            time.sleep(0.1)
        raise StartError(f"{self.name} not ready at {self.ready_url} after {timeout:.0f} s (log {self.log_path}):\n"
                         f"{self.log_tail()}")

    def exit_report(self) -> str:
        """``NAME exited with status N after T s (log PATH):`` and the log's last lines."""
        elapsed = time.monotonic() - self.started_monotonic
        return (f"{self.name} exited with status {self.returncode()} after {elapsed:.1f} s (log {self.log_path}):\n"
                f"{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no clean-up at all (what a power cut or the OOM killer does)."""
        if self.alive() and self._popen is not None:
            self._popen.send_signal(signal.SIGKILL)
            self._popen.wait(5)
            logger.info("{} killed with SIGKILL", self.name)

    def kill_now(self) -> None:
        """SIGKILL without waiting (safe from a signal handler); :meth:`stop` reaps the process later."""
        proc = self._popen
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, wait (``stop_grace`` unless ``timeout``), then SIGKILL; returns the exit status."""
        timeout = self.stop_grace if timeout is None else timeout
        proc = self._popen
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("{} ignored SIGTERM for {:g} s: killing it", self.name, timeout)
                proc.kill()
                proc.wait(5)
            logger.info("{} stopped", self.name)
        if self._log is not None:
            self._log.close()
            self._log = None
        return None if proc is None else proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_exporter(config: Path, port: int, log_path: Path, *, env: dict[str, str] | None = None,
                   timeout: float = 30.0, stop_grace: float = STOP_GRACE_SECONDS) -> Process:
    """``gatewatch exporter --config FILE`` on ``127.0.0.1:port``, started and answering /healthz.

    The one way the rehearsal, the benches and the tests start an exporter as the stack does (in
    its own session, ``stop_grace`` to unwind its probes); a start that fails leaves no process
    behind (StartError names the exit or the time-out).
    """
    exporter = Process("exporter", gatewatch_command("exporter", "--config", str(config), "--listen",
                                                     f"127.0.0.1:{port}"),
                       log_path, env=env, ready_url=f"http://127.0.0.1:{port}/healthz", own_session=True,
                       stop_grace=stop_grace).start()
    try:
        exporter.wait_ready(timeout)
    except BaseException:
        exporter.stop()
        raise
    return exporter


class Supervisor:
    """Starts processes in order (each ready before the next), restarts crashed ones with
    exponential back-off, stops them in reverse order."""

    def __init__(self, processes: list[Process]) -> None:
        self.processes = processes
        self.stopping = threading.Event()

    def start_all(self, ready_timeout: float = 30.0) -> None:
        """Start and wait for each in turn; StartError (naming the process and the cause) on the first
        that exits or does not become ready. The caller stops what was started."""
        for process in self.processes:
            process.start()
            process.wait_ready(ready_timeout, self.stopping)

    def check_once(self) -> None:
        """Notice exits and restart processes whose back-off has elapsed."""
        now = time.monotonic()
        for process in self.processes:
            if process.returncode() is None and process.restart_at is None:
                continue
            if process.restart_at is None:
                if now - process.started_monotonic >= HEALTHY_RESET_AFTER:
                    process.backoff = RESTART_BACKOFF_INITIAL
                process.restart_at = now + process.backoff
                logger.error("{} exited with status {}; restarting in {:.0f} s (see {})",
                             process.name, process.returncode(), process.backoff, process.log_path)
                process.backoff = min(process.backoff * 2, RESTART_BACKOFF_MAX)
            elif now >= process.restart_at:
                process.restarts += 1
                process.start()

    def run(self, duration: float | None) -> None:
        """Supervise until ``stopping`` is set or ``duration`` seconds have passed."""
        deadline = None if duration is None else time.monotonic() + duration
        while not self.stopping.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                logger.info("--duration reached: stopping the stack")
                break
            self.check_once()
            self.stopping.wait(0.5)

    def kill_all_now(self) -> None:
        """A second stop request: SIGKILL every child at once (no unwind); :meth:`stop_all` reaps them."""
        for process in self.processes:
            process.kill_now()

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
