"""Never silent: every request message id the TWS API defines gets an answer or an error (issue 13).

The ids come from IBKR's own client (``ibapi.message.OUT``), not from the simulator, so a request
the simulator forgot cannot hide. Requests go over a raw socket (no client library code involved),
one at a time, each waiting for the first message that answers it; ids a real Gateway never answers
(cancels, settings) are listed with their reason in ``simulator/requests.py`` and checked to be only
such. Answers are judged by message type, so a stray tick from an earlier line does not count.
"""

from __future__ import annotations

import socket
import time

import pytest
from support.sim import frame, raw_hello, read_msg

from simulator.requests import REFUSED, SILENT
from simulator.testing import SimHandle

message = pytest.importorskip("ibapi.message")

ACCT = "DU1234567"
SPY = ["756733", "SPY", "STK", "", "0", "", "", "SMART", "ARCA", "USD", "SPY", "SPY"]  # C12
#: Message types that keep arriving from streams opened by earlier requests; never an answer to
#: a later one unless listed as its answer.
STREAM_TYPES = {"1", "2", "45", "46", "58", "81", "50", "90", "94", "95", "99", "6", "7", "8", "73", "61", "63"}
#: Requests in the ib_async layout at server version 178 (client.py), where a generic body would
#: not be a valid request; every other id gets the generic body below (refusals ignore the body).
BODIES: dict[int, list[str]] = {
    1: ["11", "9001", *SPY, "0", "", "1", "0", ""],
    3: ["9003", *SPY, "", "", "BUY", "1", "LMT", "1.01", ""],
    4: ["1", "9004", ""],
    6: ["2", "1", ACCT],
    7: ["3", "9007", "0", "", "", "", "", "", ""],
    9: ["8", "9009", *SPY, "0", "", "", ""],
    20: ["9020", *SPY, "0", "", "1 day", "5 D", "1", "TRADES", "1", "0", ""],
    50: ["3", "9050", *SPY, "5", "MIDPOINT", "0", ""],
    62: ["1", "9062", "All", "NetLiquidation"],
    76: ["1", "9076", ACCT, "", "0"],
    78: ["9078", "SPY", "", "STK", "756733"],
    81: ["9081", "SP"],
    87: ["9087", *SPY, "0", "1", "TRADES", "1"],
    91: ["26"],
    92: ["9092", ACCT, ""],
    94: ["9094", ACCT, "", "756733"],
    96: ["9096", *SPY, "0", "", "20261130 15:00:00 US/Eastern", "10", "TRADES", "1", "0", ""],
    97: ["9097", *SPY, "BidAsk", "0", "0"],
    99: ["0"],
    104: ["9104"],
}
GENERIC = ["1", "9000", *SPY, "", "", "", ""]
#: What answers a request whose reply carries no request id; None: any non-stream message.
ANSWER_TYPES: dict[int, set[str]] = {
    1: {"81", "58", "1", "57"},
    5: {"53"},
    8: {"9"},
    16: {"53"},
    17: {"15"},
    24: {"19"},
    49: {"49"},
    50: {"50"},
    61: {"62", "61"},
    62: {"63", "64"},
    76: {"73", "74"},
    6: {"6", "7", "8", "54"},
    85: {"85"},
    91: {"93"},
    92: {"94"},
    94: {"95"},
    97: {"99"},
    99: {"102", "101"},
}
BOUND = 2.0  # seconds within which an answer must come (a 5-second real-time bar gets 6)


def _answer(s: socket.socket, msg_id: int, bound: float) -> list[str]:
    deadline = time.monotonic() + bound
    want = ANSWER_TYPES.get(msg_id)
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            msg = read_msg(s)
        except TimeoutError:
            break
        if want is not None and msg[0] in want:
            return msg
        if msg[0] == "4" or (want is None and msg[0] not in STREAM_TYPES):
            return msg
    raise AssertionError(f"request id {msg_id} got no answer within {bound}s")


def test_every_request_id_is_handled_refused_or_documented_silent() -> None:
    """The three lists cover IBKR's whole request catalogue, and only cancels/settings are silent."""
    defined = {int(m) for m in message.OUT}
    handled = set(_handler_ids())
    assert defined <= handled | set(REFUSED) | set(SILENT), sorted(defined - handled - set(REFUSED) - set(SILENT))
    assert not set(REFUSED) & handled
    names = {int(m): m.name for m in message.OUT}
    for mid in SILENT:
        assert mid in (2, 25) or not (mid in handled and ANSWER_TYPES.get(mid)), mid
        assert names[mid].startswith(("CANCEL", "UNSUBSCRIBE")) or mid in (12, 15, 59, 71), names[mid]


