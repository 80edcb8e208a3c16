"""cancel_on_stop: a stop unwinds the work; a second stop (the caller cancelled) is never absorbed.

Event-driven (no sleeps): each step waits for the work to reach the point the test names.
"""

from __future__ import annotations

import asyncio

import pytest

from probes.active.stopping import cancel_on_stop


class Work:
    """Runs until cancelled, then unwinds until ``release`` is set (a cancel awaiting its confirmation)."""

    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.unwinding = asyncio.Event()
        self.release = asyncio.Event()
        self.unwound = False

    async def __call__(self) -> str:
        try:
            self.running.set()
            await asyncio.Event().wait()
            return "finished"
        finally:
            self.unwinding.set()
            await self.release.wait()
            self.unwound = True


def test_a_stop_cancels_the_work_and_awaits_its_unwind() -> None:
    async def main() -> None:
        work, stop = Work(), asyncio.Event()
        caller = asyncio.ensure_future(cancel_on_stop(work(), stop))
        await work.running.wait()
        stop.set()
        await work.unwinding.wait()
        assert not caller.done(), "returned before the work's unwind ended"
        work.release.set()
        assert await caller is None
        assert work.unwound

    asyncio.run(main())


def test_a_second_stop_during_the_unwind_is_not_absorbed() -> None:
    async def main() -> None:
        work, stop = Work(), asyncio.Event()
        caller = asyncio.ensure_future(cancel_on_stop(work(), stop))
        await work.running.wait()
        stop.set()  # the first signal
        await work.unwinding.wait()
        caller.cancel()  # the second, while the work unwinds
        with pytest.raises(asyncio.CancelledError):
            await caller
        assert not work.unwound  # the second signal did not wait for the unwind

    asyncio.run(main())


def test_work_that_ends_first_is_returned() -> None:
    async def main() -> None:
        async def quick() -> str:
            return "done"

        finished = await cancel_on_stop(quick(), asyncio.Event())
        assert finished is not None and finished.result() == "done"

    asyncio.run(main())
