"""The limits table (prometheus/thresholds.yml): each threshold of gatewatch written once.

Why a table read by everything rather than constants in each place: the memory limit was
once written in four files that nothing tied together. Gates take the numbers by name
(``${memory_limit}``), the dashboards and the evidence report read :data:`THRESHOLDS`, and the
Prometheus rules (which cannot template) are checked against it by tests/stack/test_thresholds.py.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatewatch import safe_yaml
from gatewatch.config import ConfigError

THRESHOLDS_PATH = Path(__file__).resolve().parents[1] / "prometheus" / "thresholds.yml"
UNITS = ("s", "bytes", "ratio", "count", "bytes_per_hour")
_REFERENCE = re.compile(r"\$\{([a-z0-9_]+)\}")


@dataclass(frozen=True)
class Threshold:
    """One limit: its value in base units and how a person reads it."""

    name: str
    value: float
    unit: str
    meaning: str

    @property
    def text(self) -> str:
        """The value as an operator reads it: ``1.5 GiB``, ``5 s``, ``20%``, ``1``."""
        return human(self.value, self.unit)

    @property
    def number(self) -> str:
        """The value as PromQL and gates.yml write it (no exponent for whole numbers)."""
        return f"{self.value:.12g}" if not self.value.is_integer() else str(int(self.value))


def human(value: float, unit: str) -> str:
    """A value in a unit people read: bytes in MiB/GiB, ratios in percent, seconds as ``5 s``."""
    if unit in ("bytes", "bytes_per_hour"):
        suffix = "/h" if unit == "bytes_per_hour" else ""
        if unit == "bytes_per_hour" and value % 1_000_000 == 0:
            return f"{value / 1e6:g} MB{suffix}"
        for factor, name in ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
            if abs(value) >= factor:
                return f"{value / factor:.4g} {name}{suffix}"
        return f"{value:.0f} B{suffix}"
    if unit == "ratio":
        return f"{value * 100:.4g}%"
    if unit == "s":
        return duration_text(value)
    return f"{value:g}"


def duration_text(seconds: float) -> str:
    """Seconds as people say them: ``0.5 s``, ``5 s``, ``20m``, ``2h``, ``1h30m``."""
    if abs(seconds) < 60 or not float(seconds).is_integer():
        return f"{seconds:.3g} s" if abs(seconds) < 60 else f"{seconds:.0f} s"
    hours, rest = divmod(int(abs(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    text = "".join(f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n)
    return ("-" if seconds < 0 else "") + text


def _parse(raw: Any, source: Path) -> dict[str, Threshold]:
    if not isinstance(raw, dict) or not isinstance(raw.get("thresholds"), dict) or not raw["thresholds"]:
        raise ConfigError(f"{source}: thresholds: expected a non-empty mapping")
    table: dict[str, Threshold] = {}
    for name, entry in raw["thresholds"].items():
        where = f"{source}: thresholds.{name}"
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name):
            raise ConfigError(f"{where}: names are lower_case_with_underscores")
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping with value, unit, meaning")
        value = entry.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{where}.value: expected a finite number, got {value!r}")
        unit = entry.get("unit")
        if unit not in UNITS:
            raise ConfigError(f"{where}.unit: expected one of {', '.join(UNITS)}, got {unit!r}")
        meaning = entry.get("meaning")
        if not isinstance(meaning, str) or not meaning.strip():
            raise ConfigError(f"{where}.meaning: required string")
        table[name] = Threshold(name, float(value), unit, " ".join(meaning.split()))
    return table


def load_thresholds(path: Path | str = THRESHOLDS_PATH) -> dict[str, Threshold]:
    """Read the table; a malformed file is a :class:`ConfigError` (exit status 2)."""
    source = Path(path)
    try:
        raw = safe_yaml.load_file(source)
    except safe_yaml.YamlFileError as exc:
        raise ConfigError(f"thresholds: {exc}") from None
    return _parse(raw, source)


def substitute(text: str, table: dict[str, Threshold], *, human_form: bool, where: str) -> str:
    """Replace ``${name}`` by the threshold's number (expressions) or its text (titles)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in table:
            raise ConfigError(f"{where}: unknown threshold ${{{name}}} (prometheus/thresholds.yml)")
        return table[name].text if human_form else table[name].number

    return _REFERENCE.sub(replace, text)


def references(text: str) -> set[str]:
    """The threshold names ``text`` refers to."""
    return set(_REFERENCE.findall(text))


THRESHOLDS: dict[str, Threshold] = load_thresholds()
"""The shipped table, read once at import."""
