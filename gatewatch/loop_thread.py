"""An asyncio service on an event loop of its own, in a daemon thread, for synchronous callers.

Why one module: the simulator and the proxy are both driven this way by synchronous tests and
benches, and the start-up handshake (wait until the service listens, re-raise its start-up error
in the caller, stop it on the loop that owns it) is easy to get subtly wrong twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
#: How long start-up, a call and the shutdown may take before the caller stops waiting.
TIMEOUT = 10.0
START_TIMEOUT = 30.0


@contextlib.contextmanager
def loop_thread(
    start: Callable[[], Awaitable[Any]], stop: Callable[[], Awaitable[Any]], *, name: str
) -> Iterator[asyncio.AbstractEventLoop]:
    """Run ``await start()`` on a new loop in a thread, yield the loop, ``await stop()`` on exit.

    ``start`` runs on the new loop (objects bound to a loop are created there); an exception it
    raises is raised here, in the caller, and the loop is closed.
    """
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, BaseException] = {}

    def main() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            try:
                await start()
            except BaseException as exc:
                box["error"] = exc
            finally:
                ready.set()

        loop.run_until_complete(boot())
        if "error" not in box:
            loop.run_forever()
        _finish_leftovers(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=main, name=name, daemon=True)
    thread.start()
    ready.wait(START_TIMEOUT)
    if "error" in box:
        raise box["error"]
    try:
        yield loop
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_awaited(stop), loop).result(TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)


def _finish_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still pending after ``stop`` and let it unwind, as ``asyncio.run`` does.

    ``stop`` ends what the service knows of; a task it cannot know of yet (a connection the loop
    accepted as the listener closed, handed to the service a step later) would otherwise be
    destroyed while pending when the loop is closed, its ``finally`` never run.
    """
    leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        loop.run_until_complete(asyncio.wait(leftovers, timeout=TIMEOUT))


async def _awaited(fn: Callable[[], Awaitable[Any]]) -> Any:
    return await fn()


def call_in_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on ``loop`` (the service's state is touched by its own thread only)."""

    async def run() -> T:
        return fn(*args)

    return asyncio.run_coroutine_threadsafe(run(), loop).result(TIMEOUT)
