"""Issue 8's performance targets as data, and a benchmark run's verdict against each.

The benchmarks measure; this module says what the numbers were meant to be. Each target
names its limit, its direction and where it was set, so a run's ``results.json`` and its
printed table carry the verdict beside the measurement instead of leaving the reader to
look the limits up. The history target is judged by :mod:`benchmarks.history_district`,
the others by :mod:`benchmarks.run_benchmark`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """One performance target: ``measured <= limit`` (``at_most``) or ``measured >= limit``."""

    key: str
    what: str
    limit: float
    unit: str
    at_most: bool
    source: str

    def met(self, measured: float) -> bool:
        """Whether ``measured`` meets this target."""
        return measured <= self.limit if self.at_most else measured >= self.limit


#: The targets, as issue 8 (and issue 2 for the parse, the night and the memory) set them.
TARGETS: dict[str, Target] = {
    t.key: t
    for t in (
        Target(
            "night",
            "district night in one process, raw files to published warehouse and queued alerts",
            30.0,
            "s",
            True,
            "issue 8 (and 2)",
        ),
        Target(
            "night_dag",
            "the same night as yizhuang_nightly schedules it (Airflow's start-up excluded)",
            30.0,
            "s",
            True,
            "issue 8",
        ),
        Target("peak_rss", "peak RSS of the night", 3.0, "GB", True, "issue 8 (and 2)"),
        Target(
            "parse",
            "HJ 212 parse with CRC, against DuckDB read_csv on the same bytes",
            1.0,
            "x",
            False,
            "issue 8 (and 2)",
        ),
        Target(
            "history",
            "the night on 365 days of history, against 1 day",
            1.1,
            "x",
            True,
            "issue 8",
        ),
        Target(
            "gx",
            "GX validation, against the same checks as one plain query",
            2.0,
            "x",
            True,
            "issue 8",
        ),
    )
}


@dataclass(frozen=True)
class Verdict:
    """A target and what one run measured for it."""

    target: Target
    measured: float

    @property
    def met(self) -> bool:
        return self.target.met(self.measured)

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self.target), "measured": self.measured, "met": self.met}


def verdict(key: str, measured: float) -> Verdict:
    """The verdict of ``measured`` against the target ``key`` (a key of :data:`TARGETS`)."""
    return Verdict(TARGETS[key], measured)


def night_verdicts(result: Mapping[str, Any]) -> list[Verdict]:
    """The verdicts :mod:`benchmarks.run_benchmark`'s ``result`` (its results.json) gives.

    The DAG-shaped night is judged when the run scheduled it; peak RSS is the larger of
    the one-process night's and the DAG's processes at once.
    """
    dag = result.get("dag_schedule")
    rss_mb = max(result["peak_rss_mb"]["total"], dag["peak_rss_mb"] if dag else 0)
    out = [verdict("night", result["total_s"])]
    if dag:
        out.append(verdict("night_dag", dag["median_wall_s"]))
    out += [
        verdict("peak_rss", round(rss_mb / 1000, 2)),
        verdict("parse", result["parse_vs_read_csv"]),
        verdict("gx", result["gx_vs_plain_query"]),
    ]
    return out


def history_verdicts(medians: Mapping[int, Mapping[str, float]]) -> list[Verdict]:
    """The history target's verdict from :mod:`benchmarks.history_district`'s medians.

    ``medians`` maps days of history to that history's medians, whose ``ratio`` is its
    median night over the 1-day history's. Judged only when both 1 and 365 days ran (the
    target's two histories); an empty list otherwise.
    """
    if 1 not in medians or 365 not in medians:
        return []
    return [verdict("history", round(medians[365]["ratio"], 3))]


def markdown(verdicts: list[Verdict], scale: str = "benchmark") -> str:
    """The verdicts as a Markdown table: target, limit, measured, met.

    At another ``scale`` than the district benchmark's, a line under the table says the
    verdicts are a trial: the targets are set for the district night.
    """
    rows = ["| target | limit | measured | met? |", "|---|---:|---:|---|"]
    for v in verdicts:
        t = v.target
        sign = "≤" if t.at_most else "≥"
        rows.append(
            f"| {t.what} | {sign} {t.limit:g} {t.unit} | {v.measured:g} {t.unit} "
            f"| {'yes' if v.met else '**no**'} |"
        )
    if scale != "benchmark":
        rows.append(
            f"\n(scale {scale!r}: the targets are set for the district night; a trial only)"
        )
    return "\n".join(rows)
