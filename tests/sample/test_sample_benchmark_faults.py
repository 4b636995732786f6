"""The benchmark district's value faults: few, of each kind, deterministic, and really in the logs.

The whole benchmark day (656 MB) is the benchmark's business, which checks that the night
finds every planted fault (``planted_found`` in its results). Here: the plan, and the logs
of a handful of planted devices rendered and parsed.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import polars as pl
import pytest

from zwy.hj212.parse import parse_lines
from zwy.sample.district import build_district, load_catalog
from zwy.sample.telemetry import BENCH_FAULT_EVERY, _bench_chunk, bench_plants

DAY = date(2024, 5, 1)


@pytest.fixture(scope="module")
def bench():
    return build_district("benchmark", 212), load_catalog()


def test_plan_is_a_small_deterministic_share_of_each_kind(bench) -> None:
    district, catalog = bench
    plants = bench_plants(district, DAY, catalog)
    kinds = Counter(p.kind for p in plants.values())
    assert set(kinds) == {"exceed_day", "exceed_hour", "flatline"}
    # About one device in BENCH_FAULT_EVERY of each stream: an exceedance and a flatline
    # per water slot, an exceedance per stack slot.
    n_water = sum(d.stream == "wastewater" for d in district.hj212_devices)
    n_gas = len(district.hj212_devices) - n_water
    assert kinds["exceed_hour"] == n_gas // BENCH_FAULT_EVERY
    assert kinds["flatline"] == n_water // BENCH_FAULT_EVERY
    assert 0 < kinds["exceed_day"] <= n_water // BENCH_FAULT_EVERY
    for mn, p in plants.items():
        assert p.mn == mn
        if p.kind.startswith("exceed"):
            assert p.limit_id and p.limit_value > 0
    assert bench_plants(district, DAY, catalog) == plants
    other_day = bench_plants(district, DAY + timedelta(days=1), catalog)
    assert set(other_day) != set(plants)


def test_planted_faults_are_in_the_rendered_logs(bench) -> None:
    district, catalog = bench
    plants = bench_plants(district, DAY, catalog)
    by_mn = {d.mn: d for d in district.hj212_devices}
    picked = {}
    for kind in ("exceed_day", "exceed_hour", "flatline"):
        mn = next(mn for mn, p in plants.items() if p.kind == kind)
        picked[kind] = by_mn[mn]
    for kind, device in picked.items():
        logs, man = _bench_chunk([device], DAY, 212, catalog, plants)
        parsed = parse_lines(
            pl.DataFrame(
                {
                    "source_file": "log",
                    "line": range(1, logs[0].count(b"\n") + 1),
                    "text": logs[0].decode("ascii").splitlines(),
                }
            )
        )
        assert parsed.quarantine.is_empty()
        plant = plants[device.mn]
        if kind == "flatline":
            (item,) = man.flatlined
            assert (item.mn, item.pollutants) == (device.mn, list(plant.pollutants))
            assert not man.exceedances
            values = parsed.values.filter(
                (pl.col("pollutant") == "w21011") & (pl.col("field") == "Avg")
            ).sort("data_time")
            hours = values.get_column("data_time").dt.hour()
            stuck = values.filter(hours.is_between(10, 16)).get_column("value")
            assert stuck.n_unique() == 1 and stuck[0] == pytest.approx(item.value)
        else:
            (item,) = man.exceedances
            assert (item.mn, item.limit_id) == (device.mn, plant.limit_id)
            assert item.period == ("day" if kind == "exceed_day" else "hour")
            # check_truth recomputed it from the data: at least 10 % over the limit.
            assert item.value >= 1.1 * item.limit_value
