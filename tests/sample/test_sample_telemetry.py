from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from sample_reader import CATALOG, Frame, limit_for, read_log, reference_o2

from zwy.contracts import MONITORING_POINTS, OUTLETS
from zwy.sample.generate import Planted


def _logs(out: Path, planted: Planted) -> dict[str, tuple[list[Frame], int, int]]:
    inbox = out / planted.inbox
    return {p: read_log(inbox / p) for p in planted.totals if p.endswith(".log")}


def _registry(out: Path) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    outlets = pl.read_csv(out / "registry" / "outlets.csv", schema=OUTLETS)
    points = pl.read_csv(out / "registry" / "monitoring_points.csv", schema=MONITORING_POINTS)
    by_outlet = {r["outlet_id"]: r for r in outlets.iter_rows(named=True)}
    by_mn = {r["mn"]: r for r in points.iter_rows(named=True)}
    return by_mn, by_outlet


def _iso(t: datetime) -> str:
    return t.isoformat()


def test_every_planted_malformed_frame_is_at_its_line(run: tuple[Path, Planted]) -> None:
    out, planted = run
    logs = _logs(out, planted)
    expected: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for q in planted.quarantine:
        if q.file.endswith(".log"):
            expected[q.file].add((q.line, q.rule))
    rules = set()
    for path, (frames, noise, n_lines) in logs.items():
        found = {(f.line, f.rule) for f in frames if f.rule is not None}
        assert found == expected.get(path, set()), path
        rules |= {r for _, r in found}
        tot = planted.totals[path]
        assert (tot.frames, tot.noise_lines, tot.lines) == (len(frames), noise, n_lines)
        assert tot.data_frames == len(frames) - len(found)
        assert planted.noise_lines[path] == noise
        assert all(len(f.text) - 10 <= 1024 for f in frames)
    assert rules == {
        "truncated",
        "crc",
        "cn",
        "st",
        "datatime",
        "syntax",
        "length",
        "flag",
        "mn",
        "duplicate",
    }


def test_planted_exceedances_recomputed_independently(run: tuple[Path, Planted]) -> None:
    """Annex D from the 2051 frames: water daily flow-weighted, stack hourly O2-corrected."""
    out, planted = run
    by_mn, by_outlet = _registry(out)
    found: set[tuple[str, str, str, str]] = set()
    for path, (frames, _, _) in _logs(out, planted).items():
        day = date.fromisoformat(path.split("/")[0])
        mins = [f for f in frames if f.rule is None and f.cn == "2051" and f.data_time is not None]
        mins = [f for f in mins if f.data_time is not None and f.data_time.date() == day]
        if not mins or mins[0].head["MN"] not in by_mn:
            continue
        mn = mins[0].head["MN"]
        outlet = by_outlet[by_mn[mn]["outlet_id"]]
        if outlet["stream"] == "wastewater":
            for code in ("w01018", "w21003", "w21011", "w21001", "w01001"):
                lim = limit_for(CATALOG, outlet, code, day)
                if lim is None:
                    continue
                ok = [
                    f for f in mins if f.cp[code]["Flag"] == "N" and f.cp["w00000"]["Flag"] == "N"
                ]
                if code == "w01001":
                    ph = sum(float(f.cp[code]["Avg"]) for f in ok) / len(ok)
                    assert lim.low is not None and lim.high is not None and lim.low < ph < lim.high
                    continue
                load = sum(float(f.cp[code]["Cou"]) for f in ok)
                vol = sum(float(f.cp["w00000"]["Cou"]) for f in ok)
                value = load / vol * 1000
                assert lim.high is not None
                if value > lim.high:
                    found.add((mn, code, "day", _iso(datetime(day.year, day.month, day.day))))
        else:
            lim = limit_for(CATALOG, outlet, "a21002", day)
            if lim is None or lim.high is None:
                continue
            ref = reference_o2(CATALOG, outlet)
            hours: dict[int, list[Frame]] = defaultdict(list)
            for f in mins:
                assert f.data_time is not None
                hours[f.data_time.hour].append(f)
            for hour, fs in hours.items():
                nox = [float(f.cp["a21002"]["Avg"]) for f in fs if f.cp["a21002"]["Flag"] == "N"]
                o2 = [float(f.cp["a19001"]["Avg"]) for f in fs if f.cp["a19001"]["Flag"] == "N"]
                if len(nox) * 10 < 45 or len(o2) * 10 < 45:
                    continue  # invalid hour (Annex D: >= 45 valid minutes)
                zs = sum(nox) / len(nox) * (21 - ref) / (21 - sum(o2) / len(o2))
                if zs > lim.high:
                    start = datetime(day.year, day.month, day.day, hour)
                    found.add((mn, "a21002", "hour", _iso(start)))
    expected = set()
    for e in planted.exceedances:
        start = datetime.fromisoformat(e.start_local)
        step = timedelta(hours=1) if e.period == "hour" else timedelta(days=1)
        for i in range(e.n_periods):
            expected.add((e.mn, e.pollutant, e.period, _iso(start + i * step)))
        assert e.value > e.limit_value
        assert datetime.fromisoformat(e.end_local) == start + e.n_periods * step
    assert found == expected
    if min(planted.days) >= "2017-04-01":
        assert {e.period for e in planted.exceedances} == {"day", "hour"}
        assert {e.pollutant for e in planted.exceedances} >= {"w01018", "a21002"}


