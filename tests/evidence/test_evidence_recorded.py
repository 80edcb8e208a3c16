"""``gatewatch evidence`` on data a real exporter wrote into a real Prometheus (see conftest.py).

Healthy window: every gate the passive exporter can satisfy passes. The two order-probe gates need
the scheduled active probes inside the exporter; the test accepts "pass" for them only if the
exporter ran active probes, and otherwise checks they fail for lack of data (a session without
order probes must not pass). Outage window: the injected disconnect fails the connection gates.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RecordedSession = Any  # the conftest fixture's dataclass

ACTIVE_GATES = {"order_probes_ran", "order_probes_passed"}


def run_evidence(
    session: RecordedSession, window: tuple[float, float], out: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gatewatch",
            "evidence",
            "--prometheus",
            session.prometheus,
            "--from",
            f"{window[0]:.3f}",
            "--to",
            f"{window[1]:.3f}",
            "--out",
            str(out),
            "--config",
            str(session.config),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def gates_by_id(verdict: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["id"]: g for g in verdict["gates"]}


def test_healthy_session_gates(recorded_session: RecordedSession, tmp_path: Path) -> None:
    out = tmp_path / "healthy"
    result = run_evidence(recorded_session, recorded_session.healthy, out)
    verdict = json.loads((out / "verdict.json").read_text())
    gates = gates_by_id(verdict)
    for gate_id in (
        "window_length",
        "data_coverage",
        "exporter_scraped",
        "gateway_connected",
        "no_disconnects",
        "ib_link_held",
        "clock_in_sync",
        "memory_bounded",
        "quotes_fresh",
        "quotes_complete",
        "positions_reconciled",
    ):
        assert gates[gate_id]["status"] == "pass", gates[gate_id]
    assert gates["memory_bounded"]["values"], "memory gate judged no series"
    assert gates["gateway_connected"]["values"][0]["value"] == 1
    active_ran = any(p["kind"] == "active" for p in verdict["probes"])
    if not active_ran:
        assert gates["order_probes_ran"]["status"] == "fail"
        assert verdict["verdict"] == "fail" and result.returncode == 1
    assert verdict["window"]["seconds"] >= 20
    assert any(p["probe"] and p["kind"] == "passive" for p in verdict["probes"]), verdict["probes"]


def passive_gates_file(folder: Path) -> Path:
    """gates.yml without the order-probe gates (the recording runs no scheduled order probes)."""
    gates = yaml.safe_load((ROOT / "prometheus" / "gates.yml").read_text())
    gates["gates"] = [g for g in gates["gates"] if g["id"] not in ACTIVE_GATES]
    gates_file = folder / "gates.yml"
    gates_file.write_text(yaml.safe_dump(gates))
    return gates_file


def test_healthy_session_passes_on_the_passive_gates(recorded_session: RecordedSession, tmp_path: Path) -> None:
    """With the order-probe gates left out, the healthy recording must give a PASS and exit 0."""
    gates_file = passive_gates_file(tmp_path)
    out = tmp_path / "bundle"
    result = run_evidence(recorded_session, recorded_session.healthy, out, "--gates", str(gates_file))
    verdict = json.loads((out / "verdict.json").read_text())
    assert result.returncode == 0, (verdict["failed_gates"], result.stderr[-2000:])
    assert verdict["verdict"] == "pass" and verdict["failed_gates"] == []
    assert "verdict: PASS" in result.stdout
    html = (out / "report.html").read_text()
    assert "Session verdict: PASS" in html
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html), "the report must load nothing from outside"
    assert html.count("<svg") >= 6
    # raw series behind each chart, with real points
    connection = json.loads((out / "series" / "connection.json").read_text())
    assert connection["series"] and len(connection["series"][0]["points"]) >= 10
    quotes = json.loads((out / "series" / "quote_age.json").read_text())
    assert {s["labels"].get("symbol") for s in quotes["series"]} == {"SPY", "QQQ"}
    # the manifest verifies with the standard tool, and catches an edit
    check = subprocess.run(["sha256sum", "-c", "MANIFEST.sha256"], cwd=out, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = {line.split("  ", 1)[1] for line in (out / "MANIFEST.sha256").read_text().splitlines()}
    assert {"verdict.json", "report.html", "report.md", "series/memory.json"} <= listed
    (out / "report.md").write_text("edited\n")
    assert (
        subprocess.run(["sha256sum", "-c", "--quiet", "MANIFEST.sha256"], cwd=out, capture_output=True).returncode != 0
    )


def test_outage_session_fails(recorded_session: RecordedSession, tmp_path: Path) -> None:
    out = tmp_path / "outage"
    result = run_evidence(recorded_session, recorded_session.outage, out)
    assert result.returncode == 1
    verdict = json.loads((out / "verdict.json").read_text())
    gates = gates_by_id(verdict)
    assert gates["gateway_connected"]["status"] == "fail"
    assert gates["gateway_connected"]["values"][0]["value"] == 0
    assert gates["no_disconnects"]["status"] == "fail"
    assert gates["no_disconnects"]["values"][0]["value"] >= 1
    assert "gateway_connected" in verdict["failed_gates"]
    connection = json.loads((out / "series" / "connection.json").read_text())
    values = [v for s in connection["series"] for _, v in s["points"]]
    assert 0 in values and 1 in values
    html = (out / "report.html").read_text()
    assert "Session verdict: FAIL" in html and "gateway_connected" in html
    md = (out / "report.md").read_text()
    assert md.startswith("# gatewatch validation session: FAIL")


def test_short_window_fails_with_reason(recorded_session: RecordedSession, tmp_path: Path) -> None:
    end = recorded_session.healthy[1]
    out = tmp_path / "short"
    result = run_evidence(recorded_session, (end - 10, end), out)
    assert result.returncode == 1
    gate = gates_by_id(json.loads((out / "verdict.json").read_text()))["window_length"]
    assert gate["status"] == "fail"
    assert "shorter than session.required_duration 20 s" in gate["reason"]


def test_window_longer_than_the_recording_fails_data_coverage(
    recorded_session: RecordedSession, tmp_path: Path
) -> None:
    """``--last 1h`` over well under a minute of data: every other gate judges only the recorded
    stretch and passes, so the coverage gate alone must fail the session, and say why."""
    out = tmp_path / "long"
    result = subprocess.run(
        [sys.executable, "-m", "gatewatch", "evidence", "--prometheus", recorded_session.prometheus,
         "--last", "1h", "--to", f"{recorded_session.healthy[1]:.3f}", "--out", str(out),
         "--config", str(recorded_session.config), "--gates", str(passive_gates_file(tmp_path))],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    verdict = json.loads((out / "verdict.json").read_text())
    assert result.returncode == 1, result.stderr[-2000:]
    assert "data_coverage" in verdict["failed_gates"], verdict["failed_gates"]
    gates = gates_by_id(verdict)
    gate = gates["data_coverage"]
    assert 0 < gate["values"][0]["value"] < 0.1, gate  # well under a minute of a 60-minute window
    assert "needs >= 99%" in gate["reason"]
    # every gate judged on the recorded stretch says its evidence is missing for the rest, and fails
    # (the quote gates judge market-open time, which only the recorded stretch can show: the
    # market_open_covered gate asks for enough of it)
    for gate_id in ("gateway_connected", "no_disconnects", "clock_in_sync", "memory_bounded"):
        assert gates[gate_id]["status"] == "fail", gates[gate_id]
        assert "missing for 9" in gates[gate_id]["reason"], gates[gate_id]["reason"]
    assert "the window starts before the recorded data" in gate["reason"]
    assert "data_coverage" in result.stdout
    assert "the window starts before the recorded data" in (out / "report.md").read_text()


def test_report_renders_in_headless_chromium(recorded_session: RecordedSession, tmp_path: Path) -> None:
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (Debian package chromium)")
    out = tmp_path / "outage"
    run_evidence(recorded_session, recorded_session.outage, out, "--subject", "simulator")
    subject = json.loads((out / "verdict.json").read_text())["subject"]
    assert subject["account"] == "DU1234567" and subject["kind"] == "simulator", subject
    assert subject["gateway"].startswith("127.0.0.1:") and subject["server_version"].isdigit(), subject
    assert len(subject["config"]["sha256"]) == 64 and subject["prometheus"].startswith("Prometheus 2."), subject
    assert subject["gatewatch_version"]["exporter"] not in ("", "unknown"), subject
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom", (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout
    body = dom[dom.index("<body"):]
    # the subject block comes first, before the verdict, and says what was watched
    assert body.index('id="subject"') < body.index('id="verdict"') < body.index("Session gates")
    assert "DU1234567" in body and "the gatewatch simulator (not a real Gateway)" in body
    # legends name their series; no series is called "value"; one dashed line per symbol
    quote_chart = body[body.index("Quote age per symbol"):]
    assert 'data-series="symbol=SPY"' in quote_chart and 'data-series="symbol=QQQ"' in quote_chart
    assert ">value<" not in body and "Gateway API connected" in body
    assert "stroke-dasharray" in quote_chart[:quote_chart.index("</svg>")]
    # time ticks on round clock values, named UTC; value ticks in units
    assert re.search(r">\d\d:\d\d(:\d\d)? UTC<", body)
    # a "why" in words for every gate; each alert links to its runbook section, copied into the bundle
    assert "meets" in body or "No data" in body
    assert (out / "runbook.md").is_file(), "the runbook travels with the bundle (alert links point into it)"
    png = tmp_path / "report.png"
    profile = tmp_path / "profile"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1280,2400",
            f"--screenshot={png}",
            (out / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert png.exists() and png.stat().st_size > 30_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert "<title>gatewatch session evidence: FAIL" in html
    keep = Path("/tmp/gatewatch-evidence-screenshot.png")
    shutil.copy(png, keep)


def test_unreachable_prometheus_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gatewatch",
            "evidence",
            "--prometheus",
            "http://127.0.0.1:9",
            "--last",
            "2h",
            "--out",
            str(tmp_path / "b"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--prometheus" in result.stderr


def test_bad_time_exits_2_naming_the_option(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gatewatch",
            "evidence",
            "--prometheus",
            "http://127.0.0.1:9",
            "--from",
            "yesterday",
            "--to",
            "2026-01-02T15:00:00Z",
            "--out",
            str(tmp_path / "b"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--from" in result.stderr and "yesterday" in result.stderr
