"""The live suite's JUnit result travels in the evidence bundle (junit/ and junit.json), manifest-sealed."""

from __future__ import annotations

import pytest

from gatewatch.config import ConfigError
from gatewatch.evidence.bundle import write_manifest
from gatewatch.evidence.junit import add_junit

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
