"""``gatewatch stack``: the native stack comes up, is scraped, survives a crash, and stops cleanly."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support.stack import ROOT, http_get, require_prometheus, start_stack, wait_until

from gatewatch.localstack.net import free_port
from gatewatch.stack import render_prometheus_config


def test_rendered_prometheus_config_points_at_loopback_and_passes_promtool(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (scripts/test.sh installs Debian's prometheus package)")
    rendered = render_prometheus_config(ROOT / "prometheus" / "prometheus.yml", exporter="127.0.0.1:24002",
                                        prometheus="127.0.0.1:29090", alertmanager="127.0.0.1:29093")
    targets = [t for job in rendered["scrape_configs"] for s in job["static_configs"] for t in s["targets"]]
    assert "127.0.0.1:24002" in targets and not any(t.startswith(("exporter:", "alertmanager:")) for t in targets)
    assert rendered["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:29093"]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(rendered), encoding="utf-8")
    done = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    without_am = render_prometheus_config(ROOT / "prometheus" / "prometheus.yml", exporter="127.0.0.1:1",
                                          prometheus="127.0.0.1:2", alertmanager=None, scrape_interval="1s")
    assert "alerting" not in without_am
    assert all(job["job_name"] != "alertmanager" for job in without_am["scrape_configs"])
    assert without_am["global"]["scrape_interval"] == "1s"


def test_bad_duration_exits_2_naming_the_option(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gatewatch", "stack", "--duration", "0", "--no-prometheus",
                           "--data-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 2 and "--duration" in done.stderr


@pytest.mark.e2e
def test_stack_runs_for_its_duration_scraped_by_prometheus_then_stops(tmp_path: Path) -> None:
    require_prometheus()
    started = time.monotonic()
    run = start_stack(tmp_path, "--duration", "15")
    try:
        status, body = http_get(f"http://{run.exporter}/metrics")
        assert status == 200 and b"gatewatch_gateway_connected" in body
        assert wait_until(run.target_up, 15), "Prometheus never saw the exporter up"
        assert wait_until(lambda: run.query("gatewatch_gateway_connected == 1")["data"]["result"], 15)
        out = run.output()
        assert f"http://{run.prometheus}" in out and "Grafana" in out and "dashboards" in out
        assert run.process.wait(40) == 0, run.output()
    finally:
        run.stop()
    assert time.monotonic() - started >= 15
    for address in (run.exporter, run.prometheus, f"127.0.0.1:{run.control_port}"):
        assert http_get(f"http://{address}/")[0] == 0, f"{address} still answers after the stack stopped"


@pytest.mark.e2e
def test_crashed_child_is_restarted_and_sigterm_stops_everything(tmp_path: Path) -> None:
    run = start_stack(tmp_path, "--no-prometheus", "--duration", "120")
    try:
        pid = int(re.search(r"exporter started \(pid (\d+)\)", run.output()).group(1))  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: "exporter exited with status -9; restarting in 1 s" in run.output(), 10), \
            run.output()
        assert wait_until(lambda: len(re.findall(r"exporter started \(pid", run.output())) == 2, 10)
        assert wait_until(lambda: http_get(f"http://{run.exporter}/healthz")[0] == 200, 20), run.output()
        assert "Prometheus   not started (--no-prometheus)" in run.output()
    finally:
        assert run.stop() == 0
    assert "SIGTERM received: stopping the stack" in run.output()
    assert http_get(f"http://{run.exporter}/healthz")[0] == 0


def test_up_script_without_docker_runs_the_native_stack(tmp_path: Path) -> None:
    """scripts/up.sh falls back to `gatewatch stack` (arguments passed through) with no Docker engine."""
    sim, exporter, control = free_port(), free_port(), free_port()
    config = tmp_path / "gatewatch.yaml"
    config.write_text(f"gateway: {{port: {sim}}}\nexporter: {{listen: 127.0.0.1:{exporter}}}\n", encoding="utf-8")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    docker = fake_bin / "docker"  # a docker CLI whose engine does not answer
    docker.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n", encoding="utf-8")
    docker.chmod(0o755)
    env = {"PATH": f"{fake_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "up.sh"), "--config", str(config), "--no-prometheus",
                           "--data-dir", str(tmp_path / "data"), "--sim-control-port", str(control),
                           "--duration", "3"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
                          check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "no Docker engine answers" in output and "gatewatch stack is up" in output
    assert f"http://127.0.0.1:{exporter}/metrics" in output


@pytest.mark.e2e
def test_alertmanager_joins_the_stack_when_smtp_is_configured(tmp_path: Path) -> None:
    require_prometheus()
    if shutil.which("prometheus-alertmanager") is None and shutil.which("alertmanager") is None:
        pytest.skip("Alertmanager is not installed (scripts/test.sh installs prometheus-alertmanager)")
    password = tmp_path / "smtp_password"
    password.write_text("unused", encoding="utf-8")
    am = f"127.0.0.1:{free_port()}"
    run = start_stack(tmp_path, "--duration", "60", "--alertmanager-listen", am, extra_env={
        "GATEWATCH_SMTP_SMARTHOST": "127.0.0.1:2525", "GATEWATCH_ALERT_EMAIL_FROM": "gw@example.com",
        "GATEWATCH_ALERT_EMAIL_TO": "op@example.com", "GATEWATCH_SMTP_REQUIRE_TLS": "false",
        "GATEWATCH_SMTP_PASSWORD_FILE": str(password)})
    try:
        assert f"Alertmanager http://{am}" in run.output(), run.output()
        assert http_get(f"http://{am}/-/ready")[0] == 200

        def prometheus_uses_it() -> bool:
            body = http_get(f"http://{run.prometheus}/api/v1/alertmanagers")[1]
            return am in body.decode()

        assert wait_until(prometheus_uses_it, 20), "Prometheus does not list the stack's Alertmanager"
    finally:
        assert run.stop() == 0
    assert http_get(f"http://{am}/-/ready")[0] == 0
