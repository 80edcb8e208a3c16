"""Write the evidence bundle to a folder and seal it with a SHA-256 manifest, signed when a key is given.

Why a manifest and a signature: the bundle is handed over as proof; ``sha256sum -c MANIFEST.sha256``
shows that files match the list, and the operator's SSH signature over the list
(MANIFEST.sha256.sig, gatewatch/evidence/signing.py) shows that nobody rewrote the list since.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from gatewatch.evidence.model import Evidence
from gatewatch.evidence.report import RUNBOOK, render_html, render_markdown
from gatewatch.evidence.signing import MANIFEST_NAME, sign_manifest, write_manifest

__all__ = ["MANIFEST_NAME", "write_bundle", "write_manifest"]

RUNBOOK_SOURCE = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


def _dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_bundle(
    evidence: Evidence, folder: Path, extra: dict[str, Any] | None = None, sign_key: Path | None = None
) -> Path:
    """verdict.json, report.html, report.md, series/<chart>.json, any extra JSON files, the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    _dump(folder / "verdict.json", evidence.verdict_json())
    for chart in evidence.charts:
        _dump(
            folder / "series" / f"{chart.spec.id}.json",
            {
                "title": chart.spec.title,
                "expr": chart.spec.expr,
                "unit": chart.spec.unit,
                "window": evidence.window.to_json(),
                "error": chart.error,
                "series": [s.to_json() for s in chart.series],
            },
        )
    for name, data in (extra or {}).items():
        _dump(folder / name, data)
    if RUNBOOK_SOURCE.is_file():  # the report's alert links point into it
        shutil.copyfile(RUNBOOK_SOURCE, folder / RUNBOOK)
    (folder / "report.html").write_text(render_html(evidence), encoding="utf-8")
    (folder / "report.md").write_text(render_markdown(evidence), encoding="utf-8")
    manifest = write_manifest(folder)
    if sign_key is not None:
        sign_manifest(folder, sign_key)
    return manifest
