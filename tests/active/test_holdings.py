"""The reconciliation rule: reduce only what the journal and the Gateway agree the probes hold."""

from __future__ import annotations

import pytest

from probes.active.holdings import Holding, reconcile

CASES = [
    # journal, gateway -> agrees, reducible, repair buy, write-off
    (1, 1, True, 1, 0, 0),
    (1, 3, True, 1, 0, 0),  # the bot holds 2 more: the probes still reduce only their 1
    (0, -1, True, 0, 0, 0),  # not the probes' position: nothing to do
    (1, 0, False, 0, 0, 1),  # the Gateway lost the probes' share: never sell it
    (1, -1, False, 0, 0, 1),  # the case: never sell into a short
    (2, 1, False, 0, 0, 2),  # part lost: the 1 left may be the bot's, touch nothing
    (-1, -1, False, 0, 1, 0),  # a short the probes' sells made: buy it back
    (-2, -1, False, 0, 1, -1),  # buy back what the Gateway shows, write off the rest
    (-1, -3, False, 0, 1, 0),  # the bot is short too: buy back only the probes' 1
    (-1, 0, False, 0, 0, -1),
]


@pytest.mark.parametrize(("journal", "gateway", "agrees", "reducible", "repair", "write_off"), CASES)
def test_holding_table(journal, gateway, agrees, reducible, repair, write_off):
    h = Holding(7, journal, gateway)
    assert (h.agrees, h.reducible, h.repair_order, h.write_off) == (agrees, reducible, repair, write_off)


def test_reconcile_covers_only_contracts_the_journal_holds():
    assert reconcile({7: 1.0}, {7: 1.0, 8: 5.0}) == {7: Holding(7, 1.0, 1.0)}
