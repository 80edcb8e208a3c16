"""docs/edge_cases.md: all 17 of the handoff's edge cases, each with tests that exist (and the tests
docs/guarantees.md names).

A node id in the table that no longer names a test function (renamed, moved, deleted) would make
the traceability table lie; this test reads each one and finds the function in its file.
"""

from __future__ import annotations

import ast
import re

from support.stack import ROOT

DOC = ROOT / "docs" / "edge_cases.md"
ROW = re.compile(r"^\| (\d+) \| (.+?) \| (.+?) \| (.+?) \|$", re.M)
NODE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _rows() -> list[tuple[int, str, str, str]]:
    return [(int(n), case, where, tests) for n, case, where, tests in ROW.findall(DOC.read_text(encoding="utf-8"))]


def _test_functions(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")}


def test_every_edge_case_has_a_row_with_a_place_and_tests() -> None:
    rows = _rows()
    assert [n for n, *_ in rows] == list(range(1, 18)), "one row per edge case, 1 to 17, in order"
    for number, _case, where, tests in rows:
        assert where.strip(), f"case {number}: where is it handled?"
        assert NODE.search(tests), f"case {number}: no test named"


def test_every_named_test_exists() -> None:
    missing = []
    for number, _case, _where, tests in _rows():
        for path, name in NODE.findall(tests):
            if not (ROOT / path).is_file() or name not in _test_functions(path):
                missing.append(f"case {number}: {path}::{name}")
    assert not missing, "docs/edge_cases.md names tests that do not exist:\n" + "\n".join(missing)


def test_the_two_decisions_are_explained() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "## Decision: quotes are streamed, not requested with `snapshot=True`" in text
    assert "## Decision: a Gateway that is up but not logged in" in text


def test_tests_named_by_the_guarantees_exist() -> None:
    text = (ROOT / "docs" / "guarantees.md").read_text(encoding="utf-8")
    named = NODE.findall(text) + [(path, "") for path in re.findall(r"`(tests/[\w/]+\.py)`", text)]
    assert named
    missing = [f"{path}::{name}" for path, name in named
               if not (ROOT / path).is_file() or (name and name not in _test_functions(path))]
    assert not missing, "docs/guarantees.md names tests that do not exist:\n" + "\n".join(missing)
