"""The sample district's registry: facilities, outlets and HJ 212 devices of an E-Town park.

Everything is derived from ``(scale, seed)`` alone, so a registry is reproducible. The
``test`` and ``demo`` districts follow a fixed recipe (which outlet types, protocols, CRC
variants and log styles exist) with seeded names, credit codes and MNs; the ``benchmark``
district is laid out programmatically (2,000 monitoring points).

The CSV files written by :func:`write_registry` have exactly the columns of
:data:`zwy.contracts.FACILITIES`, :data:`zwy.contracts.OUTLETS` and
:data:`zwy.contracts.MONITORING_POINTS`. The device attributes that are not part of the
contracts (CRC variant, log style, ...) describe how the simulated device behaves; the
pipeline has to discover them from the data.

Limits and reference O2 are read from ``expectations/catalog`` (never invented here): the
generator plants exceedances against them and keeps everything else below them.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from zwy.contracts import FACILITIES, MONITORING_POINTS, OUTLETS

SCALES: tuple[str, ...] = ("test", "demo", "benchmark")

#: Administrative division code used by E-Town (北京经济技术开发区) registrations.
ETOWN_DIVISION = "110302"

# Fictitious two-character trade names ("字号"); combined with an industry suffix they give
# realistic park company names. Well-known real brands are deliberately left out.
# fmt: off
BRAND_WORDS: tuple[str, ...] = (
    "京瑞", "亦城", "凯德", "鼎盛", "恒信", "华辰", "博远", "德晟", "安泰", "众诚",
    "宏达", "天宇", "中瑞", "金诺", "海川", "星源", "汇通", "嘉禾", "锦程", "立德",
    "明辉", "诺康", "鹏程", "启元", "瑞丰", "尚品", "泰和", "拓维", "万隆", "祥云",
    "鑫源", "雅博", "宇航", "兆丰", "卓越", "博奥", "晨光", "丰华", "高科", "冠宇",
    "弘毅", "佳讯", "建业", "金桥", "凯瑞", "蓝天", "朗润", "龙腾", "美达", "南星",
    "欧亚", "普瑞", "千禧", "荣盛", "润泽", "盛达", "顺通", "天成", "同创", "万通",
    "伟业", "新元", "信达", "旭日", "亚泰", "易通", "远航", "智达", "卓泰", "安捷",
    "百川", "博识", "昌盛", "创新", "达远", "大成", "鼎新", "恒泰", "宏图", "华宇",
    "吉泰", "嘉诚", "金鼎", "京城", "康泰", "乐华", "利达", "联创", "领航", "茂源",
    "明德", "宁泰", "鹏飞", "齐心", "瑞达", "盛世", "世纪", "四方", "泰达", "腾飞",
    "天元", "新世", "益康", "永泰", "亦科", "中恒", "国瑞", "华盛", "和信", "景泰",
)
# fmt: on


@dataclass(frozen=True)
class Industry:
    """An industry of the park: name suffix and GB/T 4754-2017 class."""

    key: str
    suffix: str
    label: str


INDUSTRIES: tuple[Industry, ...] = (
    Industry("auto", "汽车零部件有限公司", "C3670 汽车零部件及配件制造"),
    Industry("biopharma", "生物医药有限公司", "C2761 生物药品制造"),
    Industry("ic", "半导体科技有限公司", "C3973 集成电路制造"),
    Industry("electronics", "电子科技有限公司", "C3982 电子电路制造"),
    Industry("machinery", "精密机械有限公司", "C3484 机械零部件加工"),
    Industry("food", "食品有限公司", "C1411 糕点、面包制造"),
    Industry("materials", "新材料科技有限公司", "C2659 其他合成材料制造"),
    Industry("meddevice", "医疗器械有限公司", "C3581 医疗诊断、监护及治疗设备制造"),
    Industry("opto", "光电科技有限公司", "C3976 光电子器件制造"),
    Industry("heating", "热力有限公司", "D4430 热力生产和供应"),
    Industry("equipment", "智能装备有限公司", "C3499 其他未列明通用设备制造业"),
    Industry("pharma", "制药有限公司", "C2720 化学药品制剂制造"),
)
_INDUSTRY = {i.key: i for i in INDUSTRIES}


@dataclass(frozen=True)
class OutletKind:
    """Regulatory class of an outlet type (the OUTLETS columns that follow from it)."""

    outlet_type: str
    stream: str
    standard: str
    table_class: str
    applies_to: str
    prefix: str  # outlet id prefix: WS (wastewater) or DA (air)
    name: str


OUTLET_KINDS: dict[str, OutletKind] = {
    "sewer": OutletKind(
        "wastewater_sewer", "wastewater", "DB11/307-2013", "Table 3", "process", "WS", "废水总排口"
    ),
    "direct": OutletKind(
        "wastewater_direct",
        "wastewater",
        "DB11/307-2013",
        "Table 1 B",
        "process",
        "WS",
        "废水直排口",
    ),
    "boiler_new": OutletKind(
        "stack", "exhaust_gas", "DB11/139-2015", "new boilers", "boiler_new", "DA", "燃气锅炉排气筒"
    ),
    "boiler_in_use": OutletKind(
        "stack",
        "exhaust_gas",
        "DB11/139-2015",
        "in-use boilers, high-polluting-fuel ban zone",
        "boiler_in_use_ban_zone",
        "DA",
        "在用燃气锅炉排气筒",
    ),
}


@dataclass(frozen=True)
class Facility:
    """One enterprise (a row of ``facilities.csv`` plus its delivery channel)."""

    facility_id: str
    name: str
    uscc: str
    industry: str
    ehs_email: str
    delivery: str  # hj212 | platform_export (not a facilities.csv column)


@dataclass(frozen=True)
class Outlet:
    """One discharge outlet (a row of ``outlets.csv``)."""

    outlet_id: str
    facility_id: str
    outlet_type: str
    stream: str
    standard: str
    table_class: str
    applies_to: str
    name: str


@dataclass(frozen=True)
class Device:
    """One HJ 212 data logger (a row of ``monitoring_points.csv``) and how it behaves.

    Attributes:
        index: stable number of the device in the district (seeds its random streams).
        mn: the device id it sends.
        outlet: the outlet it monitors.
        facility: the facility owning the outlet.
        protocol: ``2017`` or ``2005`` code style.
        crc_policy: ``tolerant`` or ``strict`` (registry column).
        rtd_interval_s: real-time upload interval in seconds.
        min_interval_min: minute-data period in minutes.
        delivery: ``hj212`` (packet log) or ``platform_export`` (hourly CSV only).
        crc_variant: how the logger signs: ``appendix_a``, ``modbus`` or ``modbus_swapped``.
        hex_lower: the CRC is written in lowercase hex.
        packet_flag: the ``Flag`` it sends (2017 devices: 4, or 5 = reply required).
        line_ending: line terminator of its log files.
        prefix_style: ``plain``, ``bracket`` (``[ts] ##...``) or ``stamp_line`` (a
            ``[ts]`` line before each frame).
        noise: the receiver log mixes in Modbus hex and error lines.
        sends_zs: stacks only: the device sends ``-ZsRtd``/``-ZsAvg`` for NOx/SO2/dust.
        vendor_code: an extra vendor-specific pollutant code sent with real-time data.
        pw: the access password it sends.

    """

    index: int
    mn: str
    outlet: Outlet
    facility: Facility
    protocol: str
    crc_policy: str
    rtd_interval_s: int
    min_interval_min: int
    delivery: str
    crc_variant: str = "appendix_a"
    hex_lower: bool = False
    packet_flag: int = 4
    line_ending: str = "\r\n"
    prefix_style: str = "plain"
    noise: bool = False
    sends_zs: bool = True
    vendor_code: str | None = None
    pw: str = "123456"

    @property
    def stream(self) -> str:
        """``wastewater`` or ``exhaust_gas``."""
        return self.outlet.stream

    @property
    def st(self) -> str:
        """HJ 212 system code: 32 (water pollution source) or 31 (air pollution source)."""
        return "32" if self.outlet.stream == "wastewater" else "31"


@dataclass(frozen=True)
class District:
    """The registry of one sample district."""

    scale: str
    seed: int
    facilities: tuple[Facility, ...]
    outlets: tuple[Outlet, ...]
    devices: tuple[Device, ...]

    @property
    def hj212_devices(self) -> tuple[Device, ...]:
        """Devices that deliver HJ 212 packet logs."""
        return tuple(d for d in self.devices if d.delivery == "hj212")

    @property
    def export_devices(self) -> tuple[Device, ...]:
        """Devices whose data arrive only as platform exports."""
        return tuple(d for d in self.devices if d.delivery == "platform_export")


# --- Unified social credit code (GB 32100-2015) -----------------------------------------

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def org_code_check(body: str) -> str:
    """Return the check character of an 8-character organisation code (GB 11714-1997).

    Args:
        body: 8 characters, digits or upper-case letters.

    Returns:
        ``0``-``9`` or ``X``.

    """
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def uscc_check(body: str) -> str:
    """Return the 18th (check) character of a unified social credit code (GB 32100-2015).

    Args:
        body: the first 17 characters.

    Returns:
        One character of ``0123456789ABCDEFGHJKLMNPQRTUWXY``.

    """
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def make_uscc(rng: random.Random) -> str:
    """Return a valid-format E-Town enterprise credit code ``91110302…`` with both checks."""
    org = "".join(rng.choice("0123456789") for _ in range(8))
    body = "91" + ETOWN_DIVISION + org + org_code_check(org)
    return body + uscc_check(body)


# --- Limits catalog ---------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """One row of ``expectations/catalog/limits.csv`` (the columns the generator needs)."""

    limit_id: str
    standard: str
    table_class: str
    pollutant: str
    outlet_type: str
    averaging_period: str
    limit_low: float | None
    limit_high: float | None
    valid_from: date
    valid_to: date | None
    season: str
    applies_to: str

    def in_force(self, day: date) -> bool:
        """Return whether the limit applies on ``day`` (validity dates and season)."""
        if day < self.valid_from or (self.valid_to is not None and day > self.valid_to):
            return False
        if not self.season:
            return True
        start, end = self.season.split("..")
        md = (day.month, day.day)
        lo = tuple(int(x) for x in start.split("-"))
        hi = tuple(int(x) for x in end.split("-"))
        return (lo <= md) or (md <= hi) if lo > hi else lo <= md <= hi


@dataclass(frozen=True)
class Catalog:
    """The limits and reference O2 the generator plants against."""

    limits: tuple[Limit, ...]
    reference_o2: dict[tuple[str, str], float]

    def candidates(self, outlet: Outlet, pollutant: str) -> list[Limit]:
        """Return every catalog limit that can apply to ``pollutant`` at ``outlet``."""
        out = []
        for lim in self.limits:
            if (lim.pollutant, lim.standard, lim.table_class, lim.outlet_type) != (
                pollutant,
                outlet.standard,
                outlet.table_class,
                outlet.outlet_type,
            ):
                continue
            if outlet.outlet_type == "stack" and lim.applies_to != outlet.applies_to:
                continue
            out.append(lim)
        return out

    def limit_for(self, outlet: Outlet, pollutant: str, day: date) -> Limit | None:
        """Return the limit in force on ``day`` (a seasonal row wins over the base row)."""
        active = [lim for lim in self.candidates(outlet, pollutant) if lim.in_force(day)]
        seasonal = [lim for lim in active if lim.season]
        chosen = seasonal or active
        return chosen[0] if chosen else None

    def strictest_high(self, outlet: Outlet, pollutant: str) -> float | None:
        """Return the lowest upper limit of any date for ``pollutant`` at ``outlet``."""
        highs = [
            lim.limit_high
            for lim in self.candidates(outlet, pollutant)
            if lim.limit_high is not None
        ]
        return min(highs) if highs else None

    def o2_ref(self, outlet: Outlet) -> float | None:
        """Return the reference O2 (%) of a stack outlet, or None."""
        return self.reference_o2.get((outlet.standard, outlet.applies_to))


def load_catalog() -> Catalog:
    """Return the limits and reference O2 of ``expectations/catalog`` (via its own loaders)."""
    from expectations.reference import load_limits, load_reference_o2

    limits = tuple(
        Limit(
            limit_id=row["limit_id"],
            standard=row["standard"],
            table_class=row["table_class"],
            pollutant=row["pollutant"] or "",
            outlet_type=row["outlet_type"],
            averaging_period=row["averaging_period"],
            limit_low=row["limit_low"],
            limit_high=row["limit_high"],
            valid_from=row["valid_from"],
            valid_to=row["valid_to"],
            season=row["season"] or "",
            applies_to=row["applies_to"],
        )
        for row in load_limits().iter_rows(named=True)
    )
    ref: dict[tuple[str, str], float] = {}
    for row in load_reference_o2().iter_rows(named=True):
        ref.setdefault((row["standard"], row["applies_to"]), float(row["reference_o2_pct"]))
    return Catalog(limits, ref)


# --- District recipes -------------------------------------------------------------------


@dataclass(frozen=True)
class _PointRecipe:
    kind: str  # key of OUTLET_KINDS
    protocol: str = "2017"
    rtd: int = 60
    crc_policy: str = "tolerant"
    crc_variant: str = "appendix_a"
    hex_lower: bool = False
    packet_flag: int = 4
    line_ending: str = "\r\n"
    prefix_style: str = "plain"
    noise: bool = False
    sends_zs: bool = True
    vendor_code: str | None = None
    mn_hex: bool = False


@dataclass(frozen=True)
class _FacilityRecipe:
    industry: str
    delivery: str
    points: tuple[_PointRecipe, ...]


_P = _PointRecipe

_TEST: tuple[_FacilityRecipe, ...] = (
    _FacilityRecipe(
        "auto",
        "hj212",
        (
            _P("sewer", rtd=60, prefix_style="bracket", noise=True),
            _P("boiler_new", rtd=30, line_ending="\n", vendor_code="a99948"),
        ),
    ),
    _FacilityRecipe("biopharma", "platform_export", (_P("sewer"),)),
)

_DEMO: tuple[_FacilityRecipe, ...] = (
    _FacilityRecipe(
        "auto",
        "hj212",
        (
            _P("sewer", rtd=60),
            _P("boiler_new", rtd=30),
            _P("boiler_new", rtd=30, crc_variant="modbus"),
        ),
    ),
    _FacilityRecipe(
        "biopharma",
        "hj212",
        (
            _P("sewer", rtd=30, prefix_style="bracket"),
            _P("boiler_new", rtd=60, packet_flag=5, sends_zs=False),
        ),
    ),
    _FacilityRecipe(
        "ic",
        "hj212",
        (
            _P("sewer", rtd=60, line_ending="\n", prefix_style="stamp_line", noise=True),
            _P("sewer", protocol="2005", rtd=60, vendor_code="812"),
            _P("boiler_in_use", rtd=30, crc_variant="modbus_swapped", noise=True),
        ),
    ),
    _FacilityRecipe(
        "machinery",
        "hj212",
        (
            _P("direct", rtd=60, crc_policy="strict"),
            _P("boiler_in_use", protocol="2005", rtd=60, sends_zs=False),
        ),
    ),
    _FacilityRecipe("food", "hj212", (_P("sewer", rtd=60, hex_lower=True),)),
    _FacilityRecipe(
        "materials",
        "hj212",
        (
            _P("sewer", rtd=30, crc_policy="strict", mn_hex=True),
            _P("boiler_new", rtd=30, prefix_style="bracket", mn_hex=True, vendor_code="a99948"),
        ),
    ),
    _FacilityRecipe("meddevice", "platform_export", (_P("sewer"), _P("boiler_new"))),
    _FacilityRecipe("opto", "platform_export", (_P("direct"),)),
)


def _make_mn(rng: random.Random, hex_style: bool, taken: set[str]) -> str:
    while True:
        if hex_style:
            mn = "010000A89000" + "".join(rng.choice("0123456789ABCDEF") for _ in range(12))
        else:
            mn = ETOWN_DIVISION + "".join(rng.choice("0123456789") for _ in range(8))
        if mn not in taken:
            taken.add(mn)
            return mn


def _benchmark_recipe(rng: random.Random) -> tuple[_FacilityRecipe, ...]:
    # 800 facilities, two wastewater points each (1,600) and one stack on every second
    # facility (400): 2,000 monitoring points. About 10 % of the loggers are 2005-style,
    # 5 % sign with Modbus CRCs, 20 % write LF-only logs.
    out = []
    for i in range(800):
        industry = INDUSTRIES[i % len(INDUSTRIES)].key
        points = []
        for j in range(2):
            kind = "direct" if (i * 2 + j) % 10 == 3 else "sewer"
            points.append(
                _P(
                    kind,
                    protocol="2005" if rng.random() < 0.1 else "2017",
                    rtd=60,
                    crc_variant="modbus" if rng.random() < 0.05 else "appendix_a",
                    line_ending="\n" if rng.random() < 0.2 else "\r\n",
                    mn_hex=rng.random() < 0.3,
                )
            )
        if i % 2 == 0:
            points.append(
                _P(
                    "boiler_new" if i % 4 == 0 else "boiler_in_use",
                    protocol="2005" if rng.random() < 0.1 else "2017",
                    rtd=30,
                    crc_variant="modbus_swapped" if rng.random() < 0.05 else "appendix_a",
                    line_ending="\n" if rng.random() < 0.2 else "\r\n",
                    mn_hex=rng.random() < 0.3,
                )
            )
        out.append(_FacilityRecipe(industry, "hj212", tuple(points)))
    return tuple(out)


def build_district(scale: str = "demo", seed: int = 212) -> District:
    """Build the registry of the sample district.

    Args:
        scale: ``test`` (2 facilities, 3 points), ``demo`` (8 facilities, 16 points) or
            ``benchmark`` (800 facilities, 2,000 points).
        seed: seeds names, credit codes and MNs.

    Returns:
        The district; the same arguments always give the same district.

    Raises:
        ValueError: unknown scale.

    """
    rng = random.Random(f"zwy-district-{scale}-{seed}")
    if scale == "test":
        recipe = _TEST
    elif scale == "demo":
        recipe = _DEMO
    elif scale == "benchmark":
        recipe = _benchmark_recipe(rng)
    else:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")

    names: set[str] = set()
    mns: set[str] = set()
    facilities: list[Facility] = []
    outlets: list[Outlet] = []
    devices: list[Device] = []
    for fi, frec in enumerate(recipe, start=1):
        industry = _INDUSTRY[frec.industry]
        while True:
            name = "北京" + rng.choice(BRAND_WORDS) + industry.suffix
            if name not in names:
                names.add(name)
                break
        fid = f"F{fi:04d}"
        facility = Facility(
            facility_id=fid,
            name=name,
            uscc=make_uscc(rng),
            industry=industry.label,
            ehs_email=f"ehs@{fid.lower()}.example.org",
            delivery=frec.delivery,
        )
        facilities.append(facility)
        counters: dict[str, int] = {}
        for prec in frec.points:
            kind = OUTLET_KINDS[prec.kind]
            n = counters[kind.prefix] = counters.get(kind.prefix, 0) + 1
            outlet = Outlet(
                outlet_id=f"{fid}-{kind.prefix}{n}",
                facility_id=fid,
                outlet_type=kind.outlet_type,
                stream=kind.stream,
                standard=kind.standard,
                table_class=kind.table_class,
                applies_to=kind.applies_to,
                name=kind.name if n == 1 else f"{n}号{kind.name}",
            )
            outlets.append(outlet)
            devices.append(
                Device(
                    index=len(devices),
                    mn=_make_mn(rng, prec.mn_hex, mns),
                    outlet=outlet,
                    facility=facility,
                    protocol=prec.protocol,
                    crc_policy=prec.crc_policy,
                    rtd_interval_s=prec.rtd,
                    min_interval_min=10,
                    delivery=frec.delivery,
                    crc_variant=prec.crc_variant,
                    hex_lower=prec.hex_lower,
                    packet_flag=prec.packet_flag,
                    line_ending=prec.line_ending,
                    prefix_style=prec.prefix_style,
                    noise=prec.noise,
                    sends_zs=prec.sends_zs and prec.protocol == "2017",
                    vendor_code=prec.vendor_code,
                )
            )
    return District(scale, seed, tuple(facilities), tuple(outlets), tuple(devices))


def unknown_mn(district: District, day: date) -> str:
    """Return the MN of the day's unregistered device (not in the registry)."""
    rng = random.Random(f"zwy-unknown-mn-{district.seed}-{day.isoformat()}")
    taken = {d.mn for d in district.devices}
    return _make_mn(rng, False, taken)