def _frames_of(logs: dict[str, tuple[list[Frame], int, int]], mn: str) -> list[Frame]:
    return [f for path, (fs, _, _) in logs.items() if mn in path for f in fs if f.rule is None]


def _in(f: Frame, start: str, end: str) -> bool:
    return f.data_time is not None and start <= _iso(f.data_time) < end


def test_planted_periods_are_in_the_data(run: tuple[Path, Planted]) -> None:
    out, planted = run
    logs = _logs(out, planted)
    assert planted.flatlined and planted.offline and planted.fault_periods
    assert planted.t_flag_periods and planted.s_flag_share and planted.flag_periods
    for item in planted.flatlined:
        code = item.pollutants[0]
        fs = [f for f in _frames_of(logs, item.mn) if _in(f, item.start_local, item.end_local)]
        values = {f.cp[code]["Rtd" if f.cn == "2011" else "Avg"] for f in fs}
        assert len(values) == 1 and float(values.pop()) == item.value
        hours = {f.data_time.hour for f in fs if f.cn == "2061" and f.data_time}
        assert len(hours) >= 6
        assert all(float(f.cp["w00000"]["Rtd" if f.cn == "2011" else "Avg"]) > 0 for f in fs)
    for item in planted.offline:
        fs = [f for f in _frames_of(logs, item.mn) if _in(f, item.start_local, item.end_local)]
        assert fs == []
        span = datetime.fromisoformat(item.end_local) - datetime.fromisoformat(item.start_local)
        assert span >= timedelta(hours=4)
    for item in planted.fault_periods + planted.t_flag_periods + planted.flag_periods:
        fs = [
            f
            for f in _frames_of(logs, item.mn)
            if f.cn == "2011" and _in(f, item.start_local, item.end_local)
        ]
        assert fs
        codes = item.pollutants or [c for c in fs[0].cp if c != "a99948"]
        for f in fs:
            for code in codes:
                assert f.cp[code]["Flag"] == item.flag
    for item in planted.s_flag_share:
        fs = [f for f in _frames_of(logs, item.mn) if f.cn in ("2011", "2051", "2061")]
        day = item.windows_local[0][0][:10]
        fs = [
            f
            for f in fs
            if f.data_time and _iso(f.data_time).startswith(day) and item.pollutant in f.cp
        ]
        n_s = sum(f.cp[item.pollutant]["Flag"] == "S" for f in fs)
        assert (len(fs), n_s) == (item.n_values, item.n_s)
        assert item.share >= 0.3


def test_frame_level_plants(run: tuple[Path, Planted]) -> None:
    out, planted = run
    inbox = out / planted.inbox
    by_mn, _ = _registry(out)

    def line(path: str, no: int) -> str:
        text = (inbox / path).read_bytes().decode("ascii").splitlines()[no - 1]
        return text[text.find("##") :]

    assert len(planted.split_frames) == len(planted.days)
    for s in planted.split_frames:
        a, b = (line(s.file, n) for n in s.lines)
        assert "PNUM=2;PNO=1;" in a and "PNUM=2;PNO=2;" in b
        assert f"QN={s.qn};" in a and f"QN={s.qn};" in b
        assert "Flag=6;" in a or "Flag=7;" in a
    for d in planted.duplicates:
        assert d.related_line is not None
        assert line(d.file, d.line) == line(d.file, d.related_line)
    for o in planted.out_of_order:
        assert o.related_line is not None and o.related_line < o.line
        later = line(o.file, o.related_line)
        assert f"DataTime={o.data_time.replace('-', '').replace('T', '').replace(':', '')}" in line(
            o.file, o.line
        )
        assert later > "" and o.data_time < _dt_of(later)
    assert planted.late_packets
    for lp in planted.late_packets:
        text = line(lp.file, lp.line)
        assert "CN=2061" in text
        file_day = lp.file[:10]
        assert lp.data_time.endswith("T23:00:00") and lp.data_time[:10] < file_day
    for g in planted.gaps:
        frames, _, _ = read_log(inbox / g.file)
        times = {_iso(f.data_time) for f in frames if f.cn == g.cn and f.data_time}
        assert not times & set(g.data_times)
    for u in planted.unknown_mn:
        assert u.mn not in by_mn
        frames, _, _ = read_log(inbox / u.file)
        assert len(frames) == u.frames and all(f.rule is None for f in frames)
    for v in planted.vendor_codes:
        frames, _, _ = read_log(inbox / v.file)
        assert sum(1 for f in frames if f.rule is None and v.code in f.cp) == v.n_values


def _dt_of(text: str) -> str:
    raw = text.split("DataTime=", 1)[1][:14]
    return datetime.strptime(raw, "%Y%m%d%H%M%S").isoformat()


