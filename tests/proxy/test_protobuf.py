"""Server versions above 200: message ids become 4-byte integers and ids above 200 carry protobuf.

The simulator speaks 178 at most, so a scripted Gateway plays the newer side here: the proxy must
relay every byte unchanged, decode the text messages it can and count the protobuf ones.
"""

from __future__ import annotations

import socket
import struct
import threading

from proxyhelpers import frame, wait_until
from test_observe import scrape, value

from proxy.testing import running_proxy_app


def raw(msg_id: int, body: bytes) -> bytes:
    payload = struct.pack(">I", msg_id) + body
    return struct.pack(">I", len(payload)) + payload


def read_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def test_protobuf_frames_are_relayed_byte_exact_and_counted() -> None:
    hello = frame(["201", "20260101 09:30:00 EST"])
    to_bot = (
        raw(15, b"1\0DU1234567\0")  # managedAccounts, text after the integer id
        + raw(9, b"1\0" + b"42\0")  # nextValidId
        + raw(204, bytes(range(256)))  # a protobuf message: opaque bytes, NULs included
        + raw(4, b"-1\x002104\0Market data farm connection is OK:usfarm\0\0" + b"1767000000000\0")
    )
    start_api = raw(71, b"2\x007\0\0")
    order = raw(203, b"\x08\x2a\x12\x03SPY")  # a protobuf placeOrder
    opening = b"API\0" + struct.pack(">I", 9) + b"v100..201"
    got: dict[str, bytes] = {}
    server = socket.create_server(("127.0.0.1", 0))

    def gateway() -> None:
        conn, _ = server.accept()
        conn.settimeout(5)
        got["opening"] = read_exact(conn, len(opening))
        conn.sendall(hello)
        got["start_api"] = read_exact(conn, len(start_api))
        conn.sendall(to_bot)
        got["order"] = read_exact(conn, len(order))
        conn.close()

    threading.Thread(target=gateway, daemon=True).start()
    with running_proxy_app(server.getsockname()[1]) as app:
        bot = socket.create_connection(("127.0.0.1", app.port), timeout=5)
        bot.sendall(opening)
        assert read_exact(bot, len(hello)) == hello
        bot.sendall(start_api + order)  # an order before the Gateway named its accounts: refused
        (size,) = struct.unpack(">I", read_exact(bot, 4))
        refusal = read_exact(bot, size)
        assert refusal[:4] == struct.pack(">I", 4) and b"\x00201\x00" in refusal and b"account_unknown" in refusal
        assert read_exact(bot, len(to_bot)) == to_bot  # unchanged, in order
        bot.sendall(order)  # accounts known (paper), paper port: this one goes through
        assert wait_until(lambda: "order" in got)
        assert got == {"opening": opening, "start_api": start_api, "order": order}
        m = scrape(app.metrics_port)
        assert value(m, "gatewatch_bot_server_version", client_id="7") == 201
        assert value(m, "gatewatch_proxy_frames_undecoded_total", direction="to_bot", reason="protobuf") == 1
        assert value(m, "gatewatch_proxy_frames_undecoded_total", direction="to_gateway", reason="protobuf") == 1
        assert value(m, "gatewatch_bot_errors_total", code="2104", client_id="7") == 1  # text decoded at 201 too
        assert value(m, "gatewatch_bot_orders_refused_total", reason="account_unknown") == 1
        bot.close()
    server.close()
