"""Child processes for the rehearsal and the benchmarks.

Why not ``subprocess.run``: every part of the stack (simulator, exporter, Prometheus,
Alertmanager) is a long-running server that must be started, waited for, and stopped in order,
each with its own log file so a failed rehearsal can be diagnosed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from loguru import logger

REPO_ROOT = Path(__file__).resolve().parents[2]


def gatewatch_command(*args: str) -> list[str]:
    """``python -m gatewatch ARGS``: the same entry point an operator uses, with this interpreter."""
    return [sys.executable, "-m", "gatewatch", *args]


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET a URL; (status, body). Connection problems raise OSError (URLError is one)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_http(url: str, timeout: float, process: ManagedProcess | None = None) -> None:
    """Wait until ``url`` answers 200; fail early, with the log's tail, if the process died."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited with {process.returncode()} before {url} answered:\n"
                               f"{process.log_tail()}")
        try:
            status, _ = http_get(url, timeout=1.0)
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout:g}s (last: {last})")


class ManagedProcess:
    """One child process with its output in a log file; stopped politely, then firmly."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, cwd: Path = REPO_ROOT,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.started_at = 0.0
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        merged_env = {**os.environ, **(self.env or {})}
        merged_env.setdefault("PYTHONUNBUFFERED", "1")
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(self.argv, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, env=merged_env)
        self.started_at = time.time()
        logger.debug("started {} (pid {}): {}", self.name, self._popen.pid, " ".join(self.argv))
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

    def kill(self) -> None:
        """SIGKILL: no clean-up at all (what a power cut or the OOM killer does)."""
        if self.alive() and self._popen is not None:
            self._popen.send_signal(signal.SIGKILL)
            self._popen.wait(5)
            logger.info("{} killed with SIGKILL", self.name)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit status."""
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("{} ignored SIGTERM for {:g}s; killing it", self.name, timeout)
                self._popen.kill()
                self._popen.wait(5)
        return self._popen.returncode

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""
