"""Alertmanager configuration: rendering, amtool validation, routing, and a real Alertmanager
delivering (and inhibiting) e-mails to a local SMTP server."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import promstack

pytestmark = pytest.mark.skipif(bool(promstack.binaries_missing()),
                                reason=f"missing binaries: {promstack.binaries_missing()}")

BASE_ENV = {
    "GATEWATCH_SMTP_SMARTHOST": "smtp.example.org:587",
    "GATEWATCH_ALERT_EMAIL_FROM": "gatewatch@example.org",
    "GATEWATCH_ALERT_EMAIL_TO": "operator@example.org",
}


def render(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWATCH_")}
    return subprocess.run(["sh", str(promstack.ALERTMANAGER_RENDER), str(tmp_path / "alertmanager.yml")],
                          env={**clean, **env}, capture_output=True, text=True, timeout=10)


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("missing", sorted(BASE_ENV))
def test_render_names_a_missing_variable(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in BASE_ENV.items() if k != missing}
    result = render(tmp_path, **env)
    assert result.returncode == 2
    assert missing in result.stderr
    assert not (tmp_path / "alertmanager.yml").exists()


@pytest.mark.parametrize(("name", "value"), [("GATEWATCH_SMTP_SMARTHOST", "smtp.example.org"),
                                             ("GATEWATCH_SMTP_REQUIRE_TLS", "yes"),
                                             ("GATEWATCH_ALERT_EMAIL_TO", "operator")])
def test_render_rejects_bad_values(tmp_path: Path, name: str, value: str) -> None:
    result = render(tmp_path, **{**BASE_ENV, name: value})
    assert result.returncode == 2
    assert name in result.stderr


def test_rendered_config_passes_amtool_and_keeps_the_password_out(tmp_path: Path) -> None:
    secret = tmp_path / "smtp_password"
    secret.write_text("hunter2-not-in-config\n")
    result = render(tmp_path, **BASE_ENV, GATEWATCH_SMTP_USERNAME="o'brien",
                    GATEWATCH_SMTP_PASSWORD_FILE=str(secret))
    assert result.returncode == 0, result.stderr
    config = tmp_path / "alertmanager.yml"
    checked = amtool("check-config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    assert "hunter2" not in text and "@@" not in text.split("\nglobal:", 1)[1]
    doc = yaml.safe_load(text)
    assert doc["global"]["smtp_auth_username"] == "o'brien"  # quote survived YAML escaping
    assert doc["global"]["smtp_auth_password_file"] == str(secret)
    assert doc["global"]["smtp_require_tls"] is True
    assert doc["receivers"][0]["email_configs"][0]["to"] == "operator@example.org"


@pytest.mark.parametrize(("labels", "path"), [
    (["alertname=GatewayDown", "severity=critical"], '{severity="critical"}'),
    (["alertname=HostCpuHigh", "severity=warning"], "default-route  receiver: email"),
])
def test_routing(tmp_path: Path, labels: list[str], path: str) -> None:
    assert render(tmp_path, **BASE_ENV).returncode == 0
    result = amtool("config", "routes", "test", f"--config.file={tmp_path / 'alertmanager.yml'}",
                    "--verify.receivers=email", "--tree", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    last_route = [line for line in result.stdout.splitlines() if "──" in line][-1]
    assert path in last_route


def _alert(name: str, severity: str, instance: str = "exporter:14002", ends: float | None = None,
           **labels: str) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {"alertname": name, "severity": severity, "job": "gatewatch", "instance": instance, **labels},
        "annotations": {"summary": f"{name} summary", "description": f"{name} now 42",
                        "runbook_url": f"docs/runbook.md#{name.lower()}"},
    }
    if ends is not None:
        alert["endsAt"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ends))
    return alert


def test_inhibition_and_email_delivery(tmp_path: Path) -> None:
    """GatewayDown mutes QuoteStale on the same exporter, not elsewhere; mails carry the facts."""
    with promstack.smtp_sink() as sink:
        config = promstack.render_alertmanager_config(tmp_path, smtp_port=sink.port)
        with promstack.running_alertmanager(config, tmp_path) as am:
            start = time.time()
            # The cause first, as in a real outage (quotes go stale after the Gateway is gone): posted
            # in one batch, a consequence can reach the dispatcher before the inhibitor has the cause.
            am.post_alerts([_alert("GatewayDown", "critical")])
            down = sink.wait_for(lambda m: "GatewayDown" in m.subject, 10, "for GatewayDown", start)
            am.post_alerts([_alert("QuoteStale", "critical", symbol="SPY"),
                            _alert("QuoteStale", "critical", instance="other:14002", symbol="QQQ"),
                            _alert("HostCpuHigh", "warning")])
            sink.wait_for(lambda m: "HostCpuHigh" in m.subject, 10, "for HostCpuHigh", start)
            other = sink.wait_for(lambda m: "QuoteStale" in m.subject, 10, "for the other exporter", start)
            assert "instance=other:14002" in other.text and "QQQ" in other.subject

            inhibited = [a for a in am.alerts() if a["status"]["inhibitedBy"]]
            assert [(a["labels"]["alertname"], a["labels"]["instance"]) for a in inhibited] == \
                [("QuoteStale", "exporter:14002")]
            time.sleep(2.0)  # several group intervals: an inhibited mail would have gone out by now
            assert len(sink.matching(lambda m: "QuoteStale" in m.subject, start)) == 1

            assert down.subject == "[gatewatch] FIRING: GatewayDown (critical)"
            assert down.recipients == ["operator@localhost"]
            for expected in ("GatewayDown summary", "GatewayDown now 42", "docs/runbook.md#gatewaydown",
                             "Since:", "instance=exporter:14002"):
                assert expected in down.text
            assert "docs/runbook.md#gatewaydown" in down.html

            recovered = time.time()
            am.post_alerts([_alert("GatewayDown", "critical", ends=recovered - 1)])
            resolved = sink.wait_for(lambda m: m.subject.startswith("[gatewatch] RESOLVED: GatewayDown"), 10,
                                     "resolving GatewayDown", recovered)
            assert "Until:" in resolved.text
            # once the cause is gone, the muted consequence is mailed
            sink.wait_for(lambda m: "QuoteStale" in m.subject and "SPY" in m.subject, 10,
                          "for the no longer inhibited QuoteStale", recovered)


def test_production_grouping_is_the_one_the_latency_budget_assumes(tmp_path: Path) -> None:
    """docs/performance.md's delivery figure assumes these values; change both together."""
    assert render(tmp_path, **BASE_ENV).returncode == 0
    route = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())["route"]
    critical = route["routes"][0]
    assert critical["matchers"] == ['severity="critical"']
    assert (critical["group_wait"], critical["group_interval"]) == ("5s", "30s")
    assert route["group_wait"] == "10s"
