"""Simulated HJ 212 devices: smooth values, planted faults, receiver log files.

One device-day goes through five steps:

1. **Simulate** real-time values every ``rtd_interval_s`` (diurnal shift pattern, smooth
   noise, per-device levels) and keep normal values well below every catalog limit.
2. **Plant value faults** of the day plan (:func:`plan_day`): exceedances, a flatlined
   sensor, flag periods (D, S, T, M, C, F, B) and an offline gap.
3. **Quantise** to the decimals the device sends, then **aggregate** to minute (2051) and
   hourly (2061) data from the quantised real-time values: Min/Avg/Max over the period
   (N values only when the period is normal), ``Cou`` = flow x time (and load), period
   flags by HJ 212-2017 Appendix C (water: any abnormal value makes the period abnormal;
   gas: normal with >= 75 % normal values). ``DataTime`` of 2051/2061 is the period start.
4. **Build frames** (vectorised with Polars, CRCs with :mod:`zwy.hj212.crcvec`), ordered
   by arrival, with receiver noise lines, then **plant frame faults**: malformed frames,
   duplicates, out-of-order frames, gaps, a split pair, a late packet.
5. **Render** the receiver log (prefix style, line ending) and record every planted item
   with its file and 1-based line in the manifest types defined here.

Truth is checked before a day is written (:func:`check_truth`): every planted exceedance
exceeds its limit by at least 10 % after the Annex D aggregation of the frames that will
load, and every other (device, pollutant, period) stays at or below 90 % of its limit.
"""

from __future__ import annotations

import bisect
import random
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from zwy.hj212.crc import sign
from zwy.hj212.crcvec import crc_appendix_a_many, crc_modbus_many
from zwy.sample.district import Catalog, Device, District, Outlet

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
STR = npt.NDArray[np.str_]
BOOL = npt.NDArray[np.bool_]

DAY_S = 86_400
HOUR_S = 3_600
#: Non-normal data flags of HJ 212-2017 Table 8, in tie-break order.
FLAG_LETTERS = "FMSDCTB"
#: Decimals of ``-ZsRtd``/``-ZsAvg`` values.
ZS_DEC = 2
#: O2 content of air (formula 28's pole).
O2_AIR = 21.0


@dataclass(frozen=True)
class Pollutant:
    """A parameter a device sends, with its codes, unit and wire format."""

    code: str  # HJ 212-2017 code
    code_2005: str  # HJ/T 212-2005 code (原编码)
    name: str  # Chinese name used by platform exports
    unit: str
    dec: int  # decimals of Rtd/Min/Avg/Max
    cou_dec: int | None  # decimals of Cou, None when the parameter has no Cou
    zs: bool  # O2-corrected (-ZsRtd/-ZsAvg) when the device sends corrected values
    range_max: float  # top of the measuring range (value sent with flag T)


WATER: tuple[Pollutant, ...] = (
    Pollutant("w00000", "B01", "废水流量", "L/s", 3, 3, False, 200.0),
    Pollutant("w01018", "011", "化学需氧量", "mg/L", 1, 6, False, 1000.0),
    Pollutant("w21003", "060", "氨氮", "mg/L", 3, 6, False, 100.0),
    Pollutant("w01001", "001", "pH值", "无量纲", 2, None, False, 14.0),
    Pollutant("w21011", "101", "总磷", "mg/L", 3, 6, False, 20.0),
    Pollutant("w21001", "065", "总氮", "mg/L", 2, 6, False, 200.0),
)
GAS: tuple[Pollutant, ...] = (
    Pollutant("a00000", "B02", "废气流量", "m³/s", 3, 1, False, 50.0),
    Pollutant("a19001", "S01", "氧气含量", "%", 2, None, False, 25.0),
    Pollutant("a01012", "S03", "烟气温度", "℃", 1, None, False, 300.0),
    Pollutant("a21002", "03", "氮氧化物", "mg/m³", 2, 6, True, 200.0),
    Pollutant("a21026", "02", "二氧化硫", "mg/m³", 2, 6, True, 100.0),
    Pollutant("a34013", "01", "烟尘", "mg/m³", 2, 6, True, 50.0),
    Pollutant("a01011", "S02", "烟气流速", "m/s", 2, None, False, 40.0),
    Pollutant("a01014", "S05", "烟气湿度", "%", 2, None, False, 40.0),
)
POLLUTANTS: dict[str, Pollutant] = {p.code: p for p in WATER + GAS}
WATER_FLOW = "w00000"
GAS_FLOW = "a00000"
O2 = "a19001"
NOX = "a21002"
PH = "w01001"


def pollutants_of(device: Device) -> tuple[Pollutant, ...]:
    """Return the parameters a device sends, in frame order."""
    return WATER if device.stream == "wastewater" else GAS


# --- Manifest items ---------------------------------------------------------------------


@dataclass(frozen=True)
class QuarantineItem:
    """A frame (or export row) the pipeline must quarantine, and under which rule."""

    file: str
    line: int
    rule: str
    mn: str
    cn: str
    note: str


@dataclass(frozen=True)
class Exceedance:
    """A planted limit exceedance (after the Annex D aggregation)."""

    facility_id: str
    outlet_id: str
    mn: str
    pollutant: str
    period: str  # hour | day
    start_local: str
    end_local: str
    limit_id: str
    limit_value: float
    value: float  # lowest aggregated value of the run (all periods exceed)
    n_periods: int
    corrected_o2: bool  # the value is O2-corrected (formula 28)


@dataclass(frozen=True)
class PeriodItem:
    """A planted time window on some parameters of one device (flatline, flags, offline)."""

    facility_id: str
    outlet_id: str
    mn: str
    pollutants: list[str]  # empty: all parameters of the device
    flag: str  # data flag sent in the window ("" for offline, "N" for a flatline)
    start_local: str
    end_local: str
    value: float | None  # the constant value sent (flatline, T, S), else None
    note: str


@dataclass(frozen=True)
class SShareItem:
    """A device whose parameter is mostly manually set (S flag)."""

    facility_id: str
    outlet_id: str
    mn: str
    pollutant: str
    n_values: int
    n_s: int
    share: float
    share_by_cn: dict[str, float]
    windows_local: list[list[str]]


@dataclass(frozen=True)
class FrameItem:
    """A planted frame: duplicate, out-of-order or late packet."""

    file: str
    line: int
    mn: str
    cn: str
    data_time: str
    related_line: int | None  # duplicate: the original; out-of-order: the frame it follows
    note: str


@dataclass(frozen=True)
class GapItem:
    """Frames a device did not send (dropped), apart from offline windows."""

    file: str
    mn: str
    cn: str
    data_times: list[str]


@dataclass(frozen=True)
class SplitItem:
    """The one split (PNUM=2) frame pair of a day."""

    file: str
    lines: list[int]
    mn: str
    cn: str
    qn: str
    data_time: str


@dataclass(frozen=True)
class UnknownMnItem:
    """A log of a device that is not in the registry."""

    file: str
    mn: str
    frames: int


@dataclass(frozen=True)
class VendorCodeItem:
    """A vendor-specific pollutant code sent by a registered device."""

    file: str
    mn: str
    code: str
    n_values: int


@dataclass(frozen=True)
class FileTotals:
    """What a file holds (frames or export rows)."""

    lines: int
    frames: int  # HJ 212 frames found, or export data rows
    data_frames: int  # frames (rows) expected to load: frames - quarantined
    noise_lines: int
    quarantined: int
    bytes: int


@dataclass
class DayManifest:
    """Everything planted in one day's files."""

    quarantine: list[QuarantineItem] = field(default_factory=list)
    exceedances: list[Exceedance] = field(default_factory=list)
    flatlined: list[PeriodItem] = field(default_factory=list)
    fault_periods: list[PeriodItem] = field(default_factory=list)
    flag_periods: list[PeriodItem] = field(default_factory=list)
    offline: list[PeriodItem] = field(default_factory=list)
    s_flag_share: list[SShareItem] = field(default_factory=list)
    t_flag_periods: list[PeriodItem] = field(default_factory=list)
    gaps: list[GapItem] = field(default_factory=list)
    duplicates: list[FrameItem] = field(default_factory=list)
    out_of_order: list[FrameItem] = field(default_factory=list)
    late_packets: list[FrameItem] = field(default_factory=list)
    split_frames: list[SplitItem] = field(default_factory=list)
    unknown_mn: list[UnknownMnItem] = field(default_factory=list)
    vendor_codes: list[VendorCodeItem] = field(default_factory=list)
    noise_lines: dict[str, int] = field(default_factory=dict)
    totals: dict[str, FileTotals] = field(default_factory=dict)
    #: Solid-waste inputs (zwy.sample.waste): ``totals`` per file (records, quarantined,
    #: other_rows) and one list per planted kind (ledger_balance, storage_over_limit,
    #: hw_code, utilisation_low, manifest_unconfirmed, manifest_quantity,
    #: manifest_unlicensed, manifest_pending_ok, quarantine).
    solid_waste: dict[str, Any] = field(default_factory=dict)
    #: Construction-site dust (zwy.sample.dust): ``totals`` per file and one list per
    #: planted kind (diff_runs, absolute, offline, offline_outside_hours, station_na).
    dust: dict[str, Any] = field(default_factory=dict)

    def extend(self, other: DayManifest) -> None:
        """Append ``other``'s items to this manifest."""
        for mine, theirs in ((self.solid_waste, other.solid_waste), (self.dust, other.dust)):
            for key, value in theirs.items():
                if isinstance(value, dict):
                    mine.setdefault(key, {}).update(value)
                else:
                    mine.setdefault(key, []).extend(value)
        for name in (
            "quarantine",
            "exceedances",
            "flatlined",
            "fault_periods",
            "flag_periods",
            "offline",
            "s_flag_share",
            "t_flag_periods",
            "gaps",
            "duplicates",
            "out_of_order",
            "late_packets",
            "split_frames",
            "unknown_mn",
            "vendor_codes",
        ):
            getattr(self, name).extend(getattr(other, name))
        self.noise_lines.update(other.noise_lines)
        self.totals.update(other.totals)


