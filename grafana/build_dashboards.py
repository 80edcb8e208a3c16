"""Write gatewatch's Grafana dashboards (grafana/dashboards/*.json) from the dashgen package.

Run ``python grafana/build_dashboards.py`` (with the test extras installed: the generator needs
grafana-foundation-sdk, pinned to the release for the Grafana that compose runs) after changing a
gate, a panel, a query or a configured limit, and commit the output: Grafana provisions the JSON.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # dashgen beside this file; gatewatch for the config

import dashgen  # noqa: E402

OUTPUT_DIR = HERE / "dashboards"


def main() -> int:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, model in dashgen.build().items():
        (OUTPUT_DIR / name).write_text(dashgen.render_json(model), encoding="utf-8")
        print(f"wrote {OUTPUT_DIR / name} ({len(model['panels'])} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
