"""Solid-waste controls over a generated district: exactly what was planted is flagged."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from expectations.controls import load_waste_controls
from expectations.waste import working_day_index
from zwy.pipeline import run_day
from zwy.sample.generate import generate_district
from zwy.settings import Settings
from zwy.waste.reference import classify_code, load_holidays, load_hw_codes, working_days_after

DAY = date(2024, 5, 1)
SHARED_LIST = (
    Path(__file__).resolve().parents[3] / "shared" / "domain" / "hazardous_waste_list_2021.csv"
)


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict]:
    root = tmp_path_factory.mktemp("waste")
    generate_district(root / "sample", [DAY], scale="test")
    settings = Settings.for_district(root / "data", root / "sample")
    assert run_day(DAY, settings).status == "success"
    planted = json.loads((root / "sample" / "planted.json").read_text())["solid_waste"]
    return settings, planted


def q(settings: Settings, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql).pl()


def findings(settings: Settings) -> pl.DataFrame:
    return q(
        settings,
        "select control_id, subject, waste_code, facility_id, observed, severity, "
        "verified_status, legal_basis, message, evidence from breaches where control_id like 'ZWY-SW-%' "
        "union all by name "
        "select control_id, subject, waste_code, facility_id, observed, severity, "
        "verified_status, legal_basis, message, evidence from dq_issues where control_id like 'ZWY-SW-%'",
    )


def test_findings_are_exactly_the_planted_faults(district):
    settings, planted = district
    got = findings(settings)
    expected = set()
    for p in planted["ledger_balance"]:
        expected.add(("ZWY-SW-LEDGER-BALANCE", f"{p['file']}:{p['row']}"))
    for p in planted["storage_over_limit"]:
        expected.add(("ZWY-SW-STORAGE", f"{p['file']}:{p['row']}"))
    for p in planted["hw_code"]:
        expected.add(("ZWY-SW-HW-CODE", f"{p['file']}:{p['row']}"))
    for p in planted["utilisation_low"]:
        expected.add(("ZWY-SW-UTILISATION", f"general waste {p['facility_id']}"))
    for key, cid in (
        ("manifest_unconfirmed", "ZWY-SW-MANIFEST-CONFIRM"),
        ("manifest_quantity", "ZWY-SW-MANIFEST-QTY"),
        ("manifest_unlicensed", "ZWY-SW-RECEIVER-LICENCE"),
    ):
        for p in planted[key]:
            expected.add((cid, f"manifest {p['manifest_no']}"))
    matched = set()
    for r in got.iter_rows(named=True):
        hits = {e for e in expected if e[0] == r["control_id"] and e[1] in r["subject"]}
        assert len(hits) == 1, (r["control_id"], r["subject"])
        matched |= hits
    assert matched == expected and got.height == len(expected)
    # Every control of the catalog found its planted case.
    assert set(got["control_id"]) == {c.control_id for c in load_waste_controls()}


def test_a_manifest_within_five_working_days_is_not_flagged(district):
    settings, planted = district
    ok = planted["manifest_pending_ok"][0]
    manifests = q(settings, "select * from stg_waste_manifests")
    no = manifests.filter((pl.col("source_file") == ok["file"]) & (pl.col("row") == ok["line"]))
    assert no.height == 1 and no["confirmed_date"][0] is None
    assert not findings(settings)["subject"].str.contains(no["manifest_no"][0]).any()


def test_findings_carry_evidence_basis_and_status(district):
    settings, _ = district
    got = findings(settings)
    for r in got.iter_rows(named=True):
        ev = json.loads(r["evidence"])
        src = ev["sources"][0]
        assert src["file"].startswith("2024-05-01/solid_waste/")
        assert "waste_sql" in ev and "stg_waste_" in ev["waste_sql"]
        assert r["legal_basis"] and r["message"]
    status = dict(got.select("control_id", "verified_status").unique().iter_rows())
    assert status["ZWY-SW-MANIFEST-CONFIRM"] == "verified"
    assert status["ZWY-SW-STORAGE"] == "policy"  # generators: a bureau policy, not the law
    assert status["ZWY-SW-RECEIVER-LICENCE"] == "unverified"
    licence = got.filter(pl.col("control_id") == "ZWY-SW-RECEIVER-LICENCE").row(0, named=True)
    assert "UNVERIFIED" in licence["message"]
    # The evidence SQL runs and shows the manifest.
    sql = json.loads(licence["evidence"])["waste_sql"]
    assert q(settings, sql).height >= 1


def test_rerun_gives_the_same_findings(district):
    settings, _ = district
    before = findings(settings).sort("control_id", "subject")
    run_day(DAY, settings)
    after = findings(settings).sort("control_id", "subject")
    assert before.drop("evidence").equals(after.drop("evidence"))


def test_working_days_skip_weekends_and_holidays_and_count_make_up_days():
    h = load_holidays()
    # 2024-04-28 (Sunday) was worked, 2024-05-01..05 were Labour Day holidays.
    assert working_days_after(date(2024, 4, 26), date(2024, 4, 28), h) == 1
    assert working_days_after(date(2024, 4, 30), date(2024, 5, 6), h) == 1
    assert working_days_after(date(2024, 4, 19), date(2024, 5, 1), h) == 8
    index = working_day_index(date(2024, 4, 19), date(2024, 5, 6), h)
    assert index[date(2024, 5, 1)] - index[date(2024, 4, 19)] == 8
    assert set(h["status"]) == {"unverified"}  # transcribed, not checked against gov.cn


def test_hw_codes_classify():
    codes = load_hw_codes()
    assert codes.height == 467 and codes["hw_category"].n_unique() == 46
    assert classify_code("900-041-49", codes) == ("listed", "HW49")
    assert classify_code("900-000-08", codes) == ("tested", "HW08")
    assert classify_code("900-123-49", codes) == ("unknown", "HW49")
    assert classify_code("HW49-041", codes) == ("malformed", None)


@pytest.mark.real
@pytest.mark.skipif(not SHARED_LIST.is_file(), reason="../shared/domain is not beside the project")
def test_derived_hw_table_is_reproduced_from_the_shared_list(tmp_path):
    from zwy.reference import derive_hw_codes

    out = tmp_path / "hw.csv"
    assert derive_hw_codes.main([str(SHARED_LIST), "--out", str(out)]) == 0
    shipped = Path(derive_hw_codes.__file__).with_name("hw_codes_2021.csv")
    assert out.read_text(encoding="utf-8") == shipped.read_text(encoding="utf-8")
