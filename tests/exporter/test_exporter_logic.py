"""The pure parts of the probes: skew estimation, message classes, farm names, back-off."""

from __future__ import annotations

import math
import random

import pytest

from probes.gateway import Backoff, TimeSample
from probes.passive.clock import ClockEstimator
from probes.passive.connection import classify, farm_name
from probes.passive.reconciliation import differences, read_bot_positions


def _sample(send: float, true_offset: float, rtt: float) -> TimeSample:
    """What a Gateway whose clock is ``true_offset`` behind the host answers (whole seconds)."""
    arrival_server_time = send + rtt / 2 - true_offset
    return TimeSample(send, send + rtt, math.floor(arrival_server_time))


@pytest.mark.parametrize("true_offset", [0.0, 0.37, -0.81, 2.5, -12.123])
def test_boundary_aimed_sampling_converges_to_the_round_trip(true_offset: float) -> None:
    est, rtt, now = ClockEstimator(), 0.004, 1_800_000_000.25
    for _ in range(12):
        now = est.next_send_time(now + 1.2, rtt)
        assert est.add(_sample(now, true_offset, rtt))
    assert est.lo <= true_offset <= est.hi
    assert est.uncertainty < 0.01
    assert abs(est.skew - true_offset) < 0.01


def test_a_clock_step_restarts_the_interval() -> None:
    est, rtt, now = ClockEstimator(), 0.004, 1_800_000_000.0
    for _ in range(10):
        now = est.next_send_time(now + 1.2, rtt)
        est.add(_sample(now, 0.2, rtt))
    consistent = [est.add(_sample(now := est.next_send_time(now + 1.2, rtt), -2.8, rtt)) for _ in range(12)]
    assert consistent[0] is False and est.resets >= 1
    assert abs(est.skew + 2.8) < 0.02


def test_message_classes() -> None:
    assert classify(1100) == "critical" and classify(10197) == "critical"
    assert classify(1101) == "warning" and classify(100) == "warning" and classify(2103) == "warning"
    assert classify(2104) == "informational" and classify(1102) == "informational"
    assert classify(2119) == "informational"  # other 21xx notices
    assert classify(12345) == "warning"  # unknown codes deserve a look


def test_farm_names() -> None:
    assert farm_name("Market data farm connection is OK:usfarm.nj") == "usfarm.nj"
    assert farm_name("HMDS data farm connection is broken:ushmds") == "ushmds"
    assert farm_name("Market data farm connection is inactive but should be available upon demand.usfarm") == "usfarm"
    assert farm_name("no farm here") == "unknown"


def test_backoff_doubles_caps_and_jitters() -> None:
    backoff = Backoff(1.0, 8.0, 0.2, random.Random(7))
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, base in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    backoff.reset()
    assert backoff.next_delay() <= 1.2


def test_bot_positions_file(tmp_path) -> None:
    good = tmp_path / "p.json"
    good.write_text('{"SPY": 10, "SPY 20261127 C 600": -1}')
    assert read_bot_positions(str(good)) == {"SPY": 10.0, "SPY 20261127 C 600": -1.0}
    good.write_text('{"SPY": "ten"}')
    with pytest.raises(ValueError, match="quantity of 'SPY'"):
        read_bot_positions(str(good))
    assert differences({"SPY": 5}, {"QQQ": 1}) == {"QQQ": -1.0, "SPY": 5.0}
