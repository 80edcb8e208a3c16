"""The bot section of the evidence: figures per client id, and a clear line when no bot was observed."""

from __future__ import annotations

from gatewatch.evidence.bot import FIGURES, NOT_OBSERVED, collect_bots, html_section, markdown_section


class Recorded:
    """Answers each figure's query with fixed vectors (the query strings themselves are checked too)."""

    def __init__(self, answers: dict[str, list[tuple[dict[str, str], float]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def query(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        self.asked.append(expr)
        for key, _, template, _ in FIGURES:
            if expr == template.format(r="7200s"):
                return self.answers.get(key, [])
        raise AssertionError(f"unexpected query {expr}")


def test_bot_figures_per_client_id() -> None:
    bot = {"client_id": "11", "client_name": "spy-bot"}
    prom = Recorded({"connected_share": [(bot, 0.9975)], "connects": [(bot, 2.0)], "placed": [(bot, 12.0)],
                     "rejected": [(bot, 0.0)], "tick_age": [(bot, 3.25)]})
    [summary] = collect_bots(prom, 7200, 1e9)
    assert len(prom.asked) == len(FIGURES) and all("[7200s" in q for q in prom.asked)
    assert summary.figures["placed"] == 12
    text = html_section([summary])
    assert "11 spy-bot" in text and "99.8 %" in text and "3.2 s" in text and "n/a" in text
    md = "\n".join(markdown_section([summary]))
    assert "| 11 spy-bot | 99.8 % | 2 |" in md


def test_no_bot_is_said_plainly() -> None:
    assert collect_bots(Recorded({}), 7200, 1e9) == []
    assert NOT_OBSERVED in html_section([]) and NOT_OBSERVED in markdown_section([])[-1]
