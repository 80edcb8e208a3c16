"""The quotes probe's verdict on its streams (pure function: no Gateway needed)."""

from __future__ import annotations

import math

from probes.passive.quotes import QuoteState, judge


def _state(symbol: str = "SPY", *, since: float = 100.0, quoted_at: float | None = None,
           bid: float = math.nan, ask: float = math.nan) -> QuoteState:
    state = QuoteState(symbol, watched_since=since, subscribed=True, bid=bid, ask=ask)
    state.last_change = quoted_at
    return state


def test_a_stream_awaiting_its_first_quote_is_not_a_failure_until_it_is_late() -> None:
    fresh = _state(since=100.0)
    assert judge([fresh], now=101.0, stale_after=5.0, market_open=True) == []
    assert judge([fresh], now=106.0, stale_after=5.0, market_open=True) == ["SPY stale (no quote for over 5 s)"]


def test_a_quoted_stream_without_bid_and_ask_fails_while_open_only() -> None:
    one_sided = _state(quoted_at=100.5, bid=-1.0, ask=-1.0)
    assert judge([one_sided], now=101.0, stale_after=5.0, market_open=True) == ["SPY bid/ask missing or crossed"]
    assert judge([one_sided], now=101.0, stale_after=5.0, market_open=False) == []


def test_healthy_and_unsubscribed_streams() -> None:
    healthy = _state(quoted_at=100.5, bid=500.0, ask=500.02)
    unsubscribed = QuoteState("QQQ", watched_since=100.0)
    assert judge([healthy, unsubscribed], now=101.0, stale_after=5.0, market_open=False) == ["QQQ not subscribed"]
    assert judge([healthy], now=101.0, stale_after=5.0, market_open=True) == []