# --- Day plan ---------------------------------------------------------------------------

Window = tuple[int, int]  # seconds from local midnight, [start, end)


@dataclass(frozen=True)
class ValuePlant:
    """A fault planted in the values of one device-day."""

    kind: str
    mn: str
    pollutants: tuple[str, ...]  # () = every parameter
    windows: tuple[Window, ...]
    limit_id: str = ""
    limit_value: float = 0.0
    target: float = 0.0


@dataclass(frozen=True)
class FramePlant:
    """A fault planted in the frames of one device-day."""

    kind: str  # malformed | duplicate | out_of_order | drop_rtd | drop_minute | split
    mn: str
    rule: str = ""


@dataclass(frozen=True)
class DayPlan:
    """Who gets which fault on one day (a function of district, day and catalog only)."""

    day: date
    value_plants: dict[str, tuple[ValuePlant, ...]]
    frame_plants: dict[str, tuple[FramePlant, ...]]
    late_mn: str | None  # its 2061 of 23:00 arrives in the next day's file


def _h(a: float, b: float) -> tuple[Window, ...]:
    return ((round(a * HOUR_S), round(b * HOUR_S)),)


#: Alternative sets of 2-hour blocks of manually set (S) values: 10 of 24 hours each.
_S_BLOCKS: tuple[tuple[Window, ...], ...] = tuple(
    tuple((h * HOUR_S, (h + 2) * HOUR_S) for h in hours)
    for hours in ((0, 4, 8, 12, 16), (1, 5, 9, 13, 17), (10, 13, 16, 19, 22))
)

_Filter = Callable[[Device], bool]


def _is_sewer(d: Device) -> bool:
    return d.outlet.outlet_type == "wastewater_sewer"


def _is_water(d: Device) -> bool:
    return d.stream == "wastewater"


def _is_stack(d: Device) -> bool:
    return d.stream == "exhaust_gas"


def _is_new_boiler(d: Device) -> bool:
    return d.stream == "exhaust_gas" and d.outlet.applies_to == "boiler_new"


def _any(d: Device) -> bool:
    return True


def _overlap(a: Sequence[Window], b: Sequence[Window]) -> bool:
    return any(x0 < y1 and y0 < x1 for x0, x1 in a for y0, y1 in b)


def _clash(p: ValuePlant, q: ValuePlant) -> bool:
    shared = not p.pollutants or not q.pollutants or bool(set(p.pollutants) & set(q.pollutants))
    return shared and _overlap(p.windows, q.windows)


def plan_day(district: District, day: date, catalog: Catalog) -> DayPlan:
    """Decide the day's planted faults: which device, parameter and time window.

    Each fault kind has eligible devices, parameter options and window options; devices
    are tried least-loaded first in an order that rotates with the day, and a fault never
    overlaps another one on the same device and parameter. A fault that fits nowhere is
    not planted (and not in the manifest).

    Args:
        district: the registry.
        day: the local day.
        catalog: limits (exceedances are planted only against limits in force that day).

    Returns:
        The plan; the benchmark district gets an empty plan.

    """
    devices = list(district.hj212_devices)
    if district.scale == "benchmark" or not devices:
        return DayPlan(day, {}, {}, None)
    k = day.toordinal()
    placed: dict[str, list[ValuePlant]] = {d.mn: [] for d in devices}

    def order(eligible: _Filter, salt: int, prefer: _Filter | None = None) -> list[Device]:
        cands = [d for d in devices if eligible(d)]
        rank = {d.mn: (i - k - salt) % len(cands) for i, d in enumerate(cands)}
        return sorted(
            cands,
            key=lambda d: (
                0 if prefer is None or prefer(d) else 1,
                len(placed[d.mn]),
                rank[d.mn],
            ),
        )

    def place(
        kind: str,
        eligible: _Filter,
        options: Callable[[Device], list[tuple[str, ...]]],
        windows: Sequence[tuple[Window, ...]],
        salt: int,
        prefer: _Filter | None = None,
    ) -> ValuePlant | None:
        for dev in order(eligible, salt, prefer):
            for pols in options(dev):
                lim_id, lim_val = "", 0.0
                if kind.startswith("exceed"):
                    lim = catalog.limit_for(dev.outlet, pols[0], day)
                    if lim is None or lim.limit_high is None:
                        continue
                    if kind == "exceed_hour" and catalog.o2_ref(dev.outlet) is None:
                        continue
                    lim_id, lim_val = lim.limit_id, lim.limit_high
                for j in range(len(windows)):
                    win = windows[(j + k) % len(windows)]
                    cand = ValuePlant(kind, dev.mn, pols, win, lim_id, lim_val)
                    if kind == "exceed_hour":
                        cand = ValuePlant(kind, dev.mn, (), win, lim_id, lim_val)
                    if any(_clash(cand, other) for other in placed[dev.mn]):
                        continue
                    placed[dev.mn].append(cand)
                    return cand
        return None

    def water_gas(water: list[str], gas: list[str]) -> Callable[[Device], list[tuple[str, ...]]]:
        return lambda d: [(p,) for p in (water if d.stream == "wastewater" else gas)]

    place("exceed_day", _is_sewer, lambda d: [("w01018",)], [_h(0, 24)], 1)
    place(
        "exceed_hour",
        _is_new_boiler,
        lambda d: [(NOX,)],
        [_h(9, 12), _h(13, 16), _h(17, 20), _h(6, 9)],
        2,
    )
    place(
        "exceed_day",
        _is_water,
        lambda d: [("w01018",)] if d.outlet.outlet_type == "wastewater_direct" else [("w21003",)],
        [_h(0, 24)],
        3,
        prefer=(lambda d: d.outlet.outlet_type == "wastewater_direct") if k % 2 else _is_sewer,
    )
    place(
        "s_share",
        _is_sewer,
        water_gas(["w01018", "w21001", "w21003"], []),
        _S_BLOCKS,
        7,
    )
    place(
        "flatline",
        _is_water,
        water_gas(["w21011", "w21001", "w21003", PH], []),
        [_h(10, 17), _h(1, 8), _h(14, 21)],
        4,
    )
    place(
        "fault_d",
        _any,
        water_gas(["w01018", "w21003"], [NOX, "a21026"]),
        [_h(2, 5), _h(19, 22), _h(6, 9), _h(13, 16)],
        5,
    )
    place(
        "offline",
        _any,
        lambda d: [()],
        [_h(3, 8), _h(14, 19), _h(16, 21), _h(1, 6), _h(18, 23)],
        6,
    )
    place(
        "t_flag",
        _is_sewer,
        water_gas(["w21003", "w21001", "w01018", "w21011"], []),
        [_h(20, 22), _h(11, 13), _h(7, 9)],
        8,
    )
    place(
        "flag_m",
        _is_water,
        water_gas(["w21011", "w21001"], []),
        [_h(9, 11), _h(15, 17), _h(18, 20)],
        9,
    )
    place(
        "flag_c",
        _is_stack,
        lambda d: [(NOX, "a21026")],
        [_h(3, 3 + 1 / 3), _h(4, 4 + 1 / 3), _h(22, 22 + 1 / 3)],
        10,
    )
    place(
        "flag_f",
        _is_water,
        water_gas(["w21001", PH], []),
        [_h(12, 13), _h(21, 22)],
        11,
    )
    place(
        "flag_b",
        _is_stack,
        lambda d: [()],
        [_h(1.5, 1.5 + 1 / 6), _h(11 + 1 / 6, 11 + 2 / 6)],
        12,
    )

    frame_kinds: list[tuple[str, str, _Filter]] = [
        ("malformed", "truncated", _any),
        ("malformed", "truncated", _any),
        ("malformed", "crc", _any),
        ("malformed", "cn", _any),
        ("malformed", "st", _any),
        ("malformed", "datatime", _any),
        ("malformed", "syntax", _any),
        ("malformed", "length", _any),
        ("malformed", "flag", lambda d: d.protocol == "2017"),
        ("malformed", "mn", _any),
        ("duplicate", "", _any),
        ("duplicate", "", _any),
        ("out_of_order", "", _any),
        ("drop_rtd", "", _any),
        ("drop_minute", "", _is_water),
        ("split", "", lambda d: _is_stack(d) and d.protocol == "2017"),
    ]
    frames: dict[str, list[FramePlant]] = {d.mn: [] for d in devices}
    for i, (kind, rule, eligible) in enumerate(frame_kinds):
        cands = [d for d in devices if eligible(d)]
        if cands:
            dev = cands[(k + i) % len(cands)]
            frames[dev.mn].append(FramePlant(kind, dev.mn, rule))

    day_exceed = {
        mn for mn, plants in placed.items() if any(p.kind == "exceed_day" for p in plants)
    }
    late_cands = [d for d in devices if d.mn not in day_exceed] or devices
    late_mn = late_cands[k % len(late_cands)].mn
    return DayPlan(
        day,
        {mn: tuple(v) for mn, v in placed.items() if v},
        {mn: tuple(v) for mn, v in frames.items() if v},
        late_mn,
    )