def registry_frames(district: District) -> dict[str, pl.DataFrame]:
    """Return the three registry tables, typed exactly as the contracts."""
    fac = pl.DataFrame(
        [(f.facility_id, f.name, f.uscc, f.industry, f.ehs_email) for f in district.facilities],
        schema=FACILITIES,
        orient="row",
    )
    out = pl.DataFrame(
        [
            (
                o.outlet_id,
                o.facility_id,
                o.outlet_type,
                o.stream,
                o.standard,
                o.table_class,
                o.applies_to,
                o.name,
            )
            for o in district.outlets
        ],
        schema=OUTLETS,
        orient="row",
    )
    pts = pl.DataFrame(
        [
            (
                d.mn,
                d.outlet.outlet_id,
                d.protocol,
                d.crc_policy,
                d.rtd_interval_s,
                d.min_interval_min,
                d.delivery,
            )
            for d in district.devices
        ],
        schema=MONITORING_POINTS,
        orient="row",
    )
    return {"facilities": fac, "outlets": out, "monitoring_points": pts}


#: The bureau's people who receive role alerts (zwy.alerts.catalog): example.org addresses.
SAMPLE_CONTACTS: tuple[tuple[str, str, str, str], ...] = (
    ("C001", "王敏 Wang Min", "compliance_officer", "compliance@bureau.example.org"),
    ("C002", "李强 Li Qiang", "compliance_officer", "enforcement@bureau.example.org"),
    ("C003", "赵丽 Zhao Li", "data_steward", "data@bureau.example.org"),
    ("C004", "陈工 Chen Gong", "ops", "ops@bureau.example.org"),
)


