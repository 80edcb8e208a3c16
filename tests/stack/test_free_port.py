"""Ports the local stack hands its children lie outside the kernel's ephemeral range.

Why it matters: a port from ``bind(0)`` is one outgoing connections also use as their local port,
so a child told to listen there could find it taken by the stack's own dialling (seen as the proxy
of a rehearsal failing with "address already in use").
"""

from __future__ import annotations

import random
import socket

from gatewatch.localstack import net


def test_free_ports_lie_below_the_ephemeral_range_and_are_bindable() -> None:
    low = net._ephemeral_low()
    assert low is not None, "this machine publishes its ephemeral port range"
    ports = {net.free_port() for _ in range(50)}
    assert all(net.LOWEST_PICKED_PORT <= port < low for port in ports), sorted(ports)
    assert len(ports) > 40, "the choice is spread, so parallel starters rarely meet"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))


def test_a_held_port_is_passed_over(monkeypatch) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        held = holder.getsockname()[1]
        draws: list[int] = []

        class Chooser:
            """The held port drawn first, twice; then any port: free_port must look past the held one."""

            def randrange(self, start: int, stop: int) -> int:
                port = held if len(draws) < 2 else random.SystemRandom().randrange(start, stop)
                draws.append(port)
                return port

        monkeypatch.setattr(net, "_CHOOSER", Chooser())
        monkeypatch.setattr(net, "_ephemeral_low", lambda: 65_000)
        port = net.free_port()
        assert port != held and draws[:2] == [held, held] and len(draws) >= 3


def test_ports_chosen_for_one_stack_are_distinct(monkeypatch) -> None:
    """Two choices that fall on one port (both free: nothing is bound yet) must not both be handed out."""
    draws = iter([20_001, 20_001, 20_002, 20_001, 20_003])

    class Chooser:
        def randrange(self, start: int, stop: int) -> int:
            return next(draws)

    monkeypatch.setattr(net, "_CHOOSER", Chooser())
    monkeypatch.setattr(net, "_ephemeral_low", lambda: 65_000)
    monkeypatch.setattr(net, "port_in_use", lambda host, port: False)
    assert net.free_ports(3) == [20_001, 20_002, 20_003]