# --- Simulation -------------------------------------------------------------------------


@dataclass
class DaySeries:
    """Quantised real-time values of one device-day, as the logger holds them.

    ``q[code]`` holds integers in units of ``10**-dec`` (the sent decimals), so every value
    the files carry, and every aggregate, is computed from exactly what is written.
    """

    device: Device
    day: date
    dt: int
    q: dict[str, I64]
    zq: dict[str, I64]  # O2-corrected values (2 decimals), stacks only
    flags: dict[str, STR]
    present: BOOL  # the logger was online (frames sent)
    vendor: I64 | None  # vendor channel (3 decimals)

    @property
    def n(self) -> int:
        """Number of real-time samples."""
        return DAY_S // self.dt

    def value(self, code: str) -> F64:
        """Return the sent values of ``code`` as floats."""
        return self.q[code] / 10.0 ** POLLUTANTS[code].dec


def _smooth(rng: np.random.Generator, n: int, width: int) -> F64:
    """Return smooth noise of unit variance (moving sum of white noise)."""
    w = max(1, width)
    c = np.cumsum(rng.standard_normal(n + w))
    out: F64 = (c[w:] - c[:-w]) / np.sqrt(w)
    return out


def _shift(hour: F64) -> F64:
    """Return the day-shift activity pattern in [0, 1]: low at night, high 08-20."""
    on = 1.0 / (1.0 + np.exp(-(hour - 7.5) * 2.0))
    off = 1.0 / (1.0 + np.exp((hour - 20.5) * 2.0))
    out: F64 = on * off
    return out


def _window_mask(t: F64, windows: Sequence[Window]) -> BOOL:
    mask = np.zeros(t.shape, dtype=np.bool_)
    for a, b in windows:
        mask |= (t >= a) & (t < b)
    return mask


def _cap(catalog: Catalog, outlet: Outlet, code: str, default: float) -> float:
    high = catalog.strictest_high(outlet, code)
    return default if high is None else 0.8 * high