def write_registry(district: District, registry_dir: Path) -> list[Path]:
    """Write ``facilities.csv``, ``outlets.csv``, ``monitoring_points.csv`` and ``contacts.csv``.

    Args:
        district: the district to write.
        registry_dir: target folder (created).

    Returns:
        The written paths.

    """
    registry_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in registry_frames(district).items():
        path = registry_dir / f"{name}.csv"
        write_atomic(path, frame.write_csv().encode("utf-8"))
        paths.append(path)
    contacts = pl.DataFrame(
        SAMPLE_CONTACTS, schema=["contact_id", "name", "role", "email"], orient="row"
    )
    path = registry_dir / "contacts.csv"
    write_atomic(path, contacts.write_csv().encode("utf-8"))
    paths.append(path)
    from zwy.sample.waste import receivers_csv

    path = registry_dir / "receivers.csv"
    write_atomic(path, receivers_csv())
    paths.append(path)
    from zwy.sample.dust import sites, sites_csv

    path = registry_dir / "dust_sites.csv"
    write_atomic(path, sites_csv(sites(district.scale, district.seed)))
    paths.append(path)
    return paths


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    Readers never see a half-written file, and two processes writing different files of
    the same folder cannot interfere.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def device_by_mn(devices: Sequence[Device]) -> dict[str, Device]:
    """Index devices by MN."""
    return {d.mn: d for d in devices}
