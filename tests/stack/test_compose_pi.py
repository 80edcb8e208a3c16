"""docker-compose.yml on the Raspberry Pi: arm64 images only, and the IB Gateway container set up for gatewatch.

No registry is reachable here, so the arm64 check reads the checked list docs/arm64-images.yml (each
tag with where it was verified). The Gateway container's start script is run for real with bash
against real configuration files, with the image's own start script replaced by one that prints
what it would receive.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.stack import ROOT

from gatewatch.config import load_config

COMPOSE_FILE = ROOT / "docker-compose.yml"
ARM64_LIST = ROOT / "docs" / "arm64-images.yml"
START_SCRIPT = ROOT / "scripts" / "ib-gateway-start.sh"


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")))


def arm64_tags() -> dict[str, set[str]]:
    images = yaml.safe_load(ARM64_LIST.read_text(encoding="utf-8"))["images"]
    for name, entry in images.items():
        assert str(entry.get("source", "")).strip(), f"{name}: the list must say where arm64 was checked"
        assert entry.get("checked"), f"{name}: the list must say when it was checked"
    return {name: {str(tag) for tag in entry["tags"]} for name, entry in images.items()}


def compose_images() -> list[tuple[str, str]]:
    """(service, image) for every service compose pulls, and the Dockerfile's bases for the one it builds."""
    found = []
    for name, service in compose()["services"].items():
        if "build" in service:
            dockerfile = ROOT / service["build"].get("context", ".") / "Dockerfile"
            found += [(f"{name} (Dockerfile)", base) for base in
                      re.findall(r"^FROM (\S+)", dockerfile.read_text(encoding="utf-8"), re.M)]
        else:
            found.append((name, service["image"]))
    return found


def test_every_image_names_a_tag_known_to_publish_linux_arm64() -> None:
    known = arm64_tags()
    images = compose_images()
    assert {"ib-gateway", "prometheus", "alertmanager", "grafana"} <= {s for s, _ in images}
    for service, image in images:
        name, _, tag = image.rpartition(":")
        assert name in known and tag in known[name], (
            f"{service}: {image} is not in {ARM64_LIST.name}; check that the tag publishes linux/arm64 "
            "and add it there with its source")


def test_ib_gateway_pin_is_past_the_first_arm64_release() -> None:
    tag = compose()["services"]["ib-gateway"]["image"].rpartition(":")[2]
    version = tuple(int(part) for part in re.findall(r"\d+", tag)[:3])
    assert version >= (10, 37, 1), f"ghcr.io/gnzsnz/ib-gateway:{tag} predates that project's arm64 images"


def test_prometheus_cannot_be_stopped_over_http() -> None:
    """--web.enable-lifecycle would let anyone reaching port 9090 POST /-/quit mid-session."""
    command = compose()["services"]["prometheus"]["command"]
    assert not any("enable-lifecycle" in arg for arg in command), command


def test_gateway_settings_survive_recreation_in_a_named_volume() -> None:
    spec = compose()
    gateway = spec["services"]["ib-gateway"]
    settings = gateway["environment"]["TWS_SETTINGS_PATH"]
    mounts = {entry.split(":")[1]: entry.split(":")[0] for entry in gateway["volumes"]}
    assert mounts.get(settings) in spec["volumes"], f"{settings} is not a named volume"


def test_gateway_container_runs_the_start_script_with_the_config_mounted() -> None:
    gateway = compose()["services"]["ib-gateway"]
    mounts = {entry.split(":")[1]: entry.split(":")[0] for entry in gateway["volumes"]}
    script_in_container = gateway["entrypoint"][-1]
    assert (ROOT / mounts[script_in_container]).resolve() == START_SCRIPT
    assert mounts["/home/ibgateway/gatewatch-config"] == "./config"
    assert "TWS_MASTER_CLIENT_ID" not in gateway["environment"], "the master client id comes from the config"


def _start(config: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the start script as the container would, with the image's run.sh replaced by an env dump."""
    fake_run = tmp_path / "run.sh"
    fake_run.write_text("#!/bin/sh\nenv\n", encoding="utf-8")
    fake_run.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "GATEWATCH_CONFIG": str(config), "GATEWATCH_GATEWAY_RUN": str(fake_run)}
    return subprocess.run(["bash", str(START_SCRIPT)], env=env, capture_output=True, text=True, timeout=10,
                          check=False)


def _master(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return re.search(r"^TWS_MASTER_CLIENT_ID=(.*)$", done.stdout, re.M).group(1)  # type: ignore[union-attr]


def test_master_client_id_is_the_exporters_client_id_from_the_shipped_config(tmp_path: Path) -> None:
    shipped = ROOT / "config" / "gatewatch.yaml"
    assert _master(_start(shipped, tmp_path)) == str(load_config(shipped, environ={}).gateway.client_id)


@pytest.mark.parametrize("line", ["  client_id: 777", "  client_id: 777   # mine", '  client_id: "777"',
                                  "  client_id:   777  "])
def test_master_client_id_follows_a_changed_config(tmp_path: Path, line: str) -> None:
    config = tmp_path / "gatewatch.yaml"
    config.write_text(f"exporter:\n  log_level: INFO\ngateway:\n  port: 4004\n  # client_id: 5\n{line}\n"
                      "  probe_client_id: 902\nprobes:\n  symbols: [SPY]\n", encoding="utf-8")
    assert load_config(config, environ={}).gateway.client_id == 777
    assert _master(_start(config, tmp_path)) == "777"


@pytest.mark.parametrize("text", ["gateway:\n  port: 4004\n", "gateway: {client_id: 901}\n", "probes: {}\n"])
def test_gateway_refuses_to_start_without_a_readable_client_id(tmp_path: Path, text: str) -> None:
    config = tmp_path / "gatewatch.yaml"
    config.write_text(text, encoding="utf-8")
    done = _start(config, tmp_path)
    assert done.returncode == 1 and "gateway.client_id" in done.stderr and "TWS_MASTER" not in done.stdout
