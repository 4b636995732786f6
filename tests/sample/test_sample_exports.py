from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
from sample_reader import CATALOG, limit_for

from zwy.contracts import MONITORING_POINTS, OUTLETS
from zwy.sample.exports import EXPORT_HEADER
from zwy.sample.generate import Planted


def _exports(planted: Planted) -> list[str]:
    return [p for p in planted.totals if p.endswith(".csv")]


def test_export_decodes_as_gb18030_with_chinese_headers(run: tuple[Path, Planted]) -> None:
    out, planted = run
    files = _exports(planted)
    assert len(files) >= len(planted.days)
    for rel in files:
        path = out / planted.inbox / rel
        raw = path.read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:  # pragma: no cover - the file must not be UTF-8
            raise AssertionError(f"{rel} decodes as UTF-8")
        frame = pl.read_csv(path, encoding="gb18030", infer_schema=False)
        assert frame.columns == list(EXPORT_HEADER)
        assert frame.columns[:4] == ["企业名称", "监测点编码", "排口编号", "监测时间"]
        assert frame.height == planted.totals[rel].frames
        assert frame["企业名称"].str.starts_with("北京").all()


def test_export_planted_rows(run: tuple[Path, Planted]) -> None:
    out, planted = run
    for rel in _exports(planted):
        lines = (out / planted.inbox / rel).read_bytes().decode("gb18030").splitlines()
        items = [q for q in planted.quarantine if q.file == rel]
        assert sorted(q.rule for q in items) == ["export_time", "export_value"]
        frame = pl.read_csv(out / planted.inbox / rel, encoding="gb18030", infer_schema=False)
        times = frame["监测时间"].str.strptime(pl.Datetime, "%Y-%m-%d %H:%M:%S", strict=False)
        values = frame["小时均值"].cast(pl.Float64, strict=False)
        bad_time = {i + 2 for i in times.is_null().arg_true().to_list()}
        bad_value = {i + 2 for i in values.is_null().arg_true().to_list()}
        for q in items:
            cells = lines[q.line - 1].split(",")
            assert cells[1] == q.mn
            if q.rule == "export_time":
                assert bad_time == {q.line}
            else:
                assert bad_value == {q.line}


def test_export_values_below_limits(run: tuple[Path, Planted]) -> None:
    out, planted = run
    outlets = pl.read_csv(out / "registry" / "outlets.csv", schema=OUTLETS)
    points = pl.read_csv(out / "registry" / "monitoring_points.csv", schema=MONITORING_POINTS)
    by_outlet = {r["outlet_id"]: r for r in outlets.iter_rows(named=True)}
    exported = set(points.filter(pl.col("delivery") == "platform_export")["mn"])
    for rel in _exports(planted):
        day = date.fromisoformat(rel[:10])
        frame = (
            pl.read_csv(out / planted.inbox / rel, encoding="gb18030", infer_schema=False)
            .with_columns(
                v=pl.col("小时均值").cast(pl.Float64, strict=False),
                zs=pl.col("折算值").cast(pl.Float64, strict=False),
            )
            .drop_nulls("v")
        )
        assert set(frame["监测点编码"]) <= exported
        for (outlet_id,), g in frame.group_by("排口编号"):
            outlet = by_outlet[str(outlet_id)]
            assert g.filter(pl.col("污染物编码") == "w00000")["单位"].to_list() in (
                [],
                ["L/s"] * 24,
                ["L/s"] * 23,
            )
            for code in ("w01018", "w21003", "w21011", "w21001", "a21002"):
                lim = limit_for(CATALOG, outlet, code, day)
                rows = g.filter(pl.col("污染物编码") == code)
                if lim is None or rows.is_empty() or lim.high is None:
                    continue
                col = "zs" if code == "a21002" else "v"
                assert rows[col].max() < lim.high  # type: ignore[operator]