def _handler_ids() -> list[int]:
    from simulator.testing import running_simulator

    with running_simulator(port=0, control_port=None) as sim:
        return list(sim.sim.handlers.table)


def _ready(port: int, client_id: int) -> socket.socket:
    """Hello, startApi, and the sync burst read up to the last farm notice."""
    s = raw_hello(port, client_id=client_id)
    assert read_msg(s)[0] == "178"
    while read_msg(s)[3:4] != ["2158"]:
        pass
    return s


def test_no_request_left_without_an_answer_at_178(sim: SimHandle) -> None:
    s = _ready(sim.port, 7)
    ids = sorted(int(m) for m in message.OUT if int(m) not in SILENT and int(m) != 71)
    unanswered = []
    # the real-time bar comes at the next 5-second boundary: ask first, collect last
    for mid in [i for i in ids if i != 50] + [50]:
        s.sendall(frame([str(mid), *BODIES.get(mid, GENERIC)]))
        try:
            _answer(s, mid, 6.0 if mid == 50 else BOUND)
        except AssertionError:
            unanswered.append(mid)
    assert unanswered == []
    s.close()


def test_unknown_cancel_ids_get_the_gateways_errors(sim: SimHandle) -> None:
    s = _ready(sim.port, 8)
    s.sendall(frame(["2", "2", "4242"]))
    assert _answer(s, 2, BOUND)[2:4] == ["4242", "300"]
    s.sendall(frame(["25", "1", "4343"]))
    assert _answer(s, 25, BOUND)[2:4] == ["4343", "366"]
    s.sendall(frame(["999", "1"]))
    assert _answer(s, 999, BOUND)[3] == "321"
    s.close()


def _proto_answer(s: socket.socket, msg_id: int, bound: float) -> tuple[int, bytes]:
    """The first frame answering a protobuf request (ids above 200 are protobuf messages)."""
    deadline = time.monotonic() + bound
    want = ANSWER_TYPES.get(msg_id)
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            head = s.recv(4, socket.MSG_WAITALL)
            if len(head) < 4:
                break
            body = s.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL)
        except TimeoutError:
            break
        mid = int.from_bytes(body[:4], "big")
        kind = str(mid - 200 if mid > 200 else mid)
        if (want is not None and kind in want) or kind == "4" or (want is None and kind not in STREAM_TYPES):
            return mid, body[4:]
    raise AssertionError(f"request id {msg_id} got no answer within {bound}s")


def test_no_request_left_without_an_answer_at_the_highest_version() -> None:
    """Server version 226 (the highest served, by default): every request id IBKR defines, as the protobuf
    message IBKR's client sends at that version (an empty one where defaults are a valid request),
    gets an answer or an error."""
    pytest.importorskip("ibapi.protobuf")
    from ibapi.protobuf.AccountDataRequest_pb2 import AccountDataRequest
    from ibapi.protobuf.IdsRequest_pb2 import IdsRequest
    from ibapi.protobuf.PlaceOrderRequest_pb2 import PlaceOrderRequest
    from ibapi.protobuf.StartApiRequest_pb2 import StartApiRequest

    from simulator.testing import running_simulator

    def send(s: socket.socket, mid: int, payload: bytes) -> None:
        body = (mid + 200).to_bytes(4, "big") + payload
        s.sendall(len(body).to_bytes(4, "big") + body)

    with running_simulator(port=0, control_port=None) as sim:  # the default: the highest served
        s = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
        s.sendall(b"API\0" + len(b"v100..226").to_bytes(4, "big") + b"v100..226")
        assert read_msg(s)[0] == "226"
        send(s, 71, StartApiRequest(clientId=9).SerializeToString())
        send(s, 8, IdsRequest(numIds=1).SerializeToString())
        seen = [_proto_answer(s, 0, BOUND)[0] for _ in range(6)]  # the sync burst, then nextValidId
        assert seen[:2] == [215, 209] and seen[-1] == 209
        resting = PlaceOrderRequest(orderId=9003)  # a resting buy, so that the global cancel has work
        resting.contract.conId, resting.contract.exchange = 756733, "SMART"
        resting.order.action, resting.order.totalQuantity, resting.order.orderType = "BUY", "1", "LMT"
        resting.order.lmtPrice, resting.order.transmit = 1.01, True
        bodies = {
            6: AccountDataRequest(subscribe=True, acctCode=ACCT).SerializeToString(),
            3: resting.SerializeToString(),
        }
        unanswered = []
        for mid in sorted(int(m) for m in message.OUT if int(m) not in SILENT and int(m) not in (71, 50)):
            send(s, mid, bodies.get(mid, b""))
            try:
                _proto_answer(s, mid, BOUND)
            except AssertionError:
                unanswered.append(mid)
        assert unanswered == []
        s.close()
