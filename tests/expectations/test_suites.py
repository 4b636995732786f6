"""The suites' run: each batch validated directly finds what a Checkpoint and plain SQL find."""

from __future__ import annotations

import polars as pl
import pytest

from expectations.suites import (
    ExpectationSpec,
    _row_ids,
    build_checkpoint,
    judge_plain,
    new_context,
    run_suites,
    with_row_id,
    write_batches,
)

SPECS = [
    ExpectationSpec("hourly", "ZWY-T-HIGH", "between", "value", max_value=10.0, limit_id="L-high"),
    ExpectationSpec(
        "hourly",
        "ZWY-T-COND",
        "between",
        "value",
        min_value=2.0,
        condition=("pollutant", "w01018"),
        limit_id="L-cod",
    ),
    ExpectationSpec("daily", "ZWY-T-DAY", "between", "n_hours", min_value=20.0),
]


def _batches() -> dict[str, pl.DataFrame]:
    hourly = pl.DataFrame(
        {
            "pollutant": ["w01018", "w01018", "w00000", "w01018", "w00000"],
            # row 1: above 10; row 3: below 2 under the COD condition; row 4 null (ignored)
            "value": [5.0, 12.5, 1.0, 1.5, None],
        }
    )
    daily = pl.DataFrame({"n_hours": [24, 19, 23]})
    return {"hourly": with_row_id(hourly), "daily": with_row_id(daily)}


def _checkpoint_failures(paths, engine) -> dict[tuple, list[int]]:
    ctx = new_context()
    result = build_checkpoint(ctx, SPECS, paths, f"zwy_test_{engine}", engine, 5).run()
    out: dict[tuple, list[int]] = {}
    for vr in result.run_results.values():
        for r in vr.results:
            if not r.success:
                meta = r.expectation_config.meta
                key = (
                    meta["control_id"],
                    meta.get("limit_id"),
                    str(vr.asset_name),
                    r.expectation_config.kwargs["column"],
                )
                out[key] = _row_ids(r.result)
    return out


@pytest.mark.parametrize("engine", ["sql", "pandas"])
def test_direct_validation_finds_what_a_checkpoint_and_plain_sql_find(tmp_path, engine):
    batches = _batches()
    paths = write_batches(batches, tmp_path / "batches")
    rows = {k: v.height for k, v in batches.items()}

    run = run_suites(SPECS, paths, engine=engine, row_counts=rows)

    expected = {
        ("ZWY-T-HIGH", "L-high", "hourly", "value"): [1],
        ("ZWY-T-COND", "L-cod", "hourly", "value"): [3],
        ("ZWY-T-DAY", None, "daily", "n_hours"): [1],
    }
    assert run.failures == expected
    assert not run.success
    assert run.evaluated == {"ZWY-T-HIGH": 1, "ZWY-T-COND": 1, "ZWY-T-DAY": 1}
    assert {r["meta"]["batch"] for r in run.results} == {"hourly", "daily"}
    assert {r["suite_name"] for r in run.results} == {"zwy_hourly", "zwy_daily"}
    assert judge_plain(SPECS, paths) == expected
    assert _checkpoint_failures(paths, engine) == expected