def test_minute_and_hour_data_agree_with_real_time(test_run: tuple[Path, Planted]) -> None:
    out, planted = test_run
    logs = _logs(out, planted)
    by_mn, _ = _registry(out)
    for path, (frames, _, _) in logs.items():
        mn = path.split("/")[-1].split("_")[0]
        if mn not in by_mn:
            continue
        day = date.fromisoformat(path[:10])
        ok = [f for f in frames if f.rule is None and f.data_time and f.data_time.date() == day]
        rtd: dict[datetime, list[Frame]] = defaultdict(list)
        for f in ok:
            if f.cn == "2011" and f.data_time:
                rtd[f.data_time.replace(minute=f.data_time.minute // 10 * 10, second=0)].append(f)
        per_period = 600 // by_mn[mn]["rtd_interval_s"]
        checked = 0
        for f in ok:
            if f.cn not in ("2051", "2061"):
                continue
            for fields in f.cp.values():
                assert float(fields["Min"]) <= float(fields["Avg"]) <= float(fields["Max"])
            if f.cn == "2051" and f.data_time and len(rtd[f.data_time]) == per_period:
                for code, fields in f.cp.items():
                    vals = [g.cp[code] for g in rtd[f.data_time]]
                    if fields["Flag"] != "N" or any(v["Flag"] != "N" for v in vals):
                        continue
                    mean = sum(float(v["Rtd"]) for v in vals) / len(vals)
                    dec = len(fields["Avg"].split(".")[1])
                    assert abs(mean - float(fields["Avg"])) <= 0.51 * 10**-dec + 1e-9
                    assert fields["Min"] == min((v["Rtd"] for v in vals), key=float)
                    if code == "w00000":
                        cou = (
                            sum(float(v["Rtd"]) for v in vals) * by_mn[mn]["rtd_interval_s"] / 1000
                        )
                        assert abs(cou - float(fields["Cou"])) < 0.002
                checked += 1
        assert checked > 100


def test_log_styles(demo_run: tuple[Path, Planted]) -> None:
    out, planted = demo_run
    inbox = out / planted.inbox
    raw = {p: (inbox / p).read_bytes() for p in planted.totals if p.endswith(".log")}
    assert any(b"\r\n" in d for d in raw.values())
    assert any(b"\r\n" not in d for d in raw.values())
    assert any(d.startswith(b"[20") and b"] ##" in d[:40] for d in raw.values())
    assert any(d.startswith(b"[20") and d[21:22] in (b"\r", b"\n") for d in raw.values())
    assert any(b"RECV ERROR timeout" in d for d in raw.values())
    assert any(b"00000006010400000064" in d for d in raw.values())
    assert any(b"B01-Rtd=" in d and b"QN=" not in d for d in raw.values())
    assert any(b"Flag=5;" in d for d in raw.values())
    assert any(b"-ZsRtd=" in d for d in raw.values())
    assert any(b"-ZsAvg=" in d for d in raw.values())
    tails = b"".join(d for d in raw.values())
    assert re.search(rb"&&[0-9a-f]{2}[a-f][0-9a-f]\r?\n", tails)  # lowercase hex CRC
    flags = set(re.findall(rb"-Flag=([A-Z])", tails))
    assert {b"N", b"F", b"M", b"S", b"D", b"C", b"T", b"B"} <= flags


@pytest.mark.parametrize("fixture", ["test_run", "demo_run"])
def test_no_frame_outside_its_day(request: pytest.FixtureRequest, fixture: str) -> None:
    out, planted = request.getfixturevalue(fixture)
    late = {(lp.file, lp.line) for lp in planted.late_packets}
    for path, (frames, _, _) in _logs(out, planted).items():
        day = date.fromisoformat(path[:10])
        for f in frames:
            if f.rule is None and f.data_time and f.data_time.date() != day:
                assert (path, f.line) in late


def test_no_unplanted_flatline(run: tuple[Path, Planted]) -> None:
    """Only the planted sensor repeats one value for >= 6 h (real-time or hourly data)."""
    out, planted = run
    planted_runs = {(f.mn, f.pollutants[0]) for f in planted.flatlined}
    found = set()
    for frames, _, _ in _logs(out, planted).values():
        ok = sorted(
            (f for f in frames if f.rule is None and f.data_time and f.cn in ("2011", "2061")),
            key=lambda f: (f.cn, f.data_time or datetime.min),
        )
        for cn, field in (("2011", "Rtd"), ("2061", "Avg")):
            series = [f for f in ok if f.cn == cn]
            codes = {c for f in series for c in f.cp}
            for code in codes:
                start: datetime | None = None
                last: datetime | None = None
                value = None
                for f in series:
                    assert f.data_time is not None
                    v = f.cp.get(code, {}).get(field)
                    if v != value or last is None or f.data_time - last > timedelta(hours=1):
                        start, value = f.data_time, v
                    last = f.data_time
                    assert start is not None
                    span = last - start + (timedelta(hours=1) if cn == "2061" else timedelta())
                    if span >= timedelta(hours=6) - timedelta(minutes=1):
                        found.add((f.head["MN"], code))
    assert found == planted_runs
