"""``gatewatch proxy`` as an operator runs it: bad input exits 2 naming the field; SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from proxyhelpers import wait_until

from gatewatch.localstack.net import free_port

ROOT = Path(__file__).resolve().parents[2]


def gatewatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "gatewatch", "proxy", *args]


def test_bad_configuration_exits_2_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "gatewatch.yaml"
    config.write_text("proxy: {listen: nowhere, paper_only: maybe}\n", encoding="utf-8")
    done = subprocess.run(gatewatch("--config", str(config)), cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "proxy.listen" in done.stderr and "proxy.paper_only" in done.stderr
    done = subprocess.run(gatewatch("--upstream", "gateway"), cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--upstream" in done.stderr
    scenario = tmp_path / "faults.yaml"
    scenario.write_text("- {at: 10s, fault: stall}\n", encoding="utf-8")
    done = subprocess.run(gatewatch("--scenario", str(scenario)), cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "item 1" in done.stderr and "needs 'for'" in done.stderr


def test_runs_until_sigterm(tmp_path: Path) -> None:
    metrics = free_port()
    proc = subprocess.Popen(
        gatewatch("--listen", f"127.0.0.1:{free_port()}", "--upstream", f"127.0.0.1:{free_port()}",
                  "--metrics", f"127.0.0.1:{metrics}", "--control-port", "0"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:

        def healthy() -> bool:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{metrics}/healthz", timeout=1).status == 200
            except OSError:
                return False

        assert wait_until(healthy, 20)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.communicate()[0]
    assert "proxy stopping" in out
