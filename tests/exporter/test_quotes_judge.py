"""The quotes probe's verdict on its streams (pure function: no Gateway needed)."""

from __future__ import annotations

import math

from probes.passive.quotes import QuoteState, judge


def test_only_a_stream_not_held_keeps_the_probe_from_measuring() -> None:
    stale_one_sided = QuoteState("SPY", watched_since=0.0, subscribed=True, bid=-1.0, ask=math.nan)
    stale_one_sided.last_change = 1.0  # hours old: judged by QuoteStale/QuoteIncomplete, not here
    unsubscribed = QuoteState("QQQ", watched_since=100.0)
    assert judge([stale_one_sided]) == []
    assert judge([stale_one_sided, unsubscribed]) == ["QQQ not subscribed"]
