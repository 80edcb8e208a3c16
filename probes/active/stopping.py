"""Stopping a command that sends orders: the first SIGTERM/SIGINT unwinds, a second stops at once.

Why one module: ``gatewatch probe run`` and ``gatewatch flatten`` both send paper orders, and a
stop must never leave one behind. Both run their work through :func:`run_until_signalled`: the
first signal sets the work's ``stop`` event (the work then cancels what is in flight with
:func:`cancel_on_stop` and settles its orders, bounded), a second signal cancels the whole run
(nothing more is sent; the journal already holds every order sent, and the next start's recovery
settles it). Either way the command exits with ``128 + signum`` (130 for SIGINT, 143 for SIGTERM),
the shell's convention for a job cut short by a signal.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from loguru import logger

T = TypeVar("T")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class StopRequest:
    """Which signal stopped the run (None: none did) and whether a second one cut the unwind short."""

    signal: signal.Signals | None = None
    forced: bool = False

    @property
    def exit_status(self) -> int:
        """``128 + signum`` once a signal arrived, else 0."""
        return 128 + int(self.signal) if self.signal is not None else 0


def run_until_signalled(
    work: Callable[[asyncio.Event], Awaitable[T]], *, unwinding: str, bound: float
) -> tuple[T | None, StopRequest]:
    """Run ``work(stop)`` in a fresh event loop with SIGTERM/SIGINT handled; returns its result and the stop.

    The first signal logs what the unwind does (``unwinding``, at most ``bound`` seconds) and sets
    ``stop``; ``work`` is expected to return soon after. A second signal cancels the run: the result
    is then None and ``StopRequest.forced`` is set.
    """
    request = StopRequest()

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        stop = asyncio.Event()

        def on_signal(sig: signal.Signals) -> None:
            if request.signal is None:
                request.signal = sig
                logger.warning("{} received: {} (at most {:g} s); send it again to stop at once",
                               sig.name, unwinding, bound)
                stop.set()
            elif task is not None:
                logger.warning("{} received again: stopping at once", sig.name)
                request.forced = True
                task.cancel()

        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            return await work(stop)
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(main()), request
    except asyncio.CancelledError:
        if not request.forced:
            raise
        return None, request


async def cancel_on_stop(work: Awaitable[T], stop: asyncio.Event | None) -> asyncio.Future[T] | None:
    """Run ``work`` until it ends or ``stop`` is set; the finished future, or None when stopped.

    On a stop the work is cancelled and its own clean-up (``finally`` blocks) awaited, so nothing it
    started runs on unseen; it sends nothing more. If the caller is cancelled (a second signal), also
    while that clean-up is awaited, the work is cancelled too and the caller's cancellation goes on:
    a second signal is never absorbed by the first one's unwind.
    """
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        await asyncio.wait({task} | ({stopper} if stopper else set()), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if stopper is not None:
            stopper.cancel()
        if not task.done():
            task.cancel()
    if task.cancelled() or not task.done():
        await _unwound(task)
        return None
    return task


async def _unwound(task: asyncio.Future[T]) -> None:
    """Await a cancelled ``task``'s clean-up, whatever it ends with, but not past our own cancellation."""
    me = asyncio.current_task()
    try:
        await task
    except asyncio.CancelledError:
        if me is not None and me.cancelling():  # cancelled ourselves (a second signal), not just the work
            raise
    except Exception:  # the work's failure while unwinding: the stop is what is reported
        return
