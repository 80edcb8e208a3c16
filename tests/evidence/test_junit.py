"""The live suite's JUnit result travels in the evidence bundle (junit/ and junit.json), manifest-sealed."""

from __future__ import annotations

import pytest

from gatewatch.config import ConfigError
from gatewatch.evidence.bundle import write_manifest
from gatewatch.evidence.junit import add_junit
from gatewatch.evidence.model import Evidence, Window
from gatewatch.evidence.report import render_html, render_markdown

XML = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.live_validation" name="test_gateway_authentication" time="0.1"/>
<testcase classname="tests.live_validation" name="test_market_data_subscription_spy" time="0.1">
<skipped message="market closed"/></testcase>
<testcase classname="tests.live_validation" name="test_paper_trading_close_position" time="0.1">
<failure message="still holds 1">trace</failure></testcase>
</testsuite></testsuites>"""


def test_junit_copied_and_summarised(tmp_path):
    source = tmp_path / "live-validation.xml"
    source.write_text(XML)
    bundle = tmp_path / "bundle"
    summary = add_junit([source], bundle)
    [result] = summary["results"]
    assert (result["tests"], result["passed"], result["skipped"], result["failed"]) == (3, 1, 1, 1)
    assert not result["ok"]
    assert result["cases"][2]["message"] == "still holds 1"
    assert (bundle / "junit" / "live-validation.xml").read_text() == XML
    assert "junit/live-validation.xml" in write_manifest(bundle).read_text()


def test_a_bad_junit_file_is_named(tmp_path):
    bad = tmp_path / "broken.xml"
    bad.write_text("<testsuite")
    with pytest.raises(ConfigError, match=r"broken\.xml"):
        add_junit([bad], tmp_path / "bundle")


def test_report_and_verdict_show_each_suite_and_what_did_not_pass(tmp_path):
    source = tmp_path / "live-validation.xml"
    source.write_text(XML)
    window = Window(1_800_000_000.0, 1_800_007_200.0)
    found = Evidence(window, "http://127.0.0.1:9090", window.end, [])
    found.test_suites = add_junit([source], tmp_path / "bundle")["results"]
    page = render_html(found)
    section = page[page.index('id="test-suites"'):]
    assert "junit/live-validation.xml" in section and "FAIL" in section and "1 failed" in section
    assert "test_paper_trading_close_position" in section and "still holds 1" in section
    assert "test_market_data_subscription_spy" in section and "market closed" in section
    assert "test_gateway_authentication" not in section  # passed cases are counted, not listed
    md = render_markdown(found)
    assert "## Test suites run in the session (JUnit)" in md and "**FAIL**" in md
    [suite] = found.verdict_json()["test_suites"]
    assert suite["ok"] is False and suite["failed"] == 1 and "cases" not in suite


def test_no_junit_no_section(tmp_path):
    window = Window(1_800_000_000.0, 1_800_007_200.0)
    found = Evidence(window, "http://127.0.0.1:9090", window.end, [])
    assert "test-suites" not in render_html(found) and "JUnit" not in render_markdown(found)
    assert found.verdict_json()["test_suites"] == []
