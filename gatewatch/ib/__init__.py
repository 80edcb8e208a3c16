"""Facts about IB Gateway that several parts of gatewatch need, each written once.

- :mod:`gatewatch.ib.account`: which managed account is "the" account.
- :mod:`gatewatch.ib.connect`: client ids of gatewatch's own clients, and connecting one.
- :mod:`gatewatch.ib.clock`: the host-minus-IB clock interval from whole-second time samples.
- :mod:`gatewatch.ib.ntp`: whether the host itself says its clock is NTP-synchronised.
- :mod:`gatewatch.ib.hours`: the market hours the Gateway publishes for the watched contract.

The paper rule (may orders go to this Gateway?) is :func:`probes.active.guard.paper_verdict`.
"""
