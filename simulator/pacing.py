"""The Gateway's message-rate rule for one client connection, on a clock the caller passes in.

IBKR: at most 50 messages a second from a client (100 market data lines / 2). A Gateway set to
reject answers error 100 and ends the session at the third violation; a client that connects with
``+PACEAPI`` is paced (its messages queued) instead (../shared/reference/ibkr-facts.md, "Pacing and
limits"). Time is a parameter so that a 10-minute client can be checked at simulated time in
milliseconds (tests/simulator/test_sim_pacing.py); the session passes ``time.monotonic()``.

Two choices where IBKR documents nothing, both in the client's favour so that a client keeping to
the documented rule is never punished:

* ``GRACE``: messages are counted over a window 50 ms shorter than a second, because a client's
  send times reach the server bunched by TCP and scheduling; a client keeping 50 in every second
  at its end can arrive as 51 in a server-side second, never as 51 in 0.95 s.
* ``FORGET_AFTER``: a violation is forgotten after 60 s; only three within a minute disconnect, so
  one burst an hour never ends a long session.
"""

from __future__ import annotations

from collections import deque

MAX_MSGS_PER_SEC = 50
WINDOW = 1.0
GRACE = 0.05
FORGET_AFTER = 60.0
MAX_VIOLATIONS = 3


class MessagePacer:
    def __init__(self, limit: int = MAX_MSGS_PER_SEC) -> None:
        self.limit = limit
        self._times: deque[float] = deque()
        self._violations: deque[float] = deque()

    def _trim(self, now: float) -> None:
        times = self._times
        while times and times[0] <= now - (WINDOW - GRACE):
            times.popleft()

    def wait_needed(self, now: float) -> float:
        """Seconds until one more message at ``now`` would be within the limit (0: it is now)."""
        self._trim(now)
        if len(self._times) < self.limit:
            return 0.0
        return self._times[len(self._times) - self.limit] + (WINDOW - GRACE) - now

    def record(self, now: float) -> None:
        self._times.append(now)

    def in_window(self, now: float) -> int:
        self._trim(now)
        return len(self._times)

    def violation(self, now: float) -> int:
        """Count a violation (the window restarts); returns how many are remembered now."""
        self._times.clear()
        v = self._violations
        v.append(now)
        while v and v[0] <= now - FORGET_AFTER:
            v.popleft()
        return len(v)
