"""The first fill is read from orderStatus's filled quantity as a number, as IBKR's client reads it."""

from __future__ import annotations

import pytest

from proxy.measure import ConnState, Measure


@pytest.mark.parametrize(("filled", "fill"), [
    (b"", False), (b"0", False), (b"0.0", False), (b"0E-10", False), (b"0.00000000", False), (b"junk", False),
    (b"1", True), (b"0.5", True), (b"1E+2", True),
])
def test_first_fill_needs_a_positive_filled_quantity(filled: bytes, fill: bool) -> None:
    m = Measure()
    st = ConnState(m.client("7"))
    m.order_placed(st, b"1", 0.0)
    m.order_status(st, b"1", b"Submitted", filled, 0.25)
    assert st.stats.fill_latency.count == (1 if fill else 0)
