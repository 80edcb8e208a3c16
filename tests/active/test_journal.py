"""The journal: scopes keep operator closes out of the probes' position; old journals still open."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from probes.active.journal import Journal, JournalCorrupt, JournalError, JournalReader

ROOT = Path(__file__).resolve().parents[2]


def _order(journal: Journal, ref: str, action: str, scope: str) -> None:
    journal.record_intent(order_ref=ref, probe="p", run_id="r", client_id=902, order_id=hash(ref) % 10_000,
                          con_id=1, contract={"conId": 1}, action=action, quantity=1, order_type="LMT",
                          limit_price=1.0, scope=scope)


def test_operator_fills_do_not_count_toward_the_probe_position(tmp_path):
    journal = Journal(tmp_path / "j" / "probes.sqlite")
    _order(journal, "gatewatch:fill:r.1", "BUY", "probe")
    _order(journal, "gatewatch:flatten-all:r.2", "SELL", "operator")
    journal.record_fill(exec_id="e1", order_ref="gatewatch:fill:r.1", con_id=1, side="BOT", shares=1, price=1)
    journal.record_fill(exec_id="e2", order_ref="gatewatch:flatten-all:r.2", con_id=1, side="SLD", shares=1,
                        price=1)
    assert journal.net_positions() == {1: 1.0}
    assert {o.order_ref: o.scope for o in journal.all_orders()} == {
        "gatewatch:fill:r.1": "probe", "gatewatch:flatten-all:r.2": "operator"}
    with pytest.raises(ValueError, match="scope"):
        _order(journal, "gatewatch:x:r.3", "BUY", "bot")
    journal.close()


def test_a_journal_from_before_scopes_opens_and_counts_its_orders_as_probes(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE orders (order_ref TEXT PRIMARY KEY, probe TEXT NOT NULL, run_id TEXT NOT NULL,
            client_id INTEGER NOT NULL, order_id INTEGER NOT NULL, con_id INTEGER NOT NULL, contract TEXT NOT NULL,
            action TEXT NOT NULL, quantity REAL NOT NULL, order_type TEXT NOT NULL, limit_price REAL,
            status TEXT NOT NULL, filled REAL NOT NULL DEFAULT 0, avg_price REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL, updated_at REAL NOT NULL);
        CREATE TABLE fills (exec_id TEXT PRIMARY KEY, order_ref TEXT NOT NULL, con_id INTEGER NOT NULL,
            side TEXT NOT NULL, shares REAL NOT NULL, price REAL NOT NULL, at REAL NOT NULL);
        INSERT INTO orders VALUES ('gatewatch:fill:old.1', 'fill', 'old', 902, 5, 7, '{}', 'BUY', 1, 'LMT', 1.0,
            'Filled', 1, 1.0, 1.0, 1.0);
        INSERT INTO fills VALUES ('e1', 'gatewatch:fill:old.1', 7, 'BOT', 1, 1.0, 1.0);
    """)
    db.commit()
    db.close()
    journal = Journal(path)
    assert [o.scope for o in journal.all_orders()] == ["probe"]
    assert journal.net_positions() == {7: 1.0}
    journal.close()


def test_the_reader_never_creates_or_writes_the_journal(tmp_path):
    path = tmp_path / "probes.sqlite"
    with pytest.raises(FileNotFoundError):
        JournalReader(path)
    assert not path.exists()
    journal = Journal(path)
    _order(journal, "gatewatch:fill:r.1", "BUY", "probe")
    with JournalReader(path) as reader:
        assert [o.order_ref for o in reader.open_orders()] == ["gatewatch:fill:r.1"]
        assert not hasattr(reader, "record_intent")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._db.execute("DELETE FROM orders")
    journal.close()


@pytest.mark.parametrize("content", [b"not a database at all\n" * 200, b""])
def test_a_corrupt_journal_is_kept_aside_and_named(tmp_path, content):
    path = tmp_path / "probes.sqlite"
    good = Journal(path)
    _order(good, "gatewatch:fill:r.1", "BUY", "probe")
    good.close()
    original = path.read_bytes()
    damaged = content or original[: len(original) // 3] + b"\xff" * 4096 + original[len(original) // 3 + 4096:]
    path.write_bytes(damaged)
    with pytest.raises(JournalCorrupt) as seen:
        JournalReader(path)
    assert seen.value.kept_at is None and path.read_bytes() == damaged  # read-only: left as it is
    with pytest.raises(JournalCorrupt) as seen:
        Journal(path)
    kept = seen.value.kept_at
    assert kept is not None and kept.read_bytes() == damaged, "the corrupt journal must be kept, unchanged"
    assert str(kept) in str(seen.value) and str(path) in str(seen.value)
    assert not path.exists()
    fresh = Journal(path)  # the next run starts afresh
    assert fresh.all_orders() == []
    fresh.close()


def test_a_locked_journal_is_not_taken_for_corrupt_and_keeps_its_positions(tmp_path):
    """A journal another process holds locked is busy, not damaged: it stays where it is, with its data."""
    path = tmp_path / "probes.sqlite"
    journal = Journal(path)
    _order(journal, "gatewatch:fill:r.1", "BUY", "probe")
    journal.record_fill(exec_id="e1", order_ref="gatewatch:fill:r.1", con_id=1, side="BOT", shares=1, price=1)
    journal.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(JournalError, match="locked") as seen:
            Journal(path)
        assert not isinstance(seen.value, JournalCorrupt)
        assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with JournalReader(path) as reader:
        assert reader.net_positions() == {1: 1.0}


@pytest.mark.parametrize("where", ["a-directory", "a-file/probes.sqlite"])
def test_a_journal_path_that_cannot_be_a_file_is_named_and_nothing_is_moved(tmp_path, where):
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("kept")
    with pytest.raises(JournalError, match=r"active\.journal_path") as seen:
        Journal(tmp_path / where)
    assert not isinstance(seen.value, JournalCorrupt) and str(tmp_path / where) in str(seen.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-directory", "a-file"]
    assert (tmp_path / "a-file").read_text() == "kept"


def test_flatten_names_an_unusable_journal_path_and_exits_2(tmp_path):
    """No traceback and no 'cannot reach the Gateway': the file is at fault (exit 2), before any connection."""
    config = tmp_path / "gatewatch.yaml"
    config.write_text(json.dumps({"active": {"journal_path": str(tmp_path)}}))
    done = subprocess.run([sys.executable, "-m", "gatewatch", "flatten", "--config", str(config)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and f"probe journal {tmp_path}" in done.stderr
