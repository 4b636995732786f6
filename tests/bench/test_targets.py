"""A benchmark run's verdict against issue 8's targets: limits, directions, the table."""

from __future__ import annotations

from typing import Any

from benchmarks.targets import TARGETS, history_verdicts, markdown, night_verdicts, verdict


def _result() -> dict[str, Any]:
    return {
        "total_s": 17.9,
        "peak_rss_mb": {"total": 1666, "load": 1666},
        "parse_vs_read_csv": 0.24,
        "gx_vs_plain_query": 39.9,
        "dag_schedule": {"median_wall_s": 31.5, "peak_rss_mb": 3200},
    }


def test_each_target_has_its_limit_direction_and_source() -> None:
    assert {k: (t.limit, t.at_most) for k, t in TARGETS.items()} == {
        "night": (30.0, True),
        "night_dag": (30.0, True),
        "peak_rss": (3.0, True),
        "parse": (1.0, False),
        "history": (1.1, True),
        "gx": (2.0, True),
    }
    assert all(t.source.startswith("issue ") for t in TARGETS.values())
    # The limit itself meets the target in both directions.
    assert verdict("night", 30.0).met and verdict("parse", 1.0).met
    assert not verdict("night", 30.01).met and not verdict("parse", 0.99).met


def test_night_verdicts_judge_the_runs_numbers() -> None:
    got = {v.target.key: (v.measured, v.met) for v in night_verdicts(_result())}
    assert got == {
        "night": (17.9, True),
        "night_dag": (31.5, False),
        # The DAG's processes at once (3.2 GB) are the peak, over the 3 GB limit.
        "peak_rss": (3.2, False),
        "parse": (0.24, False),
        "gx": (39.9, False),
    }


def test_without_a_dag_schedule_only_the_one_process_night_is_judged() -> None:
    result = _result()
    del result["dag_schedule"]
    got = {v.target.key: v.measured for v in night_verdicts(result)}
    assert "night_dag" not in got and got["peak_rss"] == 1.67


def test_markdown_table_and_json_say_what_was_met() -> None:
    vs = night_verdicts(_result())
    table = markdown(vs).splitlines()
    assert table[0] == "| target | limit | measured | met? |"
    assert len(table) == 2 + len(vs)
    night = next(r for r in table if r.startswith("| district night in one process"))
    assert night.endswith("| ≤ 30 s | 17.9 s | yes |")
    parse = next(r for r in table if "read_csv" in r)
    assert parse.endswith("| ≥ 1 x | 0.24 x | **no** |")
    assert "a trial only" not in markdown(vs)
    assert markdown(vs, "test").endswith(
        "(scale 'test': the targets are set for the district night; a trial only)"
    )
    js = vs[0].as_json()
    assert js["key"] == "night" and js["met"] is True and js["measured"] == 17.9


def test_history_is_judged_on_a_year_against_one_day_only() -> None:
    medians = {1: {"night": 18.51, "ratio": 1.0}, 365: {"night": 19.12, "ratio": 1.03295}}
    (v,) = history_verdicts(medians)
    assert (v.target.key, v.measured, v.met) == ("history", 1.033, True)
    assert not history_verdicts({1: medians[1], 3: {"night": 2.0, "ratio": 1.5}})
    over = history_verdicts({1: medians[1], 90: medians[365], 365: {"ratio": 1.12}})
    assert [x.met for x in over] == [False]
