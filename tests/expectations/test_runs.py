"""Runs of consecutive hours: taken from their first rows, as a group-by over runs gives them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl

from expectations.measures import _runs

T0 = datetime(2024, 4, 30, 16, tzinfo=UTC)


def _by_group(frame: pl.DataFrame, by: list[str], same: pl.Expr) -> pl.DataFrame:
    """The reference: number the runs over the sorted frame, then group by run."""
    hour = pl.col("hour_start_utc")
    same_keys = pl.all_horizontal(pl.col(k).eq_missing(pl.col(k).shift(1)) for k in by)
    cont = (
        same_keys
        & (hour - hour.shift(1) == timedelta(hours=1)).fill_null(False)
        & same.fill_null(False)
    )
    return (
        frame.sort([*by, "hour_start_utc"])
        .with_columns(_run=(~cont).cum_sum())
        .group_by("_run")
        .agg(
            *(pl.col(k).first() for k in by),
            start_utc=hour.min(),
            end_utc=hour.max() + timedelta(hours=1),
            hours=pl.len().cast(pl.Int64),
            value=pl.col("_v").first(),
        )
        .drop("_run")
        .sort([*by, "start_utc"], nulls_last=False)
    )


def test_runs_match_a_group_by_over_runs_in_any_row_order():
    rng = random.Random(11)
    for _ in range(60):
        rows = [
            (mn, pol, T0 + timedelta(hours=h), float(rng.choice([1, 1, 2])))
            for mn in ("A", "B", None)
            for pol in ("a21026", "a21002")
            for h in sorted(rng.sample(range(24), rng.randint(0, 10)))
        ]
        rng.shuffle(rows)
        frame = pl.DataFrame(
            rows,
            schema={
                "mn": pl.String,
                "pollutant": pl.String,
                "hour_start_utc": pl.Datetime("us", "UTC"),
                "_v": pl.Float64,
            },
            orient="row",
        )
        by = ["mn", "pollutant"]
        same = pl.col("_v") == pl.col("_v").shift(1)
        got = _runs(frame, by, same)
        assert got.equals(_by_group(frame, by, same)), frame
        # every hour is in exactly one run
        assert got["hours"].sum() == frame.height
