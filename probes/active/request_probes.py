"""Request-path probes: timeouts, pacing and error recovery leave the connection usable.

Why: the trading bot's worst failures are not rejected orders but a connection wedged by one
hung request, a session ended by pacing violations, or a bad symbol that poisons later requests.
"""

from __future__ import annotations

import asyncio
import math
import time

from ib_async import Stock

from probes.active.context import ProbeContext
from probes.active.orders import ProbeFailure
from probes.active.pacing import historical_key, is_pacing_error

BURST_SIZE = 20
INVALID_SYMBOL = "ZZZQXV"
NOT_FOUND = 200


async def probe_timeout(ctx: ProbeContext) -> str:
    """A request that times out fails cleanly, its late answer is harmless, and the next one succeeds.

    Why a deadline already past when the request is sent, not a tiny one: under
    ``wait_for(request, 1 µs)`` the timer and a fast answer race (on loopback the answer sometimes
    wins and nothing times out). ``asyncio.timeout_at(now)`` queues its cancellation before the
    request's bytes are written, and the event loop runs queued callbacks before it reads the
    socket again; so the request really goes out, the deadline always fires first, and the answer
    arrives for a request nobody waits for: the case this probe exists to prove harmless. Nothing
    here depends on how fast the Gateway is.
    """
    ib, timeout = ctx.ib, ctx.config.gateway.request_timeout
    await ctx.governor.ready()
    sent_before = ib.client.conn.numMsgSent
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(loop.time()):
            await ib.reqContractDetailsAsync(ctx.instrument)
    except TimeoutError:
        pass
    else:
        raise ProbeFailure("a request under an expired deadline was answered instead of timing out")
    if ib.client.conn.numMsgSent <= sent_before:
        raise ProbeFailure("the timed-out request never left this process: nothing was proved")
    started = time.monotonic()
    details = await asyncio.wait_for(ib.reqContractDetailsAsync(ctx.instrument), timeout)
    if not details or not ib.isConnected():
        raise ProbeFailure("the request after the timeout failed: connection not usable")
    return f"timeout caught; next request answered in {(time.monotonic() - started) * 1000:.1f} ms"


async def probe_rate(ctx: ProbeContext) -> str:
    """A historical request, then 20 snapshot requests paced under the message limit.

    Pacing errors (100, 162) seen meanwhile trigger the governor's back-off; the probe passes when
    every request completed with data and the connection is still up.
    """
    ib, gov, timeout = ctx.ib, ctx.governor, ctx.config.gateway.request_timeout + 12
    errors_before = dict(gov.errors_seen)

    async def snapshot() -> bool:
        ticker = (
            await gov.request(
                lambda: ib.reqTickersAsync(ctx.instrument),
                timeout=timeout,
                failed=lambda ts: not ts or not _has_quote(ts[0]),
            )
        )[0]
        return _has_quote(ticker)

    no_data: list[str] = []  # 162 "HMDS query returned no data": an empty window, not pacing

    def on_error(req_id: int, code: int, message: str, contract: object = None) -> None:
        if code == 162 and not is_pacing_error(code, message):
            no_data.append(message)

    await gov.historical.acquire(historical_key(ctx.instrument.conId, "1800 S", "1 min", "MIDPOINT"),
                                 ctx.instrument.conId)
    ib.errorEvent += on_error
    try:
        bars = await gov.request(
            lambda: ib.reqHistoricalDataAsync(ctx.instrument, "", "1800 S", "1 min", "MIDPOINT", False, 1),
            timeout=timeout,
            failed=lambda b: not b,
        )
    finally:
        ib.errorEvent -= on_error
    started = time.monotonic()
    results = await asyncio.gather(*(snapshot() for _ in range(BURST_SIZE)))
    burst = time.monotonic() - started
    pacing = {code: gov.errors_seen[code] - errors_before[code] for code in gov.errors_seen}
    if not all(results):
        raise ProbeFailure(f"{results.count(False)} of {BURST_SIZE} snapshots came back without a quote")
    if not bars and not no_data:
        raise ProbeFailure("historical request returned no bars after pacing back-off")
    if not ib.isConnected():
        raise ProbeFailure("connection lost during the paced burst")
    extra = f"; pacing errors {pacing}, recovered" if any(pacing.values()) else ", no pacing error"
    history = f"{len(bars)} bars" if bars else "no bars (162 no data: the last 30 minutes hold no bar)"
    return f"{BURST_SIZE} snapshots in {burst:.2f} s and {history}{extra}"


async def probe_error_recovery(ctx: ProbeContext) -> str:
    """An unknown symbol is reported not found (200); valid requests still work afterwards."""
    ib, timeout = ctx.ib, ctx.config.gateway.request_timeout
    codes: list[int] = []

    def on_error(req_id: int, code: int, message: str, contract: object = None) -> None:
        codes.append(code)

    ib.errorEvent += on_error
    try:
        details = await asyncio.wait_for(
            ib.reqContractDetailsAsync(Stock(INVALID_SYMBOL, "SMART", "USD")), timeout
        )
    finally:
        ib.errorEvent -= on_error
    if details:
        raise ProbeFailure(f"{INVALID_SYMBOL} unexpectedly resolved to {details[0].contract}")
    if NOT_FOUND not in codes:
        raise ProbeFailure(f"expected error 200 for {INVALID_SYMBOL}, got {codes or 'no error'}")
    valid = await asyncio.wait_for(ib.reqContractDetailsAsync(ctx.instrument), timeout)
    if not valid:
        raise ProbeFailure("a valid request failed after the not-found error")
    return f"{INVALID_SYMBOL}: not found (200); {ctx.instrument.symbol} still resolves"


def _has_quote(ticker: object) -> bool:
    bid, ask, last = (getattr(ticker, name, math.nan) for name in ("bid", "ask", "last"))
    return any(isinstance(v, float) and math.isfinite(v) and v > 0 for v in (bid, ask, last))
