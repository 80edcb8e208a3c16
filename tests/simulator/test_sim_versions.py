"""Version negotiation by default (simulator.session.negotiate): a client advertising 213 or more
gets protobuf up to 226 without any option, clients up to 178 keep exactly what they had, and a
client advertising 179-212 is never spoken to at a version the simulator does not lay out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.ibapi_client import ibapi_client
from support.sim import connect, raw_hello, read_msg

from simulator.config import SimConfig
from simulator.protobuf import MAX_SERVED
from simulator.session import negotiate
from simulator.testing import SimHandle, running_simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    """A simulator with no version option at all."""
    with running_simulator(port=0, control_port=None, seed=1) as handle:
        yield handle


def _hello(port: int, versions: str) -> str | None:
    """The server version the simulator answers ``versions`` with, or None when it closes."""
    s = raw_hello(port, versions.encode(), client_id=None)
    try:
        return read_msg(s)[0]
    except ConnectionError:  # closed (EOF or reset); a timeout is a failure, not a refusal
        return None
    finally:
        s.close()


def test_the_default_serves_the_highest_version() -> None:
    assert SimConfig().max_server_version == MAX_SERVED == 226


@pytest.mark.parametrize(
    ("versions", "served"),
    [
        ("v100..178", "178"),  # ib_async 2.1.0's range
        ("v100..176", "176"),  # ib_insync 0.9.86's
        ("v100..200", "178"),  # 179-200 not laid out: the highest served in range
        ("v100..212", "178"),
        ("v100..213", "213"),
        ("v100..226", "226"),  # IBKR's 10.51 client
        ("v100..240", "226"),  # a newer client: the highest served
        ("v179..226", "226"),
        ("v190..212", None),  # nothing served in its range: closed, never spoken to wrongly
        ("v100..150", None),
    ],
)
def test_raw_hello_gets_the_highest_served_version_in_range(sim: SimHandle, versions: str, served: str | None) -> None:
    assert _hello(sim.port, versions) == served


def test_a_lower_cap_applies_to_both_protocols() -> None:
    assert negotiate(100, 226, 222) == 222
    assert negotiate(100, 226, 170) == 170
    assert negotiate(213, 226, 178) is None


async def test_text_clients_unchanged_on_a_default_simulator(sim: SimHandle) -> None:
    ib = await connect(sim, 1)
    assert ib.client.serverVersion() == 178
    ib.disconnect()
    ib_insync = pytest.importorskip("ib_insync")
    old = ib_insync.IB()
    await old.connectAsync("127.0.0.1", sim.port, clientId=2, timeout=5)
    assert old.client.serverVersion() == 176
    old.disconnect()


def test_ibapi_gets_protobuf_at_226_by_default(sim: SimHandle) -> None:
    with ibapi_client(sim.port, 3) as (c, rec):
        assert c.serverVersion() == 226
        c.reqCurrentTime()
        rec.wait("currentTimeProtoBuf")
