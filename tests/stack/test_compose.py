"""docker compose file and Dockerfile: schema-valid, lint-clean, and following the stack's rules.

No Docker engine runs here, so the compose file is checked against the compose-spec JSON schema and
by reading it, and the image's entry command is run natively (same argv, against the simulator)
until /healthz answers, which is what the container's HEALTHCHECK waits for.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.stack import ROOT, http_get, wait_until

from gatewatch.localstack.net import free_port

BIN = Path(sys.executable).parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")))


def dockerfile_instruction(name: str) -> list[str]:
    """The JSON-array form of a Dockerfile instruction (ENTRYPOINT, CMD), or of HEALTHCHECK's CMD."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return list(json.loads(line[line.index("["):]))
    raise AssertionError(f"Dockerfile has no {name} in JSON form")


def test_compose_file_matches_the_compose_spec_schema() -> None:
    done = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                           str(COMPOSE_FILE)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run([str(BIN / "hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_runs_unprivileged_on_a_pinned_multiarch_base_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases and all(re.fullmatch(r"python:3\.1[23]\.\d+-slim(-\w+)?", b) for b in bases), bases
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    health = dockerfile_instruction("HEALTHCHECK")
    assert health[:2] == ["python", "-c"] and "/healthz" in health[2]
    assert not re.search(r"\b(amd64|arm64|aarch64|x86_64)\b", "\n".join(
        line for line in text.splitlines() if not line.startswith("#"))), "no architecture-specific step"


def test_every_published_port_is_bound_to_loopback() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_every_long_running_service_has_a_healthcheck_and_restart_policy() -> None:
    for name, service in compose()["services"].items():
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", f"{name} has no unless-stopped restart policy"


def test_grafana_admin_password_has_no_default() -> None:
    env = compose()["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "${GF_SECURITY_ADMIN_PASSWORD:?set it in .env}"


def test_state_lives_in_named_volumes() -> None:
    spec = compose()
    named = set(spec["volumes"])
    wanted = {"prometheus": "/prometheus", "grafana": "/var/lib/grafana", "alertmanager": "/alertmanager",
              "exporter": "/app/var"}
    for service, target in wanted.items():
        sources = {v.split(":")[0] for v in spec["services"][service]["volumes"] if v.split(":")[1] == target}
        assert sources and sources <= named, f"{service}:{target} is not a named volume"
    prom = " ".join(spec["services"]["prometheus"]["command"])
    assert "--storage.tsdb.retention.time=${PROMETHEUS_RETENTION:-30d}" in prom


def test_grafana_provisioning_points_at_mounted_folders() -> None:
    """A provider path that no volume mounts provisions nothing, silently: Grafana starts empty."""
    grafana = compose()["services"]["grafana"]
    mounts = {entry.split(":")[1]: entry.split(":")[0] for entry in grafana["volumes"] if ":" in entry}
    assert mounts.get("/etc/grafana/provisioning") == "./grafana/provisioning"
    providers = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/gatewatch.yml").read_text())["providers"]
    for provider in providers:
        path = provider["options"]["path"]
        assert path in mounts, f"provider {provider['name']!r} reads {path}, which no volume mounts"
        source = ROOT / mounts[path]
        assert sorted(source.glob("*.json")), f"{source} holds no dashboards"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    folder, _, name = home.rpartition("/")
    assert (ROOT / mounts[folder] / name).is_file()


def test_images_are_pinned() -> None:
    for name, service in compose()["services"].items():
        image = service.get("image", "")
        tag = image.rsplit(":", 1)[-1] if ":" in image else ""
        assert tag and tag not in {"latest", "stable", "main"}, f"{name}: image {image!r} is not pinned"


def test_real_gateway_switch_and_paper_only_gateway_container() -> None:
    spec = compose()
    exporter = spec["services"]["exporter"]
    assert exporter["environment"]["GATEWATCH_GATEWAY"] == "${GATEWATCH_GATEWAY:-simulator:4002}"
    assert "host.docker.internal:host-gateway" in exporter["extra_hosts"]
    gateway = spec["services"]["ib-gateway"]
    assert gateway["profiles"] == ["ibgateway"]
    assert gateway["environment"]["TRADING_MODE"] == "paper"
    assert gateway["environment"]["TWS_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "TWS_PASSWORD" not in gateway["environment"]
    assert spec["services"]["simulator"]["profiles"] == ["simulator"]


def test_every_compose_variable_is_documented_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text(encoding="utf-8")))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^([A-Z0-9_]+)=", example, re.M))
    assert used <= listed, f"missing from .env.example: {sorted(used - listed)}"
    assert "simulator" in re.search(r"^COMPOSE_PROFILES=(.*)$", example, re.M).group(1)  # type: ignore[union-attr]


def test_image_command_and_compose_exporter_command_agree() -> None:
    cmd = dockerfile_instruction("CMD")
    assert dockerfile_instruction("ENTRYPOINT") == ["gatewatch"]
    assert compose()["services"]["exporter"]["command"] == cmd


def test_simulator_command_is_accepted_by_the_simulator_cli() -> None:
    from simulator import cli

    argv = compose()["services"]["simulator"]["command"]
    assert argv[0] == "sim"
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    assert (args.host, args.port, args.control_port) == ("0.0.0.0", 4002, 4080)


def test_alertmanager_command_renders_a_config_amtool_accepts(tmp_path: Path) -> None:
    if shutil.which("amtool") is None:
        pytest.skip("amtool is not installed (scripts/test.sh installs prometheus-alertmanager)")
    service = compose()["services"]["alertmanager"]
    mount = next(v for v in service["volumes"] if v.endswith(":/etc/gatewatch/alertmanager:ro"))
    folder = (ROOT / mount.split(":")[0]).resolve()
    command = service["command"][0]
    assert command.startswith("/etc/gatewatch/alertmanager/render.sh /alertmanager/alertmanager.yml")
    password = tmp_path / "smtp_password"
    password.write_text("pa55-Zq9-not-rendered", encoding="utf-8")
    env = {**os.environ, **{k: str(v) for k, v in service["environment"].items()},
           "GATEWATCH_SMTP_SMARTHOST": "smtp.example.com:587", "GATEWATCH_ALERT_EMAIL_FROM": "gw@example.com",
           "GATEWATCH_ALERT_EMAIL_TO": "op@example.com", "GATEWATCH_SMTP_USERNAME": "gw",
           "GATEWATCH_SMTP_REQUIRE_TLS": "true", "GATEWATCH_SMTP_PASSWORD_FILE": str(password),
           "GATEWATCH_ALERTMANAGER_TEMPLATES": str(folder / "templates")}
    out = tmp_path / "alertmanager.yml"
    subprocess.run(["sh", str(folder / "render.sh"), str(out)], env=env, check=True, capture_output=True)
    done = subprocess.run(["amtool", "check-config", str(out)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pa55-Zq9" not in out.read_text(encoding="utf-8")


def test_exporter_entry_command_serves_healthz_against_the_simulator(tmp_path: Path) -> None:
    """The image's ENTRYPOINT + CMD, run natively: only the config path and listen port differ."""
    from simulator import running_simulator

    config = tmp_path / "gatewatch.yaml"
    shutil.copy(ROOT / "config" / "gatewatch.yaml", config)
    port = free_port()
    argv = dockerfile_instruction("ENTRYPOINT") + dockerfile_instruction("CMD")
    replacements = {"/app/config/gatewatch.yaml": str(config), "0.0.0.0:14002": f"127.0.0.1:{port}",
                    "gatewatch": str(BIN / "gatewatch")}
    argv = [replacements.get(a, a) for a in argv]
    health = dockerfile_instruction("HEALTHCHECK")
    health = [sys.executable if a == "python" else a.replace("127.0.0.1:14002", f"127.0.0.1:{port}")
              for a in health]
    with running_simulator(port=0, control_port=0, account="DU1234567", seed=1) as sim:
        env = {**os.environ, "GATEWATCH_GATEWAY": f"127.0.0.1:{sim.port}"}
        log = (tmp_path / "exporter.log").open("w")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            assert wait_until(lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
                              if proc.poll() is None else True, 30)
            assert proc.poll() is None, (tmp_path / "exporter.log").read_text()
            assert subprocess.run(health, check=False, timeout=10).returncode == 0, "HEALTHCHECK command failed"
            assert wait_until(lambda: json.loads(http_get(f"http://127.0.0.1:{port}/healthz")[1])
                              ["gateway"]["connected"], 20)
        finally:
            proc.terminate()
            proc.wait(15)
            log.close()
