"""The IB facts written once (gatewatch.ib, gatewatch.durations): each rule, and that its users agree."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest

from gatewatch.checks.host import check_ntp
from gatewatch.config import GatewayConfig
from gatewatch.durations import parse_duration
from gatewatch.ib.account import is_managed, the_account
from gatewatch.ib.connect import Client, client_id
from gatewatch.ib.ntp import NtpStatus, host_ntp_status, synchronised_by_max_error


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90), ("2m", 120), ("1h30m", 5400), ("1h 30m", 5400), ("250ms", 0.25), ("1m30s500ms", 90.5),
        ("1.5h", 5400), (3, 3), (2.5, 2.5), ("1.5", 1.5), (" 10s ", 10), (timedelta(minutes=1), 60), ("0s", 0),
    ],
)  # fmt: skip
def test_one_duration_grammar(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "soon", "5 minutes", "10x", "30m1h", "1s1s", True, None, [1], "nan", "inf", "1e999", float("nan"),
     math.inf, -1, "-5", "1e12", "9" * 70],
)  # fmt: skip
def test_duration_rejects_junk_non_finite_negative_and_huge(text: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_simulator_and_config_share_the_duration_grammar() -> None:
    from gatewatch.config import parse_duration as config_parse
    from simulator.faults import parse_duration as sim_parse

    assert sim_parse is parse_duration is config_parse


@pytest.mark.parametrize(
    ("configured", "managed", "account"),
    [
        (None, ["DU1", "DU2"], "DU1"),
        ("DU2", ["DU1", "DU2"], "DU2"),
        ("DU9", ["DU1"], "DU9"),  # configured wins; whether it is managed is judged apart
        (None, ["", "DU3"], "DU3"),
        (None, [], ""),
    ],
)
def test_the_account(configured: str | None, managed: list[str], account: str) -> None:
    assert the_account(configured, managed) == account


def test_is_managed() -> None:
    assert is_managed("DU1", ["DU1"]) and not is_managed("DU9", ["DU1"]) and not is_managed("", [""])


def test_client_ids_are_distinct_and_derived_from_config() -> None:
    gateway = GatewayConfig(client_id=7, probe_client_id=8)
    ids = {client: client_id(gateway, client) for client in Client}
    assert ids == {Client.EXPORTER: 7, Client.PROBES: 8, Client.PREFLIGHT: 17, Client.LIVE_SUITE: 27,
                   Client.LIVE_SUITE_PROBES: 28}
    assert len(set(ids.values())) == len(ids)


def test_host_ntp_status_answers_with_its_source() -> None:
    status = host_ntp_status()
    assert (status.synchronised is None) == (status.source == "")
    assert status.source in ("", "adjtimex")
    if sys.platform == "linux":  # the kernel always answers a read-only adjtimex, unprivileged too
        assert status.source == "adjtimex"


@pytest.mark.parametrize(("max_error_us", "synchronised"),
                         [(0, True), (250_000, True), (15_999_999, True), (16_000_000, False), (16_500_000, False)])
def test_synchronised_is_systemds_rule_a_kernel_max_error_under_16_s(max_error_us: int, synchronised: bool) -> None:
    """16 s is where the kernel leaves an undisciplined clock (and where it starts at boot)."""
    assert synchronised_by_max_error(max_error_us) is synchronised


@pytest.mark.skipif(not shutil.which("timedatectl"), reason="no timedatectl on this host")
def test_the_reading_equals_timedatectls_where_it_answers() -> None:
    """Where systemd runs, NTPSynchronized and the kernel read agree (same figure, same limit)."""
    out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                         capture_output=True, text=True, timeout=5, check=False)
    if out.returncode != 0 or out.stdout.strip() not in ("yes", "no"):
        pytest.skip(f"timedatectl does not answer here: {(out.stderr.strip().splitlines() or [''])[0][:80]}")
    assert host_ntp_status().synchronised is (out.stdout.strip() == "yes")


@pytest.mark.parametrize(
    ("status", "mark"),
    [(NtpStatus(True, "adjtimex"), "pass"), (NtpStatus(False, "adjtimex"), "warn"), (NtpStatus(None, ""), "info")],
)
def test_preflight_reports_the_shared_ntp_status(status: NtpStatus, mark: str) -> None:
    result = check_ntp(status)
    assert result.status == mark and not result.blocks
    assert status.source in result.detail
