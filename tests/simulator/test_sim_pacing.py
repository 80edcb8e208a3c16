"""Message pacing: 50 messages in every second is allowed, more is error 100, +PACEAPI queues.

The 10-minute rule runs at simulated time on the pacer itself (milliseconds); one short real-time
check goes through the socket.
"""

from __future__ import annotations

import random
import socket
import time

from support.sim import frame, raw_hello, read_msg

from simulator.pacing import FORGET_AFTER, MAX_VIOLATIONS, MessagePacer
from simulator.testing import SimHandle


def test_fifty_in_every_second_for_ten_minutes_is_never_a_violation() -> None:
    """A client keeping to 50 in every 1-second window at its end, arriving with up to 40 ms of
    network bunching, for 600 simulated seconds: no message is ever refused."""
    rng = random.Random(7)
    pacer = MessagePacer()
    sent: list[float] = []
    t = 0.0
    refused = 0
    while t < 600:
        t += rng.uniform(0.0, 0.04)
        while sent and sent[0] <= t - 1.0:
            sent.pop(0)
        if len(sent) >= 50:  # the client's own rule: wait until the oldest leaves its window
            t = sent[0] + 1.0 + 1e-6
            continue
        sent.append(t)
        arrival = t + rng.uniform(0.0, 0.04)
        if pacer.wait_needed(arrival) > 0:
            refused += 1
        else:
            pacer.record(arrival)
    assert len(sent) and refused == 0


def test_fifty_one_within_a_second_is_a_violation_and_violations_are_forgotten() -> None:
    pacer = MessagePacer()
    for i in range(50):
        assert pacer.wait_needed(i * 0.01) == 0
        pacer.record(i * 0.01)
    assert pacer.wait_needed(0.6) > 0  # the 51st inside the window
    assert pacer.violation(0.6) == 1
    assert pacer.violation(30) == 2
    assert pacer.violation(30 + FORGET_AFTER + 1) == 1  # the first two are forgotten
    burst = [pacer.violation(200 + i) for i in range(MAX_VIOLATIONS)]
    assert burst[-1] == MAX_VIOLATIONS


def _drain(s: socket.socket, seconds: float, ids: int = 0) -> list[list[str]]:
    """Messages for up to ``seconds`` (or until ``ids`` nextValidId answers came)."""
    out: list[list[str]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (ids and sum(m[0] == "9" for m in out) >= ids):
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            out.append(read_msg(s))
        except (TimeoutError, ConnectionError):
            break
    return out


def test_burst_gets_error_100_but_paceapi_client_is_queued(sim: SimHandle) -> None:
    """Real time: 70 reqIds at once -> error 100; the same with +PACEAPI -> 70 answers, no 100."""
    rejecting = raw_hello(sim.port, client_id=61)
    paced = raw_hello(sim.port, b"v157..178 +PACEAPI", client_id=62)
    for s in (rejecting, paced):
        _drain(s, 0.3, ids=1)  # the connect burst
        s.sendall(b"".join(frame(["8", "1", "1"]) for _ in range(70)))
    got = _drain(rejecting, 0.5, ids=69)
    assert sum(m[0] == "4" and m[3] == "100" for m in got) == 1
    assert sum(m[0] == "9" for m in got) == 69  # the 51st was refused; the window then restarts
    got = _drain(paced, 3.0, ids=70)
    assert not any(m[0] == "4" and m[3] == "100" for m in got)
    assert sum(m[0] == "9" for m in got) == 70
