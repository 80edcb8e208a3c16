"""A stop (what SIGTERM does: cancel the exporter's main task) is never lost, whenever it comes."""

from __future__ import annotations

import asyncio

from support.exporter import fast_config

from exporter.app import ExporterApp
from gatewatch.localstack.net import free_port


async def test_a_stop_at_any_step_of_the_first_connection_attempts_ends_everything() -> None:
    """Nothing listens on the Gateway's port, so each attempt is refused within a few loop steps;
    the stop is swept across those steps. On Python 3.11 ``asyncio.wait_for`` hands back the
    attempt's own outcome when a cancellation lands in the step it finishes in: the exporter then
    ran on after a SIGTERM, or its reconnect loop kept the shutdown waiting for ever."""
    config = fast_config(free_port())
    for steps in range(40):
        app = ExporterApp(config)
        task = asyncio.create_task(app.run())
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        for t in [task, *left]:  # do not leave a runaway loop to the next round
            t.cancel()
        app.session.close()
        assert done, f"the exporter ran on after a stop {steps} loop steps into its start"
        assert not left, f"a stop {steps} loop steps into the start left tasks running: {left}"
