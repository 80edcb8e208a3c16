"""``gatewatch stack``: the native stack comes up, is scraped, survives a crash, and stops cleanly."""

from __future__ import annotations

import argparse
import json
import mailbox
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from support.stack import ROOT, http_get, require_prometheus, start_stack, wait_until

from gatewatch.localstack.configs import Timing, render_prometheus_config
from gatewatch.localstack.net import free_port
from gatewatch.localstack.process import Process, StartError
from gatewatch.stack import add_arguments
from gatewatch.stack import parse_stack_duration as stack_duration


def test_rendered_prometheus_config_points_at_loopback_and_passes_promtool(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (scripts/test.sh installs Debian's prometheus package)")
    path = render_prometheus_config(tmp_path / "full", exporter="127.0.0.1:24002", prometheus="127.0.0.1:29090",
                                    alertmanager="127.0.0.1:29093")
    rendered = yaml.safe_load(path.read_text())
    targets = [t for job in rendered["scrape_configs"] for s in job["static_configs"] for t in s["targets"]]
    assert "127.0.0.1:24002" in targets and not any(t.startswith(("exporter:", "alertmanager:")) for t in targets)
    assert rendered["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:29093"]
    done = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr

    without_am = yaml.safe_load(render_prometheus_config(
        tmp_path / "no-am", exporter="127.0.0.1:1", prometheus="127.0.0.1:2", alertmanager=None,
        timing=Timing(interval=1.0)).read_text())
    assert "alerting" not in without_am
    assert all(job["job_name"] != "alertmanager" for job in without_am["scrape_configs"])
    assert without_am["global"]["scrape_interval"] == "1s"


def test_occupied_simulator_port_stops_the_start_with_the_cause(tmp_path: Path) -> None:
    """Something else on the simulator's port: the start fails at once, naming the port, exit 1."""
    sim, exporter, control = free_port(), free_port(), free_port()
    config = tmp_path / "gatewatch.yaml"
    config.write_text(f"gateway: {{host: 127.0.0.1, port: {sim}}}\nexporter: {{listen: 127.0.0.1:{exporter}}}\n",
                      encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "GATEWATCH_GATEWAY"}
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", sim))
        squatter.listen()
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "gatewatch", "stack", "--config", str(config), "--no-prometheus",
                               "--data-dir", str(tmp_path / "data"), "--sim-control-port", str(control),
                               "--duration", "30s"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                              check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"127.0.0.1:{sim} is already in use" in done.stderr and "simulator" in done.stderr
    assert "stack is up" not in done.stdout and "carrying on" not in done.stdout + done.stderr
    assert time.monotonic() - started < 20
    assert http_get(f"http://127.0.0.1:{exporter}/healthz")[0] == 0, "nothing left running"


def test_a_part_that_dies_while_starting_is_reported_as_an_exit_not_a_time_out(tmp_path: Path) -> None:
    """The timing message tells the truth: a process that exits after 0.2 s is reported as that."""
    log = tmp_path / "dies.log"
    process = Process("dies", [sys.executable, "-c", "import sys; print('bind failed'); sys.exit(3)"], log,
                      ready_url=f"http://127.0.0.1:{free_port()}/healthz")
    started = time.monotonic()
    process.start()
    with pytest.raises(StartError, match=r"dies exited with status 3 after \d+\.\d s") as info:
        process.wait_ready(30)
    assert time.monotonic() - started < 10 and "bind failed" in str(info.value)
    process.stop()


def test_bad_duration_exits_2_naming_the_option(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "gatewatch", "stack", "--duration", "0", "--no-prometheus",
                           "--data-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 2 and "--duration" in done.stderr


@pytest.mark.parametrize(("text", "seconds"), [("8s", 8.0), ("2m", 120.0), ("90", 90.0), (None, None)])
def test_duration_takes_units_like_every_other_command(text: str | None, seconds: float | None) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([] if text is None else ["--duration", text])
    assert stack_duration(args.duration) == seconds


def _require_alertmanager() -> None:
    if shutil.which("prometheus-alertmanager") is None and shutil.which("alertmanager") is None:
        pytest.skip("Alertmanager is not installed (scripts/test.sh installs prometheus-alertmanager)")


@pytest.mark.e2e
def test_stack_runs_for_its_duration_alerts_reach_the_local_mailbox_then_stops(tmp_path: Path) -> None:
    """Without SMTP settings Alertmanager still runs and delivers to a mailbox file the output names."""
    require_prometheus()
    _require_alertmanager()
    started = time.monotonic()
    am = f"127.0.0.1:{free_port()}"
    run = start_stack(tmp_path, "--duration", "15s", "--alertmanager-listen", am)
    mbox = (tmp_path / "data" / "mail" / "alerts.mbox").resolve()
    try:
        status, body = http_get(f"http://{run.exporter}/metrics")
        assert status == 200 and b"gatewatch_gateway_connected" in body
        assert wait_until(run.target_up, 15), "Prometheus never saw the exporter up"
        assert wait_until(lambda: run.query("gatewatch_gateway_connected == 1")["data"]["result"], 15)
        out = run.output()
        assert f"http://{run.prometheus}" in out and "Grafana" in out and "dashboards" in out
        assert f"Alertmanager http://{am} -> local mailbox {mbox}" in out, out
        assert wait_until(lambda: am in http_get(f"http://{run.prometheus}/api/v1/alertmanagers")[1].decode(), 15)
        alert = [{"labels": {"alertname": "GatewayDown", "severity": "critical", "job": "gatewatch",
                             "instance": run.exporter},
                  "annotations": {"summary": "IB Gateway API connection is down"}}]
        request = urllib.request.Request(f"http://{am}/api/v2/alerts", data=json.dumps(alert).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=5).close()

        def delivered() -> bool:
            return any("GatewayDown" in str(m["Subject"]) for m in mailbox.mbox(mbox))

        assert wait_until(delivered, 12), f"no GatewayDown in {mbox}"
        assert run.process.wait(40) == 0, run.output()
    finally:
        run.stop()
    assert time.monotonic() - started >= 15
    for address in (run.exporter, run.prometheus, am, f"127.0.0.1:{run.control_port}"):
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
