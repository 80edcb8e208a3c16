"""A SQLite journal of every probe order, written BEFORE the order is sent.

Why: a probe process can die at any moment (SIGKILL, power loss on the Pi) between sending an
order and cleaning it up. The journal is the probes' memory across crashes: the intent row (with
the order id already allocated) exists before the Gateway ever sees the order, so the next start
knows which orders and positions are ours to cancel or close, and a retry can see that an order
was already sent instead of sending it twice.

Reading is :class:`JournalReader` (read-only, never creates or changes the file: preflight, flatten
reports, tests); writing is :class:`Journal`. No SQL lives outside this module. A file SQLite
cannot read is :class:`JournalCorrupt`: the writer keeps it aside (renamed, never deleted) and says
where, so nothing is lost and the next run starts a fresh journal.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

PROBE_SCOPE = "probe"
OPERATOR_SCOPE = "operator"
"""An order's scope: ``probe`` orders open and close the probes' own positions; ``operator``
orders (``flatten --all``) close positions the probes never opened. Both are ours to cancel, but
only probe fills count toward the probes' net position: an operator close counted there would
read as a probe short that no probe ever sold."""

OPEN_STATES = ("Intent", "PendingSubmit", "PreSubmitted", "Submitted", "PendingCancel", "ApiPending")
DONE_STATES = ("Filled", "Cancelled", "ApiCancelled", "Inactive", "Gone")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_ref   TEXT PRIMARY KEY,
    probe       TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    client_id   INTEGER NOT NULL,
    order_id    INTEGER NOT NULL,
    con_id      INTEGER NOT NULL,
    contract    TEXT NOT NULL,
    action      TEXT NOT NULL,
    quantity    REAL NOT NULL,
    order_type  TEXT NOT NULL,
    limit_price REAL,
    scope       TEXT NOT NULL DEFAULT 'probe',
    status      TEXT NOT NULL,
    filled      REAL NOT NULL DEFAULT 0,
    avg_price   REAL NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    exec_id   TEXT PRIMARY KEY,
    order_ref TEXT NOT NULL,
    con_id    INTEGER NOT NULL,
    side      TEXT NOT NULL,
    shares    REAL NOT NULL,
    price     REAL NOT NULL,
    at        REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS adjustments (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    con_id    INTEGER NOT NULL,
    shares    REAL NOT NULL,
    reason    TEXT NOT NULL,
    at        REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_created ON orders(created_at);
"""
"""``adjustments`` are journal-only corrections of the probes' position (no order behind them): a
position the journal lists but the Gateway no longer shows, written off by ``flatten --repair``."""


@dataclass(frozen=True)
class JournalOrder:
    """One journalled probe order."""

    order_ref: str
    probe: str
    run_id: str
    client_id: int
    order_id: int
    con_id: int
    contract: dict[str, Any]
    action: str
    quantity: float
    order_type: str
    limit_price: float | None
    status: str
    filled: float
    created_at: float
    scope: str = PROBE_SCOPE

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES


class JournalError(Exception):
    """The journal cannot be used; the message names the file and what to do."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


class JournalCorrupt(JournalError):
    """SQLite cannot read the journal. ``kept_at`` is where the writer moved it (None: left in place)."""

    def __init__(self, path: Path, detail: str, kept_at: Path | None) -> None:
        where = (
            f"kept aside as {kept_at}; the next run starts a fresh journal"
            if kept_at
            else "left in place (read-only access)"
        )
        super().__init__(
            path,
            f"probe journal {path} is corrupt ({detail}): {where}. Probe orders still working are "
            "found by their orderRef; check positions the probes may hold with `gatewatch flatten`",
        )
        self.kept_at = kept_at


def _connect(path: Path | str, *, read_only: bool) -> sqlite3.Connection:
    """Open and integrity-check the journal; raise :class:`JournalCorrupt` (not yet moved) if unreadable."""
    target = f"file:{path}?mode=ro" if read_only else str(path)
    try:
        db = sqlite3.connect(target, uri=read_only, isolation_level=None, timeout=5.0)
    except sqlite3.Error as exc:  # a directory, a path nothing may create: nothing to keep aside
        raise _unusable(path, exc) from exc
    try:
        if not read_only:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        verdict = db.execute("PRAGMA quick_check").fetchone()
        if not verdict or verdict[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check: {verdict[0] if verdict else 'no answer'}")
        if not read_only:
            db.executescript(_SCHEMA)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"orders", "fills"} <= tables:
            raise sqlite3.DatabaseError(f"tables orders/fills missing (found {sorted(tables) or 'none'})")
    except sqlite3.DatabaseError as exc:
        db.close()
        if _unreadable(exc):
            raise JournalCorrupt(Path(path), str(exc), None) from exc
        raise _unusable(path, exc) from exc
    return db


def _unusable(path: Path | str, exc: Exception) -> JournalError:
    """The journal cannot be opened or is busy: named, left in place (its content is not in doubt)."""
    return JournalError(
        Path(path),
        f"probe journal {path} cannot be used now ({exc}): left in place, nothing lost. Another process "
        "may hold it locked (a second probe run, flatten, an sqlite3 shell), or the path is not a file "
        "gatewatch can write (active.journal_path)",
    )


_CORRUPT_CODES = (11, 26)
"""SQLITE_CORRUPT and SQLITE_NOTADB: the file's content is bad. Other errors (busy, locked, read-only,
cannot open, disk full) say nothing about the content: renaming such a journal aside would make the
next run forget what the probes hold, so only these and the checks above count as corrupt."""


def _unreadable(exc: sqlite3.DatabaseError) -> bool:
    """True when ``exc`` says the journal's content is damaged (not that it is busy or inaccessible)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is None or code & 0xFF in _CORRUPT_CODES


