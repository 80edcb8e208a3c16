"""The overhead bench's two clients: connected in the order asked for, the bare one without
allocator churn.

The figures are the bench's (docs/performance.md); this checks the two things its ratio rests on
since the client connected first was found to use more CPU than an identical one connected second,
and the bare script to map and unmap its receive buffer on every read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.bench_exporter import BARE_ALLOCATOR, clients_in_order, simulator_process

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_each_order_connects_its_first_client_first_and_the_bare_one_keeps_its_buffer(tmp_path: Path) -> None:
    with simulator_process(["SPY"], 4.0) as (port, _sim_pid):
        for exporter_first in (True, False):
            work = tmp_path / f"exporter-first-{exporter_first}"
            work.mkdir()
            with clients_in_order(port, ["SPY"], work, exporter_first) as (_listen, exporter, bare):
                # each client is streaming before the next one starts, so started first = connected first
                assert (exporter.create_time() < bare.create_time()) is exporter_first
                environ = Path(f"/proc/{bare.pid}/environ").read_bytes().split(b"\0")
                for name, value in BARE_ALLOCATOR.items():
                    assert f"{name}={value}".encode() in environ
