"""Write the evidence bundle to a folder and seal it with a SHA-256 manifest.

Why a manifest: the bundle is handed over as proof; ``sha256sum -c MANIFEST.sha256`` shows that no
file was edited or dropped afterwards.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from gatewatch.evidence.model import Evidence
from gatewatch.evidence.report import render_html, render_markdown

MANIFEST_NAME = "MANIFEST.sha256"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path) -> Path:
    """List every file under ``folder`` (but the manifest) in ``sha256sum`` format, sorted."""
    manifest = folder / MANIFEST_NAME
    lines = [
        f"{sha256_file(path)}  {path.relative_to(folder).as_posix()}"
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path != manifest
    ]
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest


def _dump(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_bundle(evidence: Evidence, folder: Path, extra: dict[str, Any] | None = None) -> Path:
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
    (folder / "report.html").write_text(render_html(evidence), encoding="utf-8")
    (folder / "report.md").write_text(render_markdown(evidence), encoding="utf-8")
    return write_manifest(folder)
