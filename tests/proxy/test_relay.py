"""The relay is transparent: what the bot sends reaches the Gateway byte for byte, and back.

Two recording taps sit on either side of the proxy (bot -> tap -> proxy -> tap -> simulator); after
a real ib_async / ib_insync session the bytes each tap saw must be identical.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock
from proxyhelpers import Tap, frame, tap, wait_until

from proxy.testing import running_proxy
from simulator.testing import SimHandle


async def _bot_session(port: int, client_id: int) -> tuple[int, list[str], str]:
    """A bot's typical session: qualify, quotes, history, an order to a fill, a cancel."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=5)
    try:
        [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        ticker = ib.reqMktData(spy)
        for _ in range(100):
            if ticker.bid == ticker.bid and ticker.bid:  # not NaN
                break
            await asyncio.sleep(0.02)
        bars = await ib.reqHistoricalDataAsync(spy, "", "1 D", "1 hour", "TRADES", True)
        trade = ib.placeOrder(spy, MarketOrder("BUY", 1))
        for _ in range(150):
            if trade.orderStatus.status == "Filled":
                break
            await asyncio.sleep(0.02)
        resting = ib.placeOrder(spy, LimitOrder("BUY", 1, 1.0))
        await asyncio.sleep(0.2)
        ib.cancelOrder(resting.order)
        await asyncio.sleep(0.3)
        ib.cancelMktData(spy)
        return ib.client.serverVersion(), ib.managedAccounts(), f"{len(bars)} {trade.orderStatus.status}"
    finally:
        ib.disconnect()


def _assert_same_streams(near: Tap, far: Tap) -> None:
    """Everything the bot sent reached the Gateway unchanged; everything the bot got came from it unchanged.

    Gateway bytes still in flight when the bot hung up cannot reach it (the bot is gone), so the bot's
    side of the down stream is a prefix of the Gateway's, not necessarily all of it.
    """
    assert wait_until(lambda: near.closed == 2 and far.closed == 2)
    assert len(near.up) == len(far.up) == 1
    assert bytes(near.up[0]) == bytes(far.up[0]) and near.up[0].startswith(b"API\0")
    got, sent = bytes(near.down[0]), bytes(far.down[0])
    assert len(got) > 1000 and sent[: len(got)] == got


async def test_ib_async_session_is_byte_identical_through_the_proxy(sim: SimHandle) -> None:
    with tap(sim.port) as far, running_proxy(far.port) as proxy, tap(proxy.port) as near:
        version, accounts, outcome = await _bot_session(near.port, 7)
        assert (version, accounts) == (178, ["DU1234567"])
        assert outcome.endswith("Filled")
        _assert_same_streams(near, far)
    # and the same session connected directly answers the same way
    assert await _bot_session(sim.port, 8) == (version, accounts, outcome)


async def test_ib_insync_negotiates_its_own_version_through_the_proxy(sim: SimHandle) -> None:
    ib_insync = pytest.importorskip("ib_insync")
    with tap(sim.port) as far, running_proxy(far.port) as proxy, tap(proxy.port) as near:
        ib = ib_insync.IB()
        await ib.connectAsync("127.0.0.1", near.port, clientId=21, timeout=5)
        try:
            assert ib.client.serverVersion() == 176
            [c] = await ib.qualifyContractsAsync(ib_insync.Stock("SPY", "SMART", "USD"))
            trade = ib.placeOrder(c, ib_insync.MarketOrder("BUY", 2))
            for _ in range(150):
                if trade.orderStatus.status == "Filled":
                    break
                await asyncio.sleep(0.02)
            assert trade.orderStatus.status == "Filled"
        finally:
            ib.disconnect()
        _assert_same_streams(near, far)


def _closed_by_peer(s: socket.socket, timeout: float = 3) -> bool:
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def test_hostile_bots_are_relayed_as_sent_and_hurt_no_one(sim: SimHandle) -> None:
    with tap(sim.port) as far, running_proxy(far.port) as proxy:
        bystander = IB()
        await bystander.connectAsync("127.0.0.1", proxy.port, clientId=50, timeout=5)
        sends = [
            b"GET / HTTP/1.1\r\n\r\n",  # not the API at all
            b"API\0" + struct.pack(">I", 0x7FFFFFFF) + b"xyz",  # a frame beyond any limit
            b"API\0" + frame(["hello"]),  # garbage version string
        ]
        for data in sends:
            s = socket.create_connection(("127.0.0.1", proxy.port))
            s.sendall(data)
            assert _closed_by_peer(s), data  # the simulator closes, the proxy passes that on
            s.close()
        for data in (b"API\0\0\0", b"API\0" + frame(["v157..178"]) + struct.pack(">I", 100) + b"49\0"):
            s = socket.create_connection(("127.0.0.1", proxy.port))
            s.sendall(data)  # then vanish mid-message
            s.close()
        assert wait_until(lambda: len(far.up) == 1 + len(sends) + 2 and far.closed >= 2 * (len(sends) + 2))
        for data, seen in zip(sends, far.up[1:], strict=False):
            assert bytes(seen) == data  # relayed byte-exact, even what cannot be framed
        assert bytes(far.up[-1]).endswith(struct.pack(">I", 100) + b"49\0")  # the truncated frame too
        assert bystander.isConnected()
        assert await asyncio.wait_for(bystander.reqPositionsAsync(), 3) == []
        bystander.disconnect()


async def test_either_side_closing_closes_the_other(sim: SimHandle) -> None:
    with running_proxy(sim.port) as proxy:
        ib = IB()
        await ib.connectAsync("127.0.0.1", proxy.port, clientId=3, timeout=5)
        sim.inject({"fault": "drop"})
        for _ in range(100):
            if not ib.isConnected():
                break
            await asyncio.sleep(0.03)
        assert not ib.isConnected()
        assert wait_until(lambda: not proxy.relay.connections)
        ib2 = IB()
        await ib2.connectAsync("127.0.0.1", proxy.port, clientId=4, timeout=5)
        assert len(proxy.relay.connections) == 1
        ib2.disconnect()
        assert wait_until(lambda: not proxy.relay.connections)


def test_a_bot_that_stops_reading_slows_the_gateway_instead_of_filling_memory() -> None:
    """Back-pressure: with a bot that does not read, the upstream's sends block after a bounded amount."""
    payload = frame(["1", "6", "9", "1", "450.25", "100", "0"]) * 2000  # ~60 kB of tick frames
    total = 1500  # ~90 MB if nothing pushed back
    sent = {"bytes": 0}
    server = socket.create_server(("127.0.0.1", 0))

    def blast() -> None:
        conn, _ = server.accept()
        conn.settimeout(20)
        try:
            conn.recv(100)
            for _ in range(total):
                conn.sendall(payload)
                sent["bytes"] += len(payload)
        except OSError:
            pass
        finally:
            conn.close()

    threading.Thread(target=blast, daemon=True).start()
    with running_proxy(server.getsockname()[1]) as proxy:
        bot = socket.create_connection(("127.0.0.1", proxy.port))
        bot.sendall(b"API\0" + frame(["v157..178"]))
        wait_until(lambda: sent["bytes"] > 0)
        time.sleep(1.0)
        held = sent["bytes"]
        assert held < 40 * 2**20, held  # socket buffers, not the proxy's memory
        received = 0
        bot.settimeout(10)
        while received < total * len(payload):
            chunk = bot.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
        assert received == total * len(payload)
        bot.close()
    server.close()
