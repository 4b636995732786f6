"""One golden facility-day per control: hand-made marts in, exact findings out."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

import duckdb
import polars as pl
from controls_builders import DAY, GoldenDay, reading, settings_for

from zwy.settings import Settings
from zwy.validate import validate_day

BREACH_COLS = [
    "control_id",
    "mn",
    "pollutant",
    "averaging_period",
    "period_start_local",
    "observed",
    "limit_low",
    "limit_high",
    "unit",
    "limit_id",
    "severity",
    "verified_status",
]
ISSUE_COLS = [
    "control_id",
    "mn",
    "pollutant",
    "period_start_local",
    "period_end_local",
    "observed",
    "threshold",
]


def at(h: int) -> datetime:
    """Local wall-clock time of hour ``h`` of the golden day (24 = next midnight)."""
    return datetime.combine(DAY, time(0)) + timedelta(hours=h)


def run(
    golden: GoldenDay, tmp_path, permits: str | None = None
) -> tuple[list[tuple], list[tuple], Settings]:
    settings = settings_for(tmp_path)
    if permits:
        (settings.registry / "permit_limits.csv").write_text(permits, encoding="utf-8")
    golden.write(settings)
    validate_day(DAY, settings)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        b = con.execute(f"select {', '.join(BREACH_COLS)} from breaches order by all").fetchall()
        i = con.execute(
            "select control_id, mn, pollutant, period_start_local, "
            "timezone('Asia/Shanghai', period_end_utc) as period_end_local, observed, threshold "
            "from dq_issues order by all"
        ).fetchall()
    return [tuple(r) for r in b], [tuple(r) for r in i], settings


def rounded(rows: list[tuple]) -> list[tuple]:
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows]


def test_a_clean_day_has_no_finding(tmp_path):
    breaches, issues, _ = run(GoldenDay(devices=["W1", "W2", "G1"]), tmp_path)
    assert breaches == []
    assert issues == []


def test_zwy_lim_w_day_daily_flow_weighted_mean_above_table_3(tmp_path):
    g = GoldenDay(devices=["W1"])
    g.set_daily("W1", "w01018", value=612.5)
    g.set_daily("W1", "w21003", value=45.0)  # at the limit: not a breach
    breaches, issues, settings = run(g, tmp_path)
    assert rounded(breaches) == [
        (
            "ZWY-LIM-W-DAY",
            "W1",
            "w01018",
            "day",
            at(0),
            612.5,
            None,
            500.0,
            "mg/L",
            "DB11-307-2013-T3-COD_Cr",
            "critical",
            "verified",
        ),
    ]
    assert issues == []


def test_zwy_lim_w_day_an_invalid_day_is_not_judged(tmp_path):
    g = GoldenDay(devices=["W1"])
    g.set_daily("W1", "w01018", value=612.5, valid=False)
    breaches, _, _ = run(g, tmp_path)
    assert breaches == []


def test_zwy_lim_w_ph_outside_the_range_on_both_sides(tmp_path):
    g = GoldenDay(devices=["W1", "W2"])
    g.set_daily("W1", "w01001", value=9.4)
    g.set_daily("W2", "w01001", value=6.2)
    breaches, issues, _ = run(g, tmp_path)
    assert rounded(breaches) == [
        (
            "ZWY-LIM-W-PH",
            "W1",
            "w01001",
            "day",
            at(0),
            9.4,
            6.5,
            9.0,
            "pH",
            "DB11-307-2013-T3-pH",
            "critical",
            "verified",
        ),
        (
            "ZWY-LIM-W-PH",
            "W2",
            "w01001",
            "day",
            at(0),
            6.2,
            6.5,
            9.0,
            "pH",
            "DB11-307-2013-T3-pH",
            "critical",
            "verified",
        ),
    ]
    assert issues == []


def test_zwy_lim_g_hour_o2_corrected_nox_above_the_new_boiler_limit(tmp_path):
    g = GoldenDay(devices=["G1"])
    g.set("G1", "a21002", [9], value_zs=35.0)
    g.set("G1", "a21002", [10], value_zs=31.0)
    g.set("G1", "a21002", [11], value_zs=30.0)  # at the limit
    g.set("G1", "a21002", [12], value=40.0, value_zs=45.0, valid=False, valid_minutes=30)
    breaches, issues, settings = run(g, tmp_path)
    lid = "DB11-139-2015-NOx-new-2017"
    assert rounded(breaches) == [
        (
            "ZWY-LIM-G-HOUR",
            "G1",
            "a21002",
            "hour",
            at(9),
            35.0,
            None,
            30.0,
            "mg/m3",
            lid,
            "critical",
            "unverified",
        ),
        (
            "ZWY-LIM-G-HOUR",
            "G1",
            "a21002",
            "hour",
            at(10),
            31.0,
            None,
            30.0,
            "mg/m3",
            lid,
            "critical",
            "unverified",
        ),
    ]
    # The invalid hour is not judged against the limit; it is an invalid hour instead.
    assert rounded(issues) == [("ZWY-DQ-HOUR-CAPTURE", "G1", "a21002", at(12), at(13), 1.0, 45.0)]
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        msg, ref, corrected = con.execute(
            "select message, reference_o2, corrected_o2 from breaches limit 1"
        ).fetchone()
    assert "UNVERIFIED" in msg and ref == 3.5 and corrected


def test_a_stricter_permit_limit_is_the_limit_applied(tmp_path):
    g = GoldenDay(devices=["W1", "W2"])
    g.set_daily("W1", "w01018", value=350.0)
    g.set_daily("W2", "w01018", value=350.0)
    permits = (
        "facility_id,outlet_id,pollutant,averaging_period,limit_low,limit_high,unit,valid_from,"
        "valid_to,permit_no,clause,source,status,note\n"
        "F1,,w01018,day,,300,mg/L,2024-01-01,,91110302TEST0001P,§4.2,permit copy,verified,\n"
    )
    breaches, _, settings = run(g, tmp_path, permits)
    assert rounded(breaches) == [
        (
            "ZWY-LIM-W-DAY",
            "W1",
            "w01018",
            "day",
            at(0),
            350.0,
            None,
            300.0,
            "mg/L",
            "PERMIT-91110302TEST0001P-F1-WS1-w01018-day",
            "critical",
            "verified",
        ),
    ]
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        (basis,) = con.execute("select legal_basis from breaches").fetchone()
    assert basis.startswith(
        "discharge permit 91110302TEST0001P (stricter than DB11/307-2013 Table 3)"
    )


def test_zwy_dq_hour_capture_invalid_and_missing_hours(tmp_path):
    g = GoldenDay(devices=["W1"])
    g.set("W1", "w21003", [3, 4], valid=False, n_valid=0, value=None)
    g.drop("W1", "w21003", [7])
    _, issues, settings = run(g, tmp_path)
    assert rounded(issues) == [
        ("ZWY-DQ-HOUR-CAPTURE", "W1", "w21003", at(3), at(5), 2.0, 1.0),
        ("ZWY-DQ-HOUR-CAPTURE", "W1", "w21003", at(7), at(8), 1.0, 1.0),
    ]
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        details = [
            json.loads(d)
            for (d,) in con.execute(
                "select details from dq_issues order by period_start_utc"
            ).fetchall()
        ]
    assert [d["missing_hours"] for d in details] == [0, 1]


def test_zwy_dq_day_capture_gas_day_with_too_few_valid_hours(tmp_path):
    g = GoldenDay(devices=["G1"])
    g.set("G1", "a21026", range(0, 6), valid=False, valid_minutes=10)
    _, issues, _ = run(g, tmp_path)
    assert rounded(issues) == [
        ("ZWY-DQ-DAY-CAPTURE", "G1", "a21026", at(0), at(24), 18.0, 20.0),
        ("ZWY-DQ-HOUR-CAPTURE", "G1", "a21026", at(0), at(6), 6.0, 45.0),
    ]


def test_zwy_dq_no_data_and_offline_for_a_silent_registered_device(tmp_path):
    g = GoldenDay(devices=["W1", "W2"])
    g.drop("W2", None, range(24))
    _, issues, _ = run(g, tmp_path)
    assert rounded(issues) == [
        ("ZWY-DQ-NO-DATA", "W2", None, at(0), at(24), 0.0, 1.0),
        ("ZWY-DQ-OFFLINE", "W2", None, at(0), at(24), 24.0, 2.0),
    ]


def test_zwy_dq_offline_more_than_two_hours_only(tmp_path):
    g = GoldenDay(devices=["W1"])
    g.drop("W1", None, [10, 11, 12])
    g.drop("W1", None, [20, 21])
    _, issues, _ = run(g, tmp_path)
    assert rounded(issues) == [("ZWY-DQ-OFFLINE", "W1", None, at(10), at(13), 3.0, 2.0)]


def test_zwy_dq_flatline_four_equal_hours_while_the_outlet_flows(tmp_path):
    g = GoldenDay(devices=["W1", "W2"])
    g.set("W1", "w01018", range(8, 12), value=123.4)  # 4 h: flagged
    g.set("W1", "w21003", range(8, 11), value=11.0)  # 3 h: not
    g.set("W2", "w01018", range(8, 13), value=123.4)  # 5 h, but no flow: not
    g.set("W2", "w00000", range(8, 13), value=0.0)
    _, issues, _ = run(g, tmp_path)
    assert rounded(issues) == [("ZWY-DQ-FLATLINE", "W1", "w01018", at(8), at(12), 4.0, 4.0)]


def test_zwy_dq_s_share_above_ten_percent(tmp_path):
    g = GoldenDay(devices=["W1"])
    g.set("W1", "w21003", range(0, 9), n_flag_s=2, n_valid=4)  # 18 of 144 = 12.5 %
    g.set("W1", "w01018", range(0, 7), n_flag_s=2, n_valid=4)  # 14 of 144 = 9.7 %
    _, issues, _ = run(g, tmp_path)
    assert rounded(issues) == [("ZWY-DQ-S-SHARE", "W1", "w21003", at(0), at(24), 0.125, 0.1)]


def test_zwy_dq_pinned_hours_and_days_just_under_the_limit(tmp_path):
    g = GoldenDay(devices=["W1", "G1"])
    g.set("G1", "a21002", [8], value_zs=28.6)
    g.set("G1", "a21002", [9], value_zs=29.0)
    g.set("G1", "a21002", [10], value_zs=29.5)
    g.set("G1", "a21002", [11], value_zs=29.9)
    g.set_daily("W1", "w01018", value=490.0)
    for back, value in ((1, 480.0), (2, 499.0), (3, 300.0)):
        g.daily_history.append(
            {
                "local_day": DAY.fromordinal(DAY.toordinal() - back),
                "mn": "W1",
                "pollutant": "w01018",
                "facility_id": "F1",
                "outlet_id": "F1-WS1",
                "stream": "wastewater",
                "value": value,
                "unit": "mg/L",
                "valid_hours": 24,
                "valid": True,
            }
        )
    breaches, issues, _ = run(g, tmp_path)
    assert breaches == []
    assert rounded(issues) == [
        ("ZWY-DQ-PINNED", "G1", "a21002", at(0), at(24), 4.0, 3.0),
        ("ZWY-DQ-PINNED", "W1", "w01018", at(0), at(24), 3.0, 2.0),
    ]


def test_zwy_dq_t_flag_is_a_possible_exceedance(tmp_path):
    g = GoldenDay(devices=["W1"])
    g.set("W1", "w21003", [14, 15], value=100.0, n_flag_t=6, n_valid=0, valid=False)
    _, issues, settings = run(g, tmp_path)
    assert rounded(issues) == [
        ("ZWY-DQ-HOUR-CAPTURE", "W1", "w21003", at(14), at(16), 2.0, 1.0),
        ("ZWY-DQ-T-FLAG", "W1", "w21003", at(14), at(16), 100.0, 45.0),
    ]
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        (msg,) = con.execute(
            "select message from dq_issues where control_id = 'ZWY-DQ-T-FLAG'"
        ).fetchone()
    assert "possible exceedance of DB11-307-2013-T3-NH3-N" in msg


def test_zwy_dq_unknown_mn_and_unknown_code_with_their_lines(tmp_path):
    g = GoldenDay(devices=["W1"])
    g.readings = [
        reading("X9", "w01018", 5, line=10, file="2024-06-03/wastewater/X9.log"),
        reading("X9", "w01018", 6, line=11, file="2024-06-03/wastewater/X9.log"),
        reading("W1", "w01018", 5, facility="F1", line=3, file="2024-06-03/wastewater/W1.log"),
        reading(
            "W1",
            "w99001",
            5,
            facility="F1",
            code_status="vendor",
            line=4,
            cn="2011",
            field="Rtd",
            file="2024-06-03/wastewater/W1.log",
        ),
    ]
    _, issues, settings = run(g, tmp_path)
    assert [(r[0], r[1], r[2], r[5]) for r in issues] == [
        ("ZWY-DQ-UNKNOWN-CODE", "W1", "w99001", 1.0),
        ("ZWY-DQ-UNKNOWN-MN", "X9", None, 2.0),
    ]
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        ev = {
            cid: json.loads(e)
            for cid, e in con.execute("select control_id, evidence from dq_issues").fetchall()
        }
    assert ev["ZWY-DQ-UNKNOWN-MN"]["sources"] == [
        {
            "file": "2024-06-03/wastewater/X9.log",
            "lines": "10-11",
            "first_line": 10,
            "last_line": 11,
            "n": 2,
        }
    ]
    assert ev["ZWY-DQ-UNKNOWN-CODE"]["sources"][0]["lines"] == "4-4"


def test_evidence_finds_the_lines_of_a_device_whose_mn_holds_a_quote(tmp_path):
    """The devices are also written into the evidence query as literals: quoted safely."""
    g = GoldenDay(devices=["W1"])
    g.readings = [
        reading("X'9", "w01018", h, line=20 + h, file="2024-06-03/wastewater/X9.log")
        for h in (5, 6, 7)
    ]
    _, issues, settings = run(g, tmp_path)
    assert ("ZWY-DQ-UNKNOWN-MN", "X'9") in [(r[0], r[1]) for r in issues]
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        (evidence,) = con.execute(
            "select evidence from dq_issues where control_id = 'ZWY-DQ-UNKNOWN-MN'"
        ).fetchone()
    assert json.loads(evidence)["sources"] == [
        {
            "file": "2024-06-03/wastewater/X9.log",
            "lines": "25-27",
            "first_line": 25,
            "last_line": 27,
            "n": 3,
        }
    ]


def test_every_control_has_a_golden_test():
    from expectations.controls import load_controls

    text = open(__file__, encoding="utf-8").read()
    for c in load_controls():
        assert c.control_id.lower().replace("-", "_") in text or c.control_id in text, c.control_id


def test_results_frames_match_the_table_columns(tmp_path):
    from expectations.findings import BREACHES, DQ_ISSUES

    settings = settings_for(tmp_path)
    GoldenDay(devices=["W1"]).write(settings)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        for table, schema in (("breaches", BREACHES), ("dq_issues", DQ_ISSUES)):
            cols = [
                r[0]
                for r in con.execute(
                    f"select column_name from duckdb_columns() where table_name = '{table}' order by column_index"
                ).fetchall()
            ]
            assert cols == schema.names()
    assert pl.DataFrame(schema=BREACHES).is_empty()