def simulate(
    device: Device,
    day: date,
    seed: int,
    catalog: Catalog,
    plants: Sequence[ValuePlant] = (),
) -> DaySeries:
    """Simulate one device-day and plant its value faults.

    Args:
        device: the device.
        day: the local day.
        seed: district seed; with the device index and the day it seeds the random
            streams, so devices and days are independent of each other.
        catalog: limits (normal values stay below 80 % of the strictest one) and
            reference O2.
        plants: the day's value faults for this device.

    Returns:
        The quantised series.

    """
    dt = device.rtd_interval_s
    n = DAY_S // dt
    t = np.arange(n, dtype=np.float64) * dt
    hour = t / HOUR_S
    lv = np.random.default_rng([seed, device.index, 0])
    rng = np.random.default_rng([seed, device.index, day.toordinal()])
    width = max(2, 1200 // dt)
    drift = rng.uniform(0.92, 1.08)
    shift = _shift(hour)
    v: dict[str, F64] = {}
    outlet = device.outlet

    def nz(scale: float) -> F64:
        out: F64 = 1.0 + scale * _smooth(rng, n, width) + 0.25 * scale * rng.standard_normal(n)
        return out

    zs_target: dict[str, F64] = {}
    o2_ref = catalog.o2_ref(outlet) or 3.5
    if device.stream == "wastewater":
        direct = outlet.outlet_type == "wastewater_direct"
        q0 = lv.uniform(2.0, 8.0) if direct else lv.uniform(4.0, 20.0)
        cod0 = lv.uniform(13.0, 16.5) if direct else lv.uniform(110.0, 200.0)
        nh0 = lv.uniform(0.25, 0.6) if direct else lv.uniform(10.0, 22.0)
        ph0 = lv.uniform(7.1, 7.6)
        tp0 = lv.uniform(0.08, 0.16) if direct else lv.uniform(1.2, 3.5)
        tn0 = lv.uniform(3.5, 5.5) if direct else lv.uniform(18.0, 35.0)
        v[WATER_FLOW] = np.maximum(q0 * drift * (0.35 + 0.65 * shift) * nz(0.08), 0.05 * q0)
        v["w01018"] = cod0 * drift * (0.85 + 0.3 * shift) * nz(0.06)
        v["w21003"] = nh0 * drift * (0.9 + 0.2 * shift) * nz(0.06)
        v[PH] = ph0 + 0.15 * (shift - 0.5) + 0.04 * _smooth(rng, n, width)
        v["w21011"] = tp0 * drift * (0.85 + 0.3 * shift) * nz(0.07)
        v["w21001"] = tn0 * drift * (0.9 + 0.2 * shift) * nz(0.05)
        for code in ("w01018", "w21003", "w21011", "w21001"):
            v[code] = np.clip(v[code], 0.0, _cap(catalog, outlet, code, 1e9))
        v[PH] = np.clip(v[PH], 6.9, 8.4)
    else:
        in_use = outlet.applies_to != "boiler_new"
        load = 0.55 + 0.45 * shift
        q0 = lv.uniform(2.0, 4.5)
        v[GAS_FLOW] = q0 * drift * load * nz(0.04)
        o2 = lv.uniform(5.6, 6.8) + 1.2 * (0.5 - shift) + 0.25 * _smooth(rng, n, width)
        v[O2] = np.clip(o2, 4.5, 8.5)
        v["a01012"] = lv.uniform(55.0, 75.0) + 12.0 * load + 1.5 * _smooth(rng, n, width)
        area = lv.uniform(0.35, 0.6)
        v["a01011"] = v[GAS_FLOW] / area * nz(0.02)
        v["a01014"] = lv.uniform(8.0, 12.0) + 0.6 * _smooth(rng, n, width)
        nox0 = lv.uniform(35.0, 50.0) if in_use else lv.uniform(16.0, 20.0)
        zs_target[NOX] = np.clip(
            nox0 * (0.95 + 0.1 * load) * nz(0.05), 1.0, _cap(catalog, outlet, NOX, 1e9)
        )
        zs_target["a21026"] = np.clip(lv.uniform(1.5, 4.0) * nz(0.08), 0.1, None)
        zs_target["a34013"] = np.clip(lv.uniform(0.8, 2.0) * nz(0.1), 0.05, None)

    flags = {p.code: np.full(n, "N", dtype="<U1") for p in pollutants_of(device)}
    present = np.ones(n, dtype=np.bool_)

    # Phase 1: exceedances (before the O2 conversion, so corrected values are on target).
    for plant in plants:
        mask = _window_mask(t, plant.windows)
        if plant.kind == "exceed_day":
            code = plant.pollutants[0]
            target = 1.25 * plant.limit_value
            flow = v[WATER_FLOW]
            mean = float((v[code] * flow).sum() / flow.sum())
            v[code] = v[code] * (target / mean)
        elif plant.kind == "exceed_hour":
            target = 1.35 * plant.limit_value
            zs_target[NOX] = np.where(mask, target * nz(0.03), zs_target[NOX])

    for code, zs in zs_target.items():
        v[code] = zs * (O2_AIR - v[O2]) / (O2_AIR - o2_ref)

    # Phase 2: flag periods, flatline, offline.
    for plant in plants:
        mask = _window_mask(t, plant.windows)
        codes = list(plant.pollutants) or [p.code for p in pollutants_of(device)]
        if plant.kind == "offline":
            present &= ~mask
        elif plant.kind == "flatline":
            code = codes[0]
            first = int(np.argmax(mask))
            v[code] = np.where(mask, v[code][first], v[code])
        elif plant.kind == "s_share":
            code = codes[0]
            for i, (a, b) in enumerate(plant.windows):
                block = (t >= a) & (t < b)
                setv = float(np.round(v[code][block].mean(), 0)) + (i % 3)
                v[code] = np.where(block, setv, v[code])
            flags[code][mask] = "S"
        elif plant.kind == "t_flag":
            code = codes[0]
            v[code] = np.where(mask, POLLUTANTS[code].range_max, v[code])
            flags[code][mask] = "T"
        elif plant.kind in ("fault_d", "flag_c", "flag_f", "flag_b", "flag_m"):
            letter = {"fault_d": "D", "flag_c": "C", "flag_f": "F", "flag_b": "B", "flag_m": "M"}[
                plant.kind
            ]
            for code in codes:
                if letter != "M":
                    v[code] = np.where(mask, 0.0, v[code])
                flags[code][mask] = letter

    q: dict[str, I64] = {}
    for p in pollutants_of(device):
        q[p.code] = np.maximum(np.rint(v[p.code] * 10.0**p.dec), 0).astype(np.int64)
    zq: dict[str, I64] = {}
    if device.stream == "exhaust_gas":
        o2v = q[O2] / 10.0 ** POLLUTANTS[O2].dec
        for code in zs_target:
            conc = q[code] / 10.0 ** POLLUTANTS[code].dec
            zq[code] = np.rint(conc * (O2_AIR - o2_ref) / (O2_AIR - o2v) * 10**ZS_DEC).astype(
                np.int64
            )
    vendor = None
    if device.vendor_code:
        vendor = np.rint((2.0 + 0.3 * _smooth(rng, n, width)).clip(0.0) * 1000).astype(np.int64)
    return DaySeries(device, day, dt, q, zq, flags, present, vendor)


# --- Aggregation ------------------------------------------------------------------------


@dataclass
class Aggregate:
    """Minute (2051) or hourly (2061) data computed by the logger from its real-time data."""

    cn: str
    period_s: int
    starts: I64  # period start, seconds from local midnight
    present: BOOL
    q: dict[str, dict[str, I64]]  # code -> field (Cou, Min, Avg, Max, ZsAvg) -> integers
    flags: dict[str, STR]

    def value(self, code: str, fld: str) -> F64:
        """Return a field of ``code`` as floats."""
        return self.q[code][fld] / 10.0 ** field_decimals(POLLUTANTS[code], fld)


def field_decimals(p: Pollutant, fld: str) -> int:
    """Return the decimals a field is sent with."""
    if fld.startswith("Zs"):
        return ZS_DEC
    if fld == "Cou":
        return p.cou_dec or 0
    return p.dec


def aggregate(s: DaySeries, period_s: int) -> Aggregate:
    """Aggregate real-time values into periods of ``period_s`` seconds.

    Args:
        s: the device-day.
        period_s: 600 for 2051 (MinInterval 10), 3600 for 2061.

    Returns:
        One row per period.

    """
    m = period_s // s.dt
    npd = s.n // m
    gas = s.device.stream == "exhaust_gas"
    present: BOOL = np.asarray(s.present.reshape(npd, m).all(axis=1), dtype=np.bool_)
    letters = np.array(list(FLAG_LETTERS))
    flow_code = GAS_FLOW if gas else WATER_FLOW
    flow = (s.value(flow_code)).reshape(npd, m)
    out_q: dict[str, dict[str, I64]] = {}
    out_f: dict[str, STR] = {}
    for p in pollutants_of(s.device):
        qv = s.q[p.code].reshape(npd, m)
        fl = s.flags[p.code].reshape(npd, m)
        is_n = fl == "N"
        n_n = is_n.sum(axis=1)
        ok = n_n * 4 >= 3 * m if gas else n_n == m
        counts = np.stack([(fl == c).sum(axis=1) for c in FLAG_LETTERS], axis=1)
        out_f[p.code] = np.where(ok, "N", letters[counts.argmax(axis=1)]).astype("<U1")
        sel = np.where(ok[:, None], is_n, True)
        cnt = sel.sum(axis=1)
        fields: dict[str, I64] = {
            "Min": np.where(sel, qv, np.iinfo(np.int64).max).min(axis=1),
            "Avg": np.rint(np.where(sel, qv, 0).sum(axis=1) / cnt).astype(np.int64),
            "Max": np.where(sel, qv, -1).max(axis=1),
        }
        if p.code in s.zq and s.device.sends_zs:
            zv = s.zq[p.code].reshape(npd, m)
            fields["ZsAvg"] = np.rint(np.where(sel, zv, 0).sum(axis=1) / cnt).astype(np.int64)
        if p.cou_dec is not None:
            val = qv / 10.0**p.dec
            if p.code == flow_code:
                amount = val.sum(axis=1) * s.dt / (1.0 if gas else 1000.0)
            else:
                # mg/L x L/s or mg/m3 x m3/s: mg per second; 1e-6 kg per mg
                amount = (val * flow).sum(axis=1) * s.dt * 1e-6
            fields["Cou"] = np.rint(amount * 10.0**p.cou_dec).astype(np.int64)
        out_q[p.code] = fields
    starts = np.arange(npd, dtype=np.int64) * period_s
    return Aggregate(
        "2051" if period_s < HOUR_S else "2061", period_s, starts, present, out_q, out_f
    )


# --- Frames -----------------------------------------------------------------------------


def _fmt(expr: pl.Expr, dec: int) -> pl.Expr:
    """Format non-negative integers in units of ``10**-dec`` as fixed-decimal text."""
    if dec == 0:
        return expr.cast(pl.String)
    scale = 10**dec
    return pl.format("{}.{}", expr // scale, (expr % scale).cast(pl.String).str.zfill(dec))


def _epoch_ms(day: date) -> int:
    return (day - date(1970, 1, 1)).days * DAY_S * 1000


def timestamps(day: date, rel_ms: I64, fmt: str) -> list[str]:
    """Format local clock times given in ms from ``day``'s midnight (vectorised)."""
    s = pl.Series(rel_ms.astype(np.int64) + _epoch_ms(day), dtype=pl.Int64)
    out: list[str] = s.cast(pl.Datetime("ms")).dt.strftime(fmt).to_list()
    return out


def header(device: Device, cn: str) -> str:
    """Return the data-segment text between QN and DataTime (``;ST=..;...;CP=&&``)."""
    if device.protocol == "2005":
        return f"ST={device.st};CN={cn};PW={device.pw};MN={device.mn};CP=&&"
    return f";ST={device.st};CN={cn};PW={device.pw};MN={device.mn};Flag={device.packet_flag};CP=&&"


def build_segments(
    device: Device,
    cn: str,
    table: pl.DataFrame,
    groups: Sequence[tuple[str, Sequence[tuple[str, int]]]],
) -> list[str]:
    """Build HJ 212 data segments (``QN=...;...;CP=&&...&&``) for every row of ``table``.

    Args:
        device: the sender (header fields and code style).
        cn: command code.
        table: columns ``qn`` (2017 only), ``dt`` (DataTime text), ``<code>|<field>``
            integers and ``<code>|Flag`` text.
        groups: per parameter, the wire code and the ``(field, decimals)`` to send before
            its ``-Flag``.

    Returns:
        The segments, in row order.

    """
    exprs: list[pl.Expr] = []
    if device.protocol == "2017":
        exprs += [pl.lit("QN="), pl.col("qn")]
    exprs += [pl.lit(header(device, cn) + "DataTime="), pl.col("dt")]
    for code, fields in groups:
        wire = code_on_wire(device, code)
        exprs.append(pl.lit(";"))
        for fld, dec in fields:
            exprs += [pl.lit(f"{wire}-{fld}="), _fmt(pl.col(f"{code}|{fld}"), dec), pl.lit(",")]
        exprs += [pl.lit(f"{wire}-Flag="), pl.col(f"{code}|Flag")]
    exprs.append(pl.lit("&&"))
    out: list[str] = table.select(pl.concat_str(exprs).alias("seg"))["seg"].to_list()
    return out


def code_on_wire(device: Device, code: str) -> str:
    """Return the code a device sends for ``code`` (2005 devices: the 原编码)."""
    if code in POLLUTANTS and device.protocol == "2005":
        return POLLUTANTS[code].code_2005
    return code


def sign_many(segments: Sequence[str], variant: str, lower: bool = False) -> list[str]:
    """Frame many data segments at once: ``##NNNN<segment>CCCC``.

    Args:
        segments: data segments (ASCII).
        variant: ``appendix_a``, ``modbus``, ``modbus_swapped`` (vectorised) or ``none``.
        lower: write the CRC in lowercase hex.

    Returns:
        The frames, without line terminators.

    """
    if variant == "none":
        framed = [sign(s, "none") for s in segments]
        return [f[:-4] + f[-4:].lower() for f in framed] if lower else framed
    raw = [s.encode("ascii") for s in segments]
    crcs = crc_many(raw, variant)
    table = _hex_table(lower)
    return [
        f"##{len(r):04d}{s}{table[c]}" for r, s, c in zip(raw, segments, crcs.tolist(), strict=True)
    ]


def crc_many(raw: Sequence[bytes], variant: str) -> I64:
    """Return the CRC of each data segment with ``variant`` (vectorised, :mod:`crcvec`).

    Args:
        raw: data segments as bytes.
        variant: ``appendix_a``, ``modbus`` or ``modbus_swapped``.

    Returns:
        The CRCs as integers.

    """
    if variant == "appendix_a":
        return crc_appendix_a_many(raw).astype(np.int64)
    crcs = crc_modbus_many(raw).astype(np.int64)
    if variant == "modbus_swapped":
        crcs = ((crcs & 0xFF) << 8) | (crcs >> 8)
    return crcs


@cache
def _hex_table(lower: bool) -> tuple[str, ...]:
    fmt = "{:04x}" if lower else "{:04X}"
    return tuple(fmt.format(i) for i in range(65536))


def _groups(device: Device, cn: str) -> list[tuple[str, list[tuple[str, int]]]]:
    out: list[tuple[str, list[tuple[str, int]]]] = []
    for p in pollutants_of(device):
        zs = p.zs and device.sends_zs
        if cn == "2011":
            fields = [("Rtd", p.dec)] + ([("ZsRtd", ZS_DEC)] if zs else [])
        else:
            fields = [("Cou", p.cou_dec)] if p.cou_dec is not None else []
            fields += [("Min", p.dec), ("Avg", p.dec), ("Max", p.dec)]
            fields += [("ZsAvg", ZS_DEC)] if zs else []
        out.append((p.code, fields))
    return out


@dataclass
class Entry:
    """One line-to-be of a receiver log: a frame or a noise line."""

    recv_ms: int  # arrival, ms from the file day's midnight
    text: str
    frame: bool
    cn: str = ""
    idx: int = -1  # row of the series (2011) or aggregate (2051/2061)
    day_offset: int = 0  # -1 for a late packet of the previous day
    seg: str = ""  # data segment (to re-sign planted variants)
    tag: str = ""  # planted role
    loaded: bool = True  # the pipeline should load it
    line: int = 0  # 1-based line, set when rendered


def _qn_ms(rng: np.random.Generator, base_s: I64, lo_ms: int, hi_ms: int) -> I64:
    out: I64 = base_s * 1000 + rng.integers(lo_ms, hi_ms, size=base_s.shape[0])
    return out


def frames_of(
    s: DaySeries,
    cn: str,
    agg: Aggregate | None,
    rng: np.random.Generator,
    rows: I64 | None = None,
    qn_override_ms: int | None = None,
) -> list[Entry]:
    """Build the signed frames of one command for a device-day.

    Args:
        s: the device-day.
        cn: 2011, 2051 or 2061.
        agg: the aggregate for 2051/2061.
        rng: draws upload delays.
        rows: restrict to these rows (default: every row while the logger is online).
        qn_override_ms: QN/arrival time for all rows (a late re-send).

    Returns:
        Entries with arrival time, frame text and data segment.

    """
    device = s.device
    if cn == "2011":
        present = s.present
        starts = np.arange(s.n, dtype=np.int64) * s.dt
    else:
        assert agg is not None
        present = agg.present
        starts = agg.starts
    idx = np.flatnonzero(present) if rows is None else rows
    base = starts[idx]
    if qn_override_ms is not None:
        qn = np.full(idx.shape[0], qn_override_ms, dtype=np.int64)
    elif cn == "2011":
        qn = _qn_ms(rng, base, 200, 2500)
    elif cn == "2051":
        qn = _qn_ms(rng, base + 600, 2000, 12000)
    else:
        qn = _qn_ms(rng, base + HOUR_S, 15000, 55000)
    recv = qn + rng.integers(30, 600, size=idx.shape[0])
    cols: dict[str, list[str] | npt.NDArray[Any]] = {
        "qn": timestamps(s.day, qn, "%Y%m%d%H%M%S%3f"),
        "dt": timestamps(s.day, base * 1000, "%Y%m%d%H%M%S"),
    }
    groups = _groups(device, cn)
    for code, fields in groups:
        for fld, _ in fields:
            if cn == "2011":
                arr = s.q[code] if fld == "Rtd" else s.zq[code]
                cols[f"{code}|{fld}"] = arr[idx]
            else:
                assert agg is not None
                cols[f"{code}|{fld}"] = agg.q[code][fld][idx]
        flags = s.flags[code] if agg is None else agg.flags[code]
        cols[f"{code}|Flag"] = flags[idx]
    all_groups: list[tuple[str, Sequence[tuple[str, int]]]] = list(groups)
    if cn == "2011" and device.vendor_code and s.vendor is not None:
        cols[f"{device.vendor_code}|Rtd"] = s.vendor[idx]
        cols[f"{device.vendor_code}|Flag"] = np.full(idx.shape[0], "N")
        all_groups.append((device.vendor_code, [("Rtd", 3)]))
    table = pl.DataFrame(cols)
    segs = build_segments(device, cn, table, all_groups)
    texts = sign_many(segs, device.crc_variant, device.hex_lower)
    return [
        Entry(int(r), t, True, cn, int(i), 0, sg)
        for r, t, sg, i in zip(recv.tolist(), texts, segs, idx.tolist(), strict=True)
    ]


def noise_entries(device: Device, day: date, seed: int) -> list[Entry]:
    """Return the receiver's non-HJ 212 lines for a noisy device: Modbus hex, errors."""
    if not device.noise:
        return []
    rng = random.Random(f"zwy-noise-{seed}-{device.index}-{day.toordinal()}")
    out: list[Entry] = []
    tid = rng.randrange(0x0100, 0x0F00)
    for _ in range(8):
        at = rng.randrange(0, DAY_S * 1000 - 60_000)
        for j in range(rng.randrange(2, 9)):
            tid += 1
            unit = "010400000064" if j % 2 == 0 else "010400C80078"
            out.append(Entry(at + j * 700, f"{tid & 0xFFFF:04X}00000006{unit}", False))
    for _ in range(3):
        out.append(Entry(rng.randrange(0, DAY_S * 1000), "RECV ERROR timeout", False))
    return out


# --- Planting frame faults --------------------------------------------------------------

_DATATIME = re.compile(r"DataTime=(\d{8})\d{6}")
_ST = re.compile(r"ST=\d+;")


def malformed(device: Device, seg: str, rule: str, rng: random.Random) -> tuple[str, str]:
    """Return a frame breaking exactly ``rule`` (made from a valid segment) and a note."""
    variant = device.crc_variant

    def framed(text: str, var: str = variant) -> str:
        return sign_many([text], var, device.hex_lower)[0]

    if rule == "truncated":
        full = framed(seg)
        cut = int(len(full) * rng.uniform(0.35, 0.8))
        return full[:cut], f"frame cut after {cut} of {len(full)} characters (no CRC, no tail)"
    if rule == "crc":
        return framed(seg, "none"), "CRC matches no algorithm (packet edited after signing)"
    if rule == "cn":
        return framed(seg.replace(";CN=2011;", ";CN=2099;", 1)), "CN=2099 is not in Table 9"
    if rule == "st":
        return framed(_ST.sub("ST=101;", seg, count=1)), "ST=101 is not in Table 5"
    if rule == "datatime":
        return (
            framed(_DATATIME.sub(lambda m: f"DataTime={m.group(1)}246100", seg, count=1)),
            "DataTime with hour 24 and minute 61",
        )
    if rule == "syntax":
        return framed(seg[:-2]), "CP area not closed by && (length and CRC match the text)"
    if rule == "length":
        full = framed(seg)
        n = int(full[2:6])
        return f"##{n - 2:04d}{full[6:]}", f"declared length {n - 2}, actual {n}"
    if rule == "flag":
        return (
            framed(re.sub(r";Flag=\d+;", ";Flag=N;", seg, count=1)),
            "packet Flag=N is not an integer 0-255",
        )
    if rule == "mn":
        return framed(re.sub(r"MN=[^;]*;", "MN=;", seg, count=1)), "empty MN"
    raise ValueError(f"unknown rule {rule!r}")


def split_pair(device: Device, seg: str) -> list[str]:
    """Split a data segment into a PNUM=2 pair (PNO=1, PNO=2), half the parameters each."""
    head, body = seg.split("CP=&&", 1)
    items = body[:-2].split(";")
    dt, groups = items[0], items[1:]
    half = (len(groups) + 1) // 2
    flag = device.packet_flag | 2  # D bit: packets are split
    head = re.sub(r";Flag=\d+;", f";Flag={flag};", head + "CP=&&", count=1)
    out = []
    for pno, part in ((1, groups[:half]), (2, groups[half:])):
        h = head.replace(";CP=&&", f";PNUM=2;PNO={pno};CP=&&")
        out.append(h + ";".join([dt, *part]) + "&&")
    return out


def render(entries: Sequence[Entry], device: Device, day: date) -> bytes:
    """Render entries as the receiver writes them and set each entry's line number."""
    stamps = timestamps(
        day, np.asarray([e.recv_ms for e in entries], dtype=np.int64), "[%Y-%m-%d %H:%M:%S]"
    )
    lines: list[str] = []
    for e, stamp in zip(entries, stamps, strict=True):
        if device.prefix_style == "stamp_line":
            lines.append(stamp)
            lines.append(e.text)
        elif device.prefix_style == "bracket":
            lines.append(f"{stamp} {e.text}")
        else:
            lines.append(e.text)
        e.line = len(lines)
    nl = device.line_ending
    return (nl.join(lines) + nl).encode("ascii")


# --- One device-day ---------------------------------------------------------------------


def local_iso(day: date, seconds: int) -> str:
    """Return ``day`` midnight + ``seconds`` as ISO local time (no offset)."""
    return (datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)).isoformat()


def log_path(device_mn: str, stream: str, day: date) -> str:
    """Return a log's path relative to the inbox root."""
    return f"{day.isoformat()}/{stream}/{device_mn}_{day.strftime('%Y%m%d')}.log"


@dataclass
class DeviceDayResult:
    """A rendered log and what was planted in it."""

    path: str
    data: bytes
    manifest: DayManifest


def _protected(plants: Sequence[ValuePlant]) -> list[Window]:
    return [w for p in plants if p.kind in ("exceed_hour", "offline") for w in p.windows]


def device_day(
    district: District,
    device: Device,
    day: date,
    plan: DayPlan,
    prev_plan: DayPlan,
    seed: int,
    catalog: Catalog,
) -> DeviceDayResult:
    """Simulate, plant and render one device's log for one day.

    Args:
        district: the registry.
        device: an ``hj212`` device.
        day: the local day the file holds.
        plan: the day's plan.
        prev_plan: the previous day's plan (for the late packet it hands over).
        seed: district seed.
        catalog: limits and reference O2.

    Returns:
        The file content and its manifest.

    """
    path = log_path(device.mn, device.stream, day)
    man = DayManifest()
    plants = plan.value_plants.get(device.mn, ())
    series = simulate(device, day, seed, catalog, plants)
    a51 = aggregate(series, device.min_interval_min * 60)
    a61 = aggregate(series, HOUR_S)
    rng = np.random.default_rng([seed, device.index, day.toordinal(), 1])
    entries = frames_of(series, "2011", None, rng)
    entries += frames_of(series, "2051", a51, rng)
    entries += frames_of(series, "2061", a61, rng)
    if plan.late_mn == device.mn:
        # The 2061 of 23:00 is not sent today: it arrives late, in tomorrow's file.
        entries = [e for e in entries if not (e.cn == "2061" and e.idx == 23)]
    entries += noise_entries(device, day, seed)
    entries.sort(key=lambda e: e.recv_ms)
    frng = random.Random(f"zwy-frames-{seed}-{device.index}-{day.toordinal()}")

    late_entry: Entry | None = None
    if prev_plan.late_mn == device.mn:
        prev_day = day - timedelta(days=1)
        prev = simulate(device, prev_day, seed, catalog, prev_plan.value_plants.get(device.mn, ()))
        prev61 = aggregate(prev, HOUR_S)
        at = frng.randrange(8 * 60_000, 25 * 60_000)
        late = frames_of(
            prev,
            "2061",
            prev61,
            rng,
            rows=np.asarray([23], dtype=np.int64),
            qn_override_ms=at + DAY_S * 1000,
        )[0]
        late.recv_ms = at + 250
        late.day_offset = -1
        late.tag = "late"
        pos = bisect.bisect([e.recv_ms for e in entries], late.recv_ms)
        entries.insert(pos, late)
        late_entry = late

    protected = _protected(plants)

    def candidates(cn: str = "2011") -> list[int]:
        out = []
        for i, e in enumerate(entries):
            if not e.frame or e.cn != cn or e.tag or e.day_offset:
                continue
            t0 = e.idx * (series.dt if cn == "2011" else a51.period_s)
            if t0 < 900 or t0 > DAY_S - 900:
                continue
            if any(a - 600 <= t0 < b + 600 for a, b in protected):
                continue
            out.append(i)
        return out

    fplants = plan.frame_plants.get(device.mn, ())
    split_entries: list[Entry] = []
    for fp in fplants:
        if fp.kind == "split":
            hours = [
                i
                for i, e in enumerate(entries)
                if e.frame
                and e.cn == "2061"
                and not e.tag
                and not e.day_offset
                and 1 <= e.idx <= 21
                and not any(a - HOUR_S <= e.idx * HOUR_S < b + HOUR_S for a, b in protected)
            ]
            if not hours:
                continue
            i = frng.choice(hours)
            orig = entries[i]
            parts = split_pair(device, orig.seg)
            texts = sign_many(parts, device.crc_variant, device.hex_lower)
            pair = [
                Entry(orig.recv_ms + j, t, True, "2061", orig.idx, 0, sg, f"split:{j + 1}")
                for j, (t, sg) in enumerate(zip(texts, parts, strict=True))
            ]
            entries[i : i + 1] = pair
            split_entries = pair

    dropped: dict[str, list[int]] = {}
    for fp in fplants:
        if fp.kind == "drop_rtd":
            cands = candidates()
            # at most one per hour, so every hour keeps >= 45 valid minutes
            by_hour: dict[int, list[int]] = {}
            for i in cands:
                by_hour.setdefault(entries[i].idx * series.dt // HOUR_S, []).append(i)
            for hr in frng.sample(sorted(by_hour), min(6, len(by_hour))):
                entries[frng.choice(by_hour[hr])].tag = "drop"
        elif fp.kind == "drop_minute":
            cands = candidates("2051")
            if cands:
                entries[frng.choice(cands)].tag = "drop"
    for e in entries:
        if e.tag == "drop":
            dropped.setdefault(e.cn, []).append(e.idx)
    entries = [e for e in entries if e.tag != "drop"]

    q_entries: list[tuple[Entry, str, str]] = []
    for fp in fplants:
        if fp.kind != "malformed":
            continue
        cands = candidates()
        if not cands:
            continue
        e = entries[frng.choice(cands)]
        e.text, note = malformed(device, e.seg, fp.rule, frng)
        e.tag, e.loaded = f"q:{fp.rule}", False
        q_entries.append((e, fp.rule, note))

    dup_pairs: list[tuple[Entry, Entry]] = []
    for fp in fplants:
        if fp.kind != "duplicate":
            continue
        cands = candidates()
        if not cands:
            continue
        i = frng.choice(cands)
        orig = entries[i]
        orig.tag = "dup:orig"
        copy = Entry(orig.recv_ms + 1, orig.text, True, orig.cn, orig.idx, 0, orig.seg, "dup")
        copy.loaded = False
        entries.insert(i + 1, copy)
        dup_pairs.append((orig, copy))

    ooo: list[tuple[Entry, Entry]] = []
    for fp in fplants:
        if fp.kind != "out_of_order":
            continue
        for i in frng.sample(candidates(), min(50, len(candidates()))):
            j = next(
                (
                    j
                    for j in range(i + 1, len(entries))
                    if entries[j].frame and entries[j].cn == "2011"
                ),
                None,
            )
            if j is None or entries[j].tag or entries[j].idx != entries[i].idx + 1:
                continue
            a, b = entries[i], entries[j]
            a.recv_ms, b.recv_ms = b.recv_ms, a.recv_ms
            entries[i], entries[j] = b, a
            a.tag, b.tag = "ooo:late", "ooo:early"
            ooo.append((a, b))
            break

    data = render(entries, device, day)

    # --- manifest ---
    fac, out = device.facility.facility_id, device.outlet.outlet_id
    dt_iso = _data_time_fn(series, a51, day)
    for e, rule, note in q_entries:
        man.quarantine.append(QuarantineItem(path, e.line, rule, device.mn, e.cn, note))
    for orig, copy in dup_pairs:
        man.quarantine.append(
            QuarantineItem(
                path,
                copy.line,
                "duplicate",
                device.mn,
                copy.cn,
                f"exact re-send of line {orig.line}",
            )
        )
        man.duplicates.append(
            FrameItem(path, copy.line, device.mn, copy.cn, dt_iso(copy), orig.line, "exact re-send")
        )
    for late_one, early_one in ooo:
        man.out_of_order.append(
            FrameItem(
                path,
                late_one.line,
                device.mn,
                late_one.cn,
                dt_iso(late_one),
                early_one.line,
                "arrived after the frame of the next real-time slot",
            )
        )
    if late_entry is not None:
        prev_day = day - timedelta(days=1)
        man.late_packets.append(
            FrameItem(
                path,
                late_entry.line,
                device.mn,
                "2061",
                local_iso(prev_day, 23 * HOUR_S),
                None,
                f"hourly data of {prev_day.isoformat()} 23:00 re-sent in the next day's file",
            )
        )
    if split_entries:
        qn = split_entries[0].seg[3:20] if device.protocol == "2017" else ""
        man.split_frames.append(
            SplitItem(
                path,
                [e.line for e in split_entries],
                device.mn,
                "2061",
                qn,
                dt_iso(split_entries[0]),
            )
        )
    for cn, idxs in sorted(dropped.items()):
        step = series.dt if cn == "2011" else a51.period_s
        man.gaps.append(
            GapItem(path, device.mn, cn, [local_iso(day, int(i) * step) for i in sorted(idxs)])
        )
    if device.vendor_code:
        n_v = sum(
            1 for e in entries if e.frame and e.cn == "2011" and e.loaded and not e.day_offset
        )
        man.vendor_codes.append(VendorCodeItem(path, device.mn, device.vendor_code, n_v))
    _period_items(man, device, day, plants, series)
    _s_share(man, device, day, plants, series, a51, a61, entries)

    frames = sum(1 for e in entries if e.frame)
    quarantined = sum(1 for e in entries if e.frame and not e.loaded)
    n_lines = data.count(b"\n")
    man.noise_lines[path] = n_lines - frames
    man.totals[path] = FileTotals(
        n_lines, frames, frames - quarantined, n_lines - frames, quarantined, len(data)
    )

    loaded51 = np.zeros(a51.starts.shape[0], dtype=np.bool_)
    for e in entries:
        if e.frame and e.cn == "2051" and e.loaded and not e.day_offset:
            loaded51[e.idx] = True
    man.exceedances.extend(check_truth(device, day, plants, a51, loaded51, catalog, fac, out))
    return DeviceDayResult(path, data, man)


def _data_time_fn(series: DaySeries, a51: Aggregate, day: date) -> Callable[[Entry], str]:
    def fn(e: Entry) -> str:
        step = series.dt if e.cn == "2011" else a51.period_s if e.cn == "2051" else HOUR_S
        return local_iso(day + timedelta(days=e.day_offset), e.idx * step)

    return fn


def _period_items(
    man: DayManifest, device: Device, day: date, plants: Sequence[ValuePlant], series: DaySeries
) -> None:
    fac, out = device.facility.facility_id, device.outlet.outlet_id
    for p in plants:
        a, b = p.windows[0][0], p.windows[-1][1]
        start, end = local_iso(day, a), local_iso(day, b)
        pols = list(p.pollutants)
        if p.kind == "flatline":
            code = pols[0]
            value = float(series.value(code)[a // series.dt])
            man.flatlined.append(
                PeriodItem(
                    fac,
                    out,
                    device.mn,
                    pols,
                    "N",
                    start,
                    end,
                    value,
                    f"{code} stuck at one value for {(b - a) // HOUR_S} h while flow > 0",
                )
            )
        elif p.kind == "fault_d":
            man.fault_periods.append(
                PeriodItem(fac, out, device.mn, pols, "D", start, end, 0.0, "instrument fault")
            )
        elif p.kind == "offline":
            man.offline.append(
                PeriodItem(
                    fac,
                    out,
                    device.mn,
                    [],
                    "",
                    start,
                    end,
                    None,
                    f"no frame at all for {(b - a) // HOUR_S} h",
                )
            )
        elif p.kind == "t_flag":
            man.t_flag_periods.append(
                PeriodItem(
                    fac,
                    out,
                    device.mn,
                    pols,
                    "T",
                    start,
                    end,
                    POLLUTANTS[pols[0]].range_max,
                    "value at the top of the measuring range: a lower bound",
                )
            )
        elif p.kind in ("flag_m", "flag_c", "flag_f", "flag_b"):
            letter = p.kind[-1].upper()
            notes = {
                "M": "maintenance (values kept, flagged M)",
                "C": "zero calibration (values 0); the hour has 40 valid minutes < 45: invalid",
                "F": "instrument stopped (values 0)",
                "B": "logger-instrument communication fault (values 0)",
            }
            man.flag_periods.append(
                PeriodItem(fac, out, device.mn, pols, letter, start, end, None, notes[letter])
            )


def _s_share(
    man: DayManifest,
    device: Device,
    day: date,
    plants: Sequence[ValuePlant],
    series: DaySeries,
    a51: Aggregate,
    a61: Aggregate,
    entries: Sequence[Entry],
) -> None:
    for p in plants:
        if p.kind != "s_share":
            continue
        code = p.pollutants[0]
        loaded: dict[str, set[int]] = {"2011": set(), "2051": set(), "2061": set()}
        for e in entries:
            if e.frame and e.loaded and not e.day_offset and e.cn in loaded:
                loaded[e.cn].add(e.idx)
        by_cn: dict[str, float] = {}
        n_all = s_all = 0
        for cn, flags in (
            ("2011", series.flags[code]),
            ("2051", a51.flags[code]),
            ("2061", a61.flags[code]),
        ):
            idx = np.asarray(sorted(loaded[cn]), dtype=np.int64)
            n = int(idx.shape[0])
            s = int((flags[idx] == "S").sum()) if n else 0
            by_cn[cn] = round(s / n, 4) if n else 0.0
            n_all += n
            s_all += s
        man.s_flag_share.append(
            SShareItem(
                device.facility.facility_id,
                device.outlet.outlet_id,
                device.mn,
                code,
                n_all,
                s_all,
                round(s_all / n_all, 4) if n_all else 0.0,
                by_cn,
                [[local_iso(day, a), local_iso(day, b)] for a, b in p.windows],
            )
        )


# --- Truth ------------------------------------------------------------------------------


class TruthError(RuntimeError):
    """The generated data do not match the plan (a generator bug, never user input)."""


def check_truth(
    device: Device,
    day: date,
    plants: Sequence[ValuePlant],
    a51: Aggregate,
    loaded51: BOOL,
    catalog: Catalog,
    facility_id: str,
    outlet_id: str,
) -> list[Exceedance]:
    """Recompute compliance from the minute data that will load and compare with the plan.

    Water: daily flow-weighted mean ``Σ Cou_p / Σ Cou_flow × 1e3`` over normal (N)
    periods (pH: arithmetic mean), against the day's limit. Stacks: hourly NOx from the
    N periods of valid hours (>= 45 valid minutes of NOx and of O2), corrected by formula
    28 with the hourly O2. Planted exceedances must exceed by >= 10 %; everything else must
    stay <= 90 % of its limit.

    Returns:
        The planted exceedances with their recomputed values.

    Raises:
        TruthError: the data disagree with the plan.

    """
    out: list[Exceedance] = []
    gas = device.stream == "exhaust_gas"
    planted = {
        p.pollutants[0] if p.pollutants else NOX: p for p in plants if p.kind.startswith("exceed")
    }
    for code in [p.code for p in pollutants_of(device)]:
        lim = catalog.limit_for(device.outlet, code, day)
        if lim is None:
            continue
        plant = planted.get(code)
        if not gas:
            ok = loaded51 & (a51.flags[code] == "N")
            if code == PH:
                val = float(a51.value(code, "Avg")[ok].mean())
                if lim.limit_low is not None and val < lim.limit_low + 0.3:
                    raise TruthError(f"{device.mn} {code} {day}: pH {val:.2f} near the low limit")
                if lim.limit_high is not None and val > lim.limit_high - 0.3:
                    raise TruthError(f"{device.mn} {code} {day}: pH {val:.2f} near the high limit")
                continue
            ok &= a51.flags[WATER_FLOW] == "N"
            load = a51.value(code, "Cou")[ok].sum()
            vol = a51.value(WATER_FLOW, "Cou")[ok].sum()
            val = float(load / vol * 1000.0)
            assert lim.limit_high is not None
            _judge(device, code, day, val, lim.limit_high, plant is not None)
            if plant is not None:
                out.append(
                    Exceedance(
                        facility_id,
                        outlet_id,
                        device.mn,
                        code,
                        "day",
                        local_iso(day, 0),
                        local_iso(day, DAY_S),
                        lim.limit_id,
                        lim.limit_high,
                        round(val, 3),
                        1,
                        False,
                    )
                )
            continue
        ref = catalog.o2_ref(device.outlet)
        assert lim.limit_high is not None and ref is not None
        per = HOUR_S // a51.period_s
        ok_c = (loaded51 & (a51.flags[code] == "N")).reshape(-1, per)
        ok_o = (loaded51 & (a51.flags[O2] == "N")).reshape(-1, per)
        c = a51.value(code, "Avg").reshape(-1, per)
        o = a51.value(O2, "Avg").reshape(-1, per)
        minutes = a51.period_s // 60
        exceed_hours: list[tuple[int, float]] = []
        for hr in range(24):
            if ok_c[hr].sum() * minutes < 45 or ok_o[hr].sum() * minutes < 45:
                continue
            zs = c[hr][ok_c[hr]].mean() * (O2_AIR - ref) / (O2_AIR - o[hr][ok_o[hr]].mean())
            in_window = plant is not None and any(a <= hr * HOUR_S < b for a, b in plant.windows)
            _judge(device, code, day, float(zs), lim.limit_high, in_window, hr)
            if in_window:
                exceed_hours.append((hr, float(zs)))
        if plant is not None:
            want = sum((b - a) // HOUR_S for a, b in plant.windows)
            if len(exceed_hours) != want:
                raise TruthError(
                    f"{device.mn} {code} {day}: {len(exceed_hours)} of {want} hours valid"
                )
            a, b = plant.windows[0]
            out.append(
                Exceedance(
                    facility_id,
                    outlet_id,
                    device.mn,
                    code,
                    "hour",
                    local_iso(day, a),
                    local_iso(day, b),
                    lim.limit_id,
                    lim.limit_high,
                    round(min(v for _, v in exceed_hours), 3),
                    len(exceed_hours),
                    True,
                )
            )
    return out


def _judge(
    device: Device, code: str, day: date, val: float, limit: float, planted: bool, hr: int = -1
) -> None:
    where = f"{device.mn} {code} {day} hour {hr}" if hr >= 0 else f"{device.mn} {code} {day}"
    if planted and val < 1.1 * limit:
        raise TruthError(f"{where}: planted exceedance only {val:.3f} vs limit {limit}")
    if not planted and val > 0.9 * limit:
        raise TruthError(f"{where}: unplanted value {val:.3f} too close to limit {limit}")


# --- Unknown device ---------------------------------------------------------------------


def unknown_device_log(
    district: District, day: date, seed: int, catalog: Catalog, mn: str
) -> DeviceDayResult:
    """Write a log of a device that is not in the registry (2051/2061 for 08:00-14:00)."""
    from dataclasses import replace

    template = next((d for d in district.devices if d.stream == "wastewater"), district.devices[0])
    device = replace(
        template,
        index=1_000_000 + day.toordinal() % 1000,
        mn=mn,
        protocol="2017",
        crc_variant="appendix_a",
        hex_lower=False,
        line_ending="\r\n",
        prefix_style="plain",
        noise=False,
        vendor_code=None,
        rtd_interval_s=60,
    )
    series = simulate(device, day, seed, catalog)
    rng = np.random.default_rng([seed, device.index, day.toordinal(), 1])
    a51 = aggregate(series, 600)
    a61 = aggregate(series, HOUR_S)
    rows51 = np.arange(8 * 6, 14 * 6, dtype=np.int64)
    rows61 = np.arange(8, 14, dtype=np.int64)
    entries = frames_of(series, "2051", a51, rng, rows=rows51)
    entries += frames_of(series, "2061", a61, rng, rows=rows61)
    entries.sort(key=lambda e: e.recv_ms)
    data = render(entries, device, day)
    path = log_path(mn, device.stream, day)
    man = DayManifest()
    n_lines = data.count(b"\n")
    man.unknown_mn.append(UnknownMnItem(path, mn, len(entries)))
    man.noise_lines[path] = 0
    man.totals[path] = FileTotals(n_lines, len(entries), len(entries), 0, 0, len(data))
    return DeviceDayResult(path, data, man)


# --- Benchmark scale --------------------------------------------------------------------

#: Devices per vectorised chunk at benchmark scale (bounds memory: ~150 MB per chunk).
BENCH_CHUNK = 64
#: Chunks rendered concurrently at benchmark scale (1 measured fastest on 2 busy cores).
BENCH_WORKERS = 1


#: One device in this many gets a value fault on a benchmark day (which ones rotates with
#: the day): about 2 % of the points, so the night's controls, evidence queries and alerts
#: are measured on findings rather than on an empty day.
BENCH_FAULT_EVERY = 50


def bench_plants(district: District, day: date, catalog: Catalog) -> dict[str, ValuePlant]:
    """Return the value faults of one benchmark day, by MN (at most one per device).

    The benchmark's frames send flag N throughout, so only faults that live in the values
    are planted, the three kinds the small scales plant the same way: a day-long COD
    exceedance (wastewater, against the limit in force), three hours of NOx over the limit
    (stacks whose standard has a reference O2) and seven flatlined hours of total
    phosphorus (wastewater).
    """
    k = day.toordinal()
    out: dict[str, ValuePlant] = {}
    position: dict[str, int] = {}
    for d in district.hj212_devices:
        # Counted within the stream: device indexes of one stream share residues.
        i = position[d.stream] = position.get(d.stream, -1) + 1
        slot = (i + k) % BENCH_FAULT_EVERY
        if slot == 0 and d.stream == "wastewater":
            lim = catalog.limit_for(d.outlet, "w01018", day)
            if lim is not None and lim.limit_high is not None:
                out[d.mn] = ValuePlant(
                    "exceed_day", d.mn, ("w01018",), _h(0, 24), lim.limit_id, lim.limit_high
                )
        elif slot == 0 and catalog.o2_ref(d.outlet) is not None:
            lim = catalog.limit_for(d.outlet, NOX, day)
            if lim is not None and lim.limit_high is not None:
                out[d.mn] = ValuePlant(
                    "exceed_hour", d.mn, (), _h(9, 12), lim.limit_id, lim.limit_high
                )
        elif slot == BENCH_FAULT_EVERY // 2 and d.stream == "wastewater":
            out[d.mn] = ValuePlant("flatline", d.mn, ("w21011",), _h(10, 17))
    return out


def _bench_chunk(
    devices: Sequence[Device],
    day: date,
    seed: int,
    catalog: Catalog,
    plants: dict[str, ValuePlant],
) -> tuple[list[bytes], DayManifest]:
    """Render the logs of devices sharing one frame template, vectorised across devices.

    Wastewater devices send only 2051 (every 10 min), stacks only 2011 (every 30 s); values
    come from the same simulation as the smaller scales, frames are built for all devices
    at once with Polars string expressions and signed with :mod:`zwy.hj212.crcvec`.
    ``plants`` (from :func:`bench_plants`) go into the simulation; the returned manifest
    holds what they became (exceedances recomputed from the data, flatlined windows).
    """
    first = devices[0]
    cn = "2051" if first.stream == "wastewater" else "2011"
    rng = np.random.default_rng([seed, first.index, day.toordinal(), 2])
    parts: dict[str, list[npt.NDArray[Any]]] = {"dev": [], "qn_ms": [], "dt_s": []}
    sizes: list[int] = []
    man = DayManifest()
    for device in devices:
        plant = plants.get(device.mn)
        series = simulate(device, day, seed, catalog, () if plant is None else (plant,))
        agg = aggregate(series, device.min_interval_min * 60) if cn == "2051" else None
        if plant is not None:
            # Every frame of a benchmark log loads, so the truth is computed over all
            # minute periods.
            a51 = agg if agg is not None else aggregate(series, device.min_interval_min * 60)
            loaded = np.ones(a51.starts.shape[0], dtype=np.bool_)
            fac, out_id = device.facility.facility_id, device.outlet.outlet_id
            man.exceedances.extend(
                check_truth(device, day, (plant,), a51, loaded, catalog, fac, out_id)
            )
            _period_items(man, device, day, (plant,), series)
        n = series.n if agg is None else agg.starts.shape[0]
        starts = np.arange(n, dtype=np.int64) * (series.dt if agg is None else agg.period_s)
        lo, hi = (200, 2500) if agg is None else (602_000, 612_000)
        sizes.append(n)
        parts["dev"].append(np.full(n, len(sizes) - 1, dtype=np.int64))
        parts["qn_ms"].append(starts * 1000 + rng.integers(lo, hi, size=n))
        parts["dt_s"].append(starts)
        for code, fields in _groups(device, cn):
            for fld, _ in fields:
                if agg is None:
                    arr = series.q[code] if fld == "Rtd" else series.zq[code]
                else:
                    arr = agg.q[code][fld]
                parts.setdefault(f"{code}|{fld}", []).append(arr)
    table = pl.DataFrame({k: np.concatenate(v) for k, v in parts.items()})
    mns = pl.Series("mns", [d.mn for d in devices], dtype=pl.String)
    table = table.with_columns(mn=mns.gather(table["dev"]))
    base = _epoch_ms(day)
    table = table.with_columns(
        qn=(pl.col("qn_ms") + base).cast(pl.Datetime("ms")).dt.strftime("%Y%m%d%H%M%S%3f"),
        dt=(pl.col("dt_s") * 1000 + base).cast(pl.Datetime("ms")).dt.strftime("%Y%m%d%H%M%S"),
    )
    exprs: list[pl.Expr] = []
    if first.protocol == "2017":
        exprs += [pl.lit("QN="), pl.col("qn"), pl.lit(f";ST={first.st};CN={cn};PW={first.pw};MN=")]
        exprs += [pl.col("mn"), pl.lit(f";Flag={first.packet_flag};CP=&&DataTime="), pl.col("dt")]
    else:
        exprs += [pl.lit(f"ST={first.st};CN={cn};PW={first.pw};MN="), pl.col("mn")]
        exprs += [pl.lit(";CP=&&DataTime="), pl.col("dt")]
    for code, fields in _groups(first, cn):
        wire = code_on_wire(first, code)
        exprs.append(pl.lit(";"))
        for fld, dec in fields:
            exprs += [pl.lit(f"{wire}-{fld}="), _fmt(pl.col(f"{code}|{fld}"), dec), pl.lit(",")]
        exprs.append(pl.lit(f"{wire}-Flag=N"))
    exprs.append(pl.lit("&&"))
    segs = table.select(seg=pl.concat_str(exprs))["seg"]
    raw = [s.encode("ascii") for s in segs.to_list()]
    crcs = crc_many(raw, first.crc_variant)
    hex_col = pl.Series("crc", np.asarray(_hex_table(first.hex_lower))[crcs])
    framed = pl.DataFrame({"seg": segs, "crc": hex_col}).select(
        pl.concat_str(
            pl.lit("##"),
            pl.col("seg").str.len_bytes().cast(pl.String).str.zfill(4),
            pl.col("seg"),
            pl.col("crc"),
        )
    )
    texts: list[str] = framed.to_series().to_list()
    out: list[bytes] = []
    pos = 0
    for device, n in zip(devices, sizes, strict=True):
        part = texts[pos : pos + n]
        pos += n
        nl = device.line_ending
        out.append((nl.join(part) + nl).encode("ascii"))
    return out, man


def benchmark_day(district: District, day: date, seed: int, inbox: Path) -> DayManifest:
    """Write one day of the benchmark district and return its totals and value faults.

    Devices are grouped by frame template (stream, protocol, CRC variant, Zs, Flag) and
    processed in chunks of :data:`BENCH_CHUNK`; each file is written atomically.

    Args:
        district: the benchmark district.
        day: the local day.
        seed: district seed.
        inbox: the inbox root.

    Returns:
        A manifest of the per-file totals and the value faults of :func:`bench_plants`
        (no frame faults: every frame of a benchmark log is valid).

    """
    from zwy.sample.district import load_catalog, write_atomic

    catalog = load_catalog()
    plants = bench_plants(district, day, catalog)
    man = DayManifest()
    groups: dict[tuple[object, ...], list[Device]] = {}
    for d in district.hj212_devices:
        key = (d.stream, d.protocol, d.crc_variant, d.hex_lower, d.sends_zs, d.packet_flag, d.pw)
        groups.setdefault(key, []).append(d)
    chunks = [
        members[i : i + BENCH_CHUNK]
        for members in groups.values()
        for i in range(0, len(members), BENCH_CHUNK)
    ]

    def run(chunk: list[Device]) -> tuple[list[tuple[str, FileTotals]], DayManifest]:
        done = []
        logs, planted = _bench_chunk(chunk, day, seed, catalog, plants)
        for device, data in zip(chunk, logs, strict=True):
            path = log_path(device.mn, device.stream, day)
            write_atomic(inbox / path, data)
            n = data.count(b"\n")
            done.append((path, FileTotals(n, n, n, 0, 0, len(data))))
        return done, planted

    # Threads, not processes: Polars and numpy release the GIL in the heavy steps, and
    # forking a multi-threaded Polars process is unsafe. Results are merged in chunk
    # order, so the manifest does not depend on scheduling.
    with ThreadPoolExecutor(max_workers=BENCH_WORKERS) as pool:
        for done, planted in pool.map(run, chunks):
            man.extend(planted)
            for path, totals in done:
                man.noise_lines[path] = 0
                man.totals[path] = totals
    return man
