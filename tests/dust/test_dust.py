"""Construction-site dust: station reader, hourly transform, and the controls end to end."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from expectations.controls import load_dust_controls
from transforms.dust import dust_hourly
from zwy.contracts import READINGS
from zwy.dust.read import load_dust_sites, read_station_file
from zwy.pipeline import run_day
from zwy.sample.generate import generate_district
from zwy.settings import Settings

DAY = date(2024, 5, 1)
REAL = Path(__file__).resolve().parents[3] / "shared" / "real" / "beijing_air_quality"
HEADER = '"No","year","month","day","hour","PM2.5","PM10","SO2","NO2","CO","O3","TEMP","PRES","DEWP","RAIN","wd","WSPM","station"\n'


def test_station_file_in_the_uci_layout(tmp_path):
    p = tmp_path / "st.csv"
    p.write_text(
        HEADER
        + '1,2024,5,1,0,20,33,7,29,509,63,21.2,1011.5,-0.6,0,"S",2.8,"Yizhuang"\n'
        + '2,2024,5,1,1,NA,NA,7,51,704,71,15.4,1012.5,5.1,0,"NE",3.2,"Yizhuang"\n'
        + '3,2024,5,1,25,24,39,5,49,380,62,12.5,1006.0,-3.1,0,"N",1.7,"Yizhuang"\n'
        + '4,2024,2,30,3,24,39,5,49,380,62,12.5,1006.0,-3.1,0,"N",1.7,"Yizhuang"\n'
        + '5,2024,5,1,4,30,lots,6,28,489,21,18.3,1007.6,2.4,0,"N",1.2,"Yizhuang"\n'
    )
    r = read_station_file(p, "in/st.csv")
    assert r.rows_found == 5 and r.rows.height == 2 and r.lines_total == 6
    first = r.rows.row(0, named=True)
    # Beijing 2024-05-01 00:00 is 2024-04-30 16:00 UTC; the compliance day stays local.
    assert first["hour_start_utc"] == datetime(2024, 4, 30, 16, tzinfo=UTC)
    assert first["local_day"] == DAY and first["pm10"] == 33.0 and first["station"] == "Yizhuang"
    assert r.rows["pm10"].to_list()[1] is None  # NA
    q = r.quarantine.sort("line")
    assert q["line"].to_list() == [4, 5, 6]
    assert q["rule"].to_list() == ["station_time", "station_time", "station_value"]
    assert "PM10 'lots' is neither a number nor NA" in q["reason"][2]


def test_a_csv_that_is_not_a_station_file(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    r = read_station_file(p, "in/x.csv")
    assert r.quarantine["rule"].to_list() == ["layout"] and r.rows.is_empty()


def _reading(
    mn: str, t: datetime, value: float, flag: str = "N", pollutant: str = "a34002"
) -> dict:
    return {
        "mn": mn,
        "cn": "2011",
        "field": "Rtd",
        "pollutant": pollutant,
        "value": value,
        "flag": flag,
        "data_time_utc": t,
        "stream": "dust",
    }


def test_dust_hours_validity_and_difference():
    sites = pl.DataFrame(
        {"site_id": ["S1"], "mn": ["M1"], "station": ["X"], "start_date": [DAY], "end_date": [DAY]}
    )
    t0 = datetime(2024, 4, 30, 16, tzinfo=UTC)  # 00:00 Beijing
    rows = [_reading("M1", t0.replace(minute=m), 100.0) for m in range(50)]
    rows += [_reading("M1", t0.replace(hour=17, minute=m), 40.0) for m in range(10)]
    rows.append(_reading("M1", t0.replace(hour=17, minute=30), 999.0, flag="D"))
    readings = pl.DataFrame(rows).with_columns(
        pl.col("data_time_utc").cast(READINGS["data_time_utc"])
    )
    station = pl.DataFrame(
        {"station": ["X", "X"], "hour_start_utc": [t0, t0.replace(hour=17)], "pm10": [70.0, None]}
    ).with_columns(pl.col("hour_start_utc").cast(READINGS["data_time_utc"]))
    out = dust_hourly(readings, sites, station, [DAY], min_valid_minutes=45)
    assert out.height == 24
    h0, h1, h2 = out.row(0, named=True), out.row(1, named=True), out.row(2, named=True)
    assert (h0["valid_minutes"], h0["valid"], h0["pm10_site"], h0["pm10_diff"]) == (
        50,
        True,
        100.0,
        30.0,
    )
    # 10 valid minutes (the D-flagged value excluded): invalid hour, no difference.
    assert (h1["valid_minutes"], h1["n_values"], h1["valid"], h1["pm10_diff"]) == (
        10,
        11,
        False,
        None,
    )
    assert (h2["n_values"], h2["valid"]) == (0, False)


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict]:
    root = tmp_path_factory.mktemp("dust")
    generate_district(root / "sample", [DAY], scale="test")
    settings = Settings.for_district(root / "data", root / "sample")
    assert run_day(DAY, settings).status == "success"
    return settings, json.loads((root / "sample" / "planted.json").read_text())["dust"]


def q(settings: Settings, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql).pl()


def test_every_dust_file_recorded_and_accounted(district):
    settings, planted = district
    files = q(settings, "select * from raw_ingest_files where stream = 'dust'")
    assert set(files["path"]) == set(planted["totals"])
    for r in files.iter_rows(named=True):
        t = planted["totals"][r["path"]]
        assert (r["frames_found"], r["frames_quarantined"]) == (t["frames"], t["quarantined"])
        assert r["frames_found"] == r["frames_loaded"] + r["frames_quarantined"]
    assert q(settings, "select count(*) n from stg_station_hourly")["n"][0] == 24
    # Dust monitors are registered: no unknown-MN issue for them.
    assert (
        q(
            settings,
            "select count(*) n from dq_issues where mn like '3901%' "
            "and control_id = 'ZWY-DQ-UNKNOWN-MN'",
        )["n"][0]
        == 0
    )


def test_dust_findings_are_exactly_the_planted(district):
    settings, planted = district
    got = q(
        settings,
        "select control_id, facility_id, mn, period_start_local, observed, verified_status, "
        "message, evidence from breaches where control_id like 'ZWY-DUST-%' union all by name "
        "select control_id, facility_id, mn, period_start_local, observed, verified_status, "
        "message, evidence from dq_issues where control_id like 'ZWY-DUST-%'",
    )
    found = {
        (r["control_id"], r["facility_id"], r["period_start_local"].isoformat())
        for r in got.iter_rows(named=True)
    }
    expected = set()
    for p in planted["diff_runs"]:
        expected.add(("ZWY-DUST-DIFF", p["site_id"], p["start_local"]))
    for p in planted["absolute"]:
        start = datetime.fromisoformat(p["start_local"])
        for h in range(p["hours"]):
            expected.add(
                ("ZWY-DUST-ABS", p["site_id"], start.replace(hour=start.hour + h).isoformat())
            )
    for p in planted["offline"]:
        expected.add(("ZWY-DUST-OFFLINE", p["site_id"], p["start_local"]))
    assert found == expected and got.height == len(expected)
    # Policy thresholds say so, the evidence SQL shows the hours.
    assert set(got["verified_status"]) == {"policy"}
    assert all("UNVERIFIED" in m or "policy" in m for m in got["message"])
    diff = got.filter(pl.col("control_id") == "ZWY-DUST-DIFF").row(0, named=True)
    assert diff["observed"] == 3.0
    ev = json.loads(diff["evidence"])
    assert q(settings, ev["mart_sql"]).height == 3
    assert ev["sources"][0]["file"].endswith(".log")
    assert {c.control_id for c in load_dust_controls()} == set(got["control_id"])


def test_offline_outside_working_hours_and_station_na_are_not_flagged(district):
    settings, planted = district
    night = planted["offline_outside_hours"][0]
    hours = q(
        settings,
        f"select * from mart_dust_hourly where site_id = '{night['site_id']}' order by hour_local",
    )
    assert hours.filter(pl.col("hour_local").is_in([1, 2]))["n_values"].to_list() == [0, 0]
    na = hours.filter(pl.col("hour_local") == 5).row(0, named=True)
    assert na["pm10_station"] is None and na["pm10_diff"] is None and na["valid"]


def test_the_report_draws_the_sites_against_the_station(district):
    from zwy.report import build_report

    settings, _ = district
    page = build_report(DAY, settings).read_text(encoding="utf-8")
    assert 'alt="PM10 of site S001 against the station"' in page
    assert "工地 site S002" in page


def test_site_registry_is_read():
    from zwy.sample.dust import sites, sites_csv

    reg = Path(__file__).parent  # any folder without dust_sites.csv: no sites
    assert load_dust_sites(reg).is_empty()
    assert len(sites("benchmark", 212)) == 200 and sites_csv(sites("test", 212)).startswith(
        b"site_id"
    )


@pytest.mark.real
@pytest.mark.skipif(
    not REAL.is_dir(), reason="../shared/real/beijing_air_quality is not beside the project"
)
def test_real_uci_station_files_read_without_loss():
    for path in sorted(REAL.glob("PRSA_Data_*.csv")):
        r = read_station_file(path, path.name)
        raw = pl.read_csv(path, infer_schema=False)
        assert r.rows_found == raw.height, path.name
        assert r.quarantine.is_empty(), r.quarantine.head()
        # NA stays a null, never a zero.
        assert (
            r.rows["pm10"].null_count() == raw["PM10"].is_null().sum() + (raw["PM10"] == "NA").sum()
        )
        assert r.rows["station"].n_unique() == 1
