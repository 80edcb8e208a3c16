"""SIGKILL the exporter in the middle of an active probe: the restarted exporter cleans up and carries on.

The kill is timed by the broker's own books: the exporter dies the moment the simulator holds a
working (resting) probe order, i.e. mid-probe, with no chance to cancel it.
"""

from __future__ import annotations

import time
from pathlib import Path

from gatewatch.localstack.process import REPO_ROOT
from gatewatch.rehearsal.checks import open_probe_orders, probe_positions
from gatewatch.rehearsal.observe import scrape
from gatewatch.rehearsal.runner import Rehearsal, RehearsalOptions
from probes.active.journal import Journal


def _wait_for(predicate, timeout: float, period: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(period)
    return None


def test_sigkill_mid_probe_then_restart_recovers_and_carries_on(tmp_path: Path) -> None:
    options = RehearsalOptions(duration=40.0, scenario=REPO_ROOT / "scenarios" / "calm.yaml", out_dir=tmp_path,
                               use_prometheus=False)
    with Rehearsal(options) as rehearsal:
        rehearsal.start()
        prefix = rehearsal.order_ref_prefix

        def working_probe_order() -> list[dict]:  # type: ignore[type-arg]
            return open_probe_orders(rehearsal.sim_state(), prefix)

        caught = _wait_for(working_probe_order, timeout=60, period=0.02)
        assert caught, "no probe order was ever working at the broker"
        rehearsal.kill_exporter()
        leftover_refs = {o["orderRef"] for o in caught}
        state = rehearsal.sim_state()
        still_open = {o["orderRef"] for o in open_probe_orders(state, prefix)}
        journal = Journal(rehearsal.journal_path)
        open_in_journal = {o.order_ref for o in journal.open_orders()}
        journal.close()
        assert still_open & leftover_refs or probe_positions(state, prefix), \
            "the kill came too late: nothing was left behind to recover"
        assert open_in_journal, "the journal shows no open order although the exporter died mid-probe"

        killed_at = time.time()
        rehearsal.restart_exporter()

        def books_clean() -> bool:
            s = rehearsal.sim_state()
            refs = {o["orderRef"] for o in open_probe_orders(s, prefix)}
            return not (refs & leftover_refs) and not probe_positions(s, prefix)

        assert _wait_for(books_clean, timeout=60, period=0.5), "leftovers were not cleaned up after restart"
        journal = Journal(rehearsal.journal_path)
        recovered = {o.order_ref: o.status for o in journal.all_orders() if o.order_ref in open_in_journal}
        journal.close()
        assert recovered and all(status not in ("Intent", "Submitted", "PreSubmitted", "PendingSubmit")
                                 for status in recovered.values()), recovered

        def active_success_after_restart() -> bool:
            m = scrape(rehearsal.metrics_url)
            last = max((v for (name, labels), v in m.values.items()
                        if name == "gatewatch_probe_last_run_timestamp_seconds" and ("kind", "active") in labels),
                       default=0.0)
            return m.total("gatewatch_probe_runs_total", kind="active", result="success") > 0 and last > killed_at

        assert _wait_for(active_success_after_restart, timeout=60, period=0.5), \
            "the restarted exporter did not carry on running the active probes"
        assert rehearsal.exporter is not None and rehearsal.exporter.alive()