def keep_aside(path: Path) -> Path:
    """Rename a corrupt journal (and its -wal/-shm files) to ``<name>.corrupt-<UTC time>``; return it."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    kept = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while kept.exists():
        kept = path.with_name(f"{path.name}.corrupt-{stamp}.{n}")
        n += 1
    path.rename(kept)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(kept.with_name(kept.name + suffix))
    return kept


class JournalReader:
    """Read-only access to the journal: what the probes sent, what is open, what they hold."""

    def __init__(self, path: str | Path, *, _db: sqlite3.Connection | None = None) -> None:
        """Open an existing journal read-only; raises FileNotFoundError or :class:`JournalCorrupt`."""
        self.path = Path(path)
        if _db is None and not self.path.exists():
            raise FileNotFoundError(f"no probe journal at {self.path}")
        self._db = _db if _db is not None else _connect(self.path, read_only=True)
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self._adjusted = "adjustments" in tables  # journals written before write-offs existed have none

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def get(self, order_ref: str) -> JournalOrder | None:
        rows = self._select("WHERE order_ref = ?", (order_ref,))
        return rows[0] if rows else None

    def open_orders(self) -> list[JournalOrder]:
        marks = ",".join("?" * len(OPEN_STATES))
        return self._select(f"WHERE status IN ({marks})", OPEN_STATES)

    def all_orders(self) -> list[JournalOrder]:
        return self._select("", ())

    def orders_since(self, since: float, *, actions: tuple[str, ...] | None = None) -> int:
        """Orders recorded (intents included) since a Unix time, optionally only these actions."""
        if actions is None:
            row = self._db.execute("SELECT COUNT(*) FROM orders WHERE created_at >= ?", (since,)).fetchone()
        else:
            marks = ",".join("?" * len(actions))
            row = self._db.execute(
                f"SELECT COUNT(*) FROM orders WHERE created_at >= ? AND action IN ({marks})", (since, *actions)
            ).fetchone()
        return int(row[0])

    def net_positions(self) -> dict[int, float]:
        """Net probe position per conId, from the probes' fills (BOT adds, SLD subtracts).

        Fills of operator-scope orders are left out; so are fills whose order is not journalled.
        Write-offs (``adjustments``) count: they are the probes' position the Gateway no longer had.
        """
        adjusted = " UNION ALL SELECT con_id, shares FROM adjustments" if self._adjusted else ""
        rows = self._db.execute(
            "SELECT con_id, SUM(q) FROM ("
            "SELECT f.con_id AS con_id, CASE WHEN f.side = 'BOT' THEN f.shares ELSE -f.shares END AS q"
            " FROM fills f JOIN orders o ON o.order_ref = f.order_ref WHERE o.scope = ?"
            f"{adjusted}) GROUP BY con_id",
            (PROBE_SCOPE,),
        ).fetchall()
        return {int(con_id): float(net) for con_id, net in rows if abs(net) > 1e-9}

    def contract_for(self, con_id: int) -> dict[str, Any] | None:
        row = self._db.execute("SELECT contract FROM orders WHERE con_id = ? LIMIT 1", (con_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def _select(self, where: str, params: tuple[Any, ...]) -> list[JournalOrder]:
        rows = self._db.execute(
            "SELECT order_ref, probe, run_id, client_id, order_id, con_id, contract, action, quantity,"
            f" order_type, limit_price, status, filled, created_at, scope FROM orders {where} ORDER BY created_at",
            params,
        ).fetchall()
        return [
            JournalOrder(
                r[0],
                r[1],
                r[2],
                int(r[3]),
                int(r[4]),
                int(r[5]),
                json.loads(r[6]),
                r[7],
                float(r[8]),
                r[9],
                r[10],
                r[11],
                float(r[12]),
                float(r[13]),
                r[14],
            )
            for r in rows
        ]


class Journal(JournalReader):
    """The probe-order journal; every write is committed at once, the ones recovery needs fsynced.

    Durability is per write, because an fsync costs about a millisecond and status updates arrive
    in the same socket read as the execution report they precede: syncing each one would delay
    every event behind it. The journal runs in WAL mode with ``synchronous=NORMAL`` (a commit
    survives a process crash such as SIGKILL, but not necessarily a power cut), and the writes
    recovery cannot re-learn from the Gateway are fsynced (``synchronous=FULL``): the intent row
    written before an order is sent, and each fill. A status lost to a power cut is harmless: on
    the next start the Gateway replays this client's open orders, and cleanup corrects the rest.
    """

    def __init__(self, path: str | Path) -> None:
        """Open or create the journal; a corrupt one is kept aside and :class:`JournalCorrupt` raised."""
        where = Path(path)
        if str(path) != ":memory:":
            try:
                where.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _unusable(where, exc) from exc
        try:
            db = _connect(str(path), read_only=False)
        except JournalCorrupt as exc:
            if str(path) == ":memory:" or not where.exists():
                raise
            raise JournalCorrupt(where, str(exc.__cause__ or exc), keep_aside(where)) from exc
        super().__init__(where, _db=db)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(orders)")}
        if "scope" not in columns:  # a journal written before scopes existed: all its orders were probes'
            self._db.execute("ALTER TABLE orders ADD COLUMN scope TEXT NOT NULL DEFAULT 'probe'")

    @contextlib.contextmanager
    def _durable(self) -> Iterator[None]:
        """Commit the enclosed write with an fsync (and every NORMAL commit before it)."""
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            yield
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ writes
    def record_intent(
        self,
        *,
        order_ref: str,
        probe: str,
        run_id: str,
        client_id: int,
        order_id: int,
        con_id: int,
        contract: dict[str, Any],
        action: str,
        quantity: float,
        order_type: str,
        limit_price: float | None,
        scope: str = PROBE_SCOPE,
    ) -> None:
        """Record an order about to be sent (fsynced); raises sqlite3.IntegrityError if the ref exists."""
        if scope not in (PROBE_SCOPE, OPERATOR_SCOPE):
            raise ValueError(f"unknown order scope {scope!r}")
        now = time.time()
        with self._durable():
            self._db.execute(
                "INSERT INTO orders (order_ref, probe, run_id, client_id, order_id, con_id, contract, action,"
                " quantity, order_type, limit_price, scope, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'Intent', ?, ?)",
                (
                    order_ref,
                    probe,
                    run_id,
                    client_id,
                    order_id,
                    con_id,
                    json.dumps(contract),
                    action,
                    quantity,
                    order_type,
                    limit_price,
                    scope,
                    now,
                    now,
                ),
            )

    def update_status(
        self, order_ref: str, status: str, filled: float | None = None, avg_price: float | None = None
    ) -> None:
        """Record the Gateway's latest status for one of our orders (no-op for unknown refs)."""
        self._db.execute(
            "UPDATE orders SET status = ?, filled = COALESCE(?, filled), avg_price = COALESCE(?, avg_price),"
            " updated_at = ? WHERE order_ref = ?",
            (status, filled, avg_price, time.time(), order_ref),
        )

    def update_price(self, order_ref: str, limit_price: float) -> None:
        """Record a re-priced (modified) order."""
        self._db.execute(
            "UPDATE orders SET limit_price = ?, updated_at = ? WHERE order_ref = ?",
            (limit_price, time.time(), order_ref),
        )

    def write_off(self, con_id: int, shares: float, reason: str) -> None:
        """Remove ``shares`` (signed, as held) from the probes' position without an order (fsynced)."""
        with self._durable():
            self._db.execute(
                "INSERT INTO adjustments (con_id, shares, reason, at) VALUES (?, ?, ?, ?)",
                (con_id, -shares, reason, time.time()),
            )

    def record_fill(
        self, *, exec_id: str, order_ref: str, con_id: int, side: str, shares: float, price: float
    ) -> bool:
        """Record one execution once (executions are replayed on reconnect; fsynced); True if new."""
        with self._durable():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO fills (exec_id, order_ref, con_id, side, shares, price, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (exec_id, order_ref, con_id, side, shares, price, time.time()),
            )
        return cur.rowcount == 1
