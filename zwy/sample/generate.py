"""Entry point: generate a sample district (registry, HJ 212 logs, exports, planted truth).

Layout under ``out_dir``::

    registry/facilities.csv, outlets.csv, monitoring_points.csv
    inbox/YYYY-MM-DD/wastewater/<MN>_<YYYYMMDD>.log
    inbox/YYYY-MM-DD/wastewater/platform_export_<YYYYMMDD>.csv      (GB18030)
    inbox/YYYY-MM-DD/exhaust_gas/<MN>_<YYYYMMDD>.log
    inbox/YYYY-MM-DD/exhaust_gas/platform_export_<YYYYMMDD>.csv     (GB18030)
    planted.json

Every file of a day depends only on ``(scale, seed, day)``: generating 1 May alone or as
part of 1-3 May gives byte-identical files. Files are written through a temporary name
and a rename, so concurrent generators and readers never see half-written files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from zwy.sample.district import (
    SCALES,
    Catalog,
    District,
    build_district,
    load_catalog,
    unknown_mn,
    write_atomic,
    write_registry,
)
from zwy.sample.dust import dust_day
from zwy.sample.exports import export_day
from zwy.sample.telemetry import (
    DayManifest,
    Exceedance,
    FileTotals,
    FrameItem,
    GapItem,
    PeriodItem,
    QuarantineItem,
    SplitItem,
    SShareItem,
    UnknownMnItem,
    VendorCodeItem,
    benchmark_day,
    device_day,
    plan_day,
    unknown_device_log,
)
from zwy.sample.waste import waste_day

_ITEM_TYPES: dict[str, type[Any]] = {
    "quarantine": QuarantineItem,
    "exceedances": Exceedance,
    "flatlined": PeriodItem,
    "fault_periods": PeriodItem,
    "flag_periods": PeriodItem,
    "offline": PeriodItem,
    "s_flag_share": SShareItem,
    "t_flag_periods": PeriodItem,
    "gaps": GapItem,
    "duplicates": FrameItem,
    "out_of_order": FrameItem,
    "late_packets": FrameItem,
    "split_frames": SplitItem,
    "unknown_mn": UnknownMnItem,
    "vendor_codes": VendorCodeItem,
}


@dataclass
class Planted(DayManifest):
    """The truth about a generated district: what was planted where.

    File paths are relative to the inbox root (``inbox/``), as ``INGEST_FILES.path``;
    lines are 1-based and point at the line where the frame starts (for export rows the
    header is line 1). Times ending in ``_local`` and ``data_time`` values are Beijing
    local clock time (``timezone``), ISO 8601 without offset; ``end_local`` is exclusive.

    Keys (``planted.json`` has the same, minus ``seconds``):

    * ``quarantine``: every frame or export row the pipeline must quarantine
      (:class:`QuarantineItem`: file, line, rule, mn, cn, note). Rules: ``length``,
      ``truncated``, ``crc``, ``syntax``, ``st``, ``cn``, ``flag``, ``mn``, ``datatime``,
      ``duplicate`` (the second copy of an exact re-send), ``export_time``,
      ``export_value``. Each planted frame breaks exactly one rule (length and CRC are
      recomputed for the others).
    * ``exceedances``: limit breaches after the Annex D aggregation
      (:class:`Exceedance`); an ``hour`` entry covers ``n_periods`` consecutive hours,
      ``value`` is the lowest of them. Nothing else comes within 90 % of a limit.
    * ``flatlined``, ``fault_periods`` (flag D), ``flag_periods`` (M, C, F, B),
      ``offline`` (no frames), ``t_flag_periods`` (T): :class:`PeriodItem`.
    * ``s_flag_share`` (:class:`SShareItem`), ``gaps`` (frames not sent,
      :class:`GapItem`), ``duplicates``, ``out_of_order``, ``late_packets``
      (:class:`FrameItem`), ``split_frames`` (:class:`SplitItem`), ``unknown_mn``,
      ``vendor_codes``.
    * ``noise_lines`` per file, ``totals`` per file (:class:`FileTotals`: lines, frames,
      data_frames, noise_lines, quarantined, bytes).
    """

    seed: int = 212
    scale: str = "demo"
    days: list[str] = field(default_factory=list)
    timezone: str = "Asia/Shanghai"
    inbox: str = "inbox"
    registry: str = "registry"
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest as plain JSON-able data (metadata keys first)."""
        data = asdict(self)
        meta = ["seed", "scale", "days", "timezone", "inbox", "registry", "seconds"]
        return {k: data[k] for k in meta} | {k: v for k, v in data.items() if k not in meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Planted:
        """Rebuild a manifest from :meth:`to_dict` output (e.g. ``planted.json``)."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in _ITEM_TYPES:
                value = [_ITEM_TYPES[f.name](**item) for item in value]
            elif f.name == "totals":
                value = {k: FileTotals(**v) for k, v in value.items()}
            kwargs[f.name] = value
        return cls(**kwargs)

    @classmethod
    def load(cls, path: Path) -> Planted:
        """Read ``planted.json``."""
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def counts(self) -> dict[str, int]:
        """Return the number of planted items of each kind."""
        return {name: len(getattr(self, name)) for name in _ITEM_TYPES}


def generate_day(
    district: District, day: date, seed: int, catalog: Catalog, inbox: Path
) -> DayManifest:
    """Write every file of one day into ``inbox/<day>/`` and return what was planted."""
    man = DayManifest()
    if district.scale == "benchmark":
        man.extend(benchmark_day(district, day, seed, inbox))
        _solid_waste(district, day, seed, inbox, man)
        _dust(district, day, seed, inbox, man)
        return man
    plan = plan_day(district, day, catalog)
    prev_plan = plan_day(district, day - timedelta(days=1), catalog)
    for device in district.hj212_devices:
        res = device_day(district, device, day, plan, prev_plan, seed, catalog)
        write_atomic(inbox / res.path, res.data)
        man.extend(res.manifest)
    res = unknown_device_log(district, day, seed, catalog, unknown_mn(district, day))
    write_atomic(inbox / res.path, res.data)
    man.extend(res.manifest)
    for stream in ("wastewater", "exhaust_gas"):
        exp = export_day(district, day, stream, seed, catalog)
        if exp is not None:
            write_atomic(inbox / exp.path, exp.data)
            man.extend(exp.manifest)
    _solid_waste(district, day, seed, inbox, man)
    _dust(district, day, seed, inbox, man)
    return man


def _dust(district: District, day: date, seed: int, inbox: Path, man: DayManifest) -> None:
    dust = dust_day(district.scale, day, seed)
    for path, data in dust.files.items():
        write_atomic(inbox / path, data)
    man.dust.setdefault("totals", {}).update(
        {p: {**t, "bytes": len(dust.files[p])} for p, t in dust.totals.items()}
    )
    for key, items in dust.planted.items():
        man.dust.setdefault(key, []).extend(items)


def _solid_waste(district: District, day: date, seed: int, inbox: Path, man: DayManifest) -> None:
    waste = waste_day(district, day, seed)
    for path, data in waste.files.items():
        write_atomic(inbox / path, data)
    man.solid_waste.setdefault("totals", {}).update(
        {p: {**t, "bytes": len(waste.files[p])} for p, t in waste.totals.items()}
    )
    for key, items in waste.planted.items():
        man.solid_waste.setdefault(key, []).extend(items)


def generate_district(
    out_dir: Path, days: Sequence[date], scale: str = "demo", seed: int = 212
) -> Planted:
    """Generate a deterministic sample district.

    Args:
        out_dir: target folder (created); existing files of the same names are replaced.
        days: local days to generate (each day's files hold that day's data).
        scale: ``test`` (2 facilities, 3 points), ``demo`` (8 facilities, 16 points) or
            ``benchmark`` (2,000 points; value faults only, on about 2 % of them).
        seed: random seed; the same seed and days give byte-identical files.

    Returns:
        The planted manifest, also written to ``out_dir/planted.json``.

    Raises:
        ValueError: unknown scale or no day given.

    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    if not days:
        raise ValueError("no day to generate")
    t0 = time.perf_counter()
    ordered = sorted(set(days))
    district = build_district(scale, seed)
    catalog = load_catalog()
    write_registry(district, out_dir / "registry")
    planted = Planted(seed=seed, scale=scale, days=[d.isoformat() for d in ordered])
    for day in ordered:
        planted.extend(generate_day(district, day, seed, catalog, out_dir / "inbox"))
    planted.seconds = round(time.perf_counter() - t0, 3)
    # ``seconds`` varies run to run: keep it out of the file so planted.json is reproducible.
    data = planted.to_dict()
    data.pop("seconds")
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    write_atomic(out_dir / "planted.json", text.encode("utf-8"))
    return planted


def parse_days(text: str) -> list[date]:
    """Parse ``2024-05-01`` or an inclusive range ``2024-05-01..2024-05-03``.

    Raises:
        ValueError: not a date or an empty range.

    """
    first, sep, last = text.strip().partition("..")
    start = date.fromisoformat(first)
    end = date.fromisoformat(last) if sep else start
    if end < start:
        raise ValueError(f"empty day range {text!r}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def sample(
    out: Annotated[Path, typer.Argument(help="output folder (registry/, inbox/, planted.json)")],
    days: Annotated[
        str, typer.Option(help="a day 2024-05-01 or an inclusive range 2024-05-01..2024-05-03")
    ] = "2024-05-01",
    scale: Annotated[str, typer.Option(help="test | demo | benchmark")] = "demo",
    seed: Annotated[int, typer.Option(help="random seed (same seed, same bytes)")] = 212,
) -> None:
    """Generate a sample E-Town district: registry, HJ 212 logs, exports, planted truth."""
    try:
        day_list = parse_days(days)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--days") from exc
    if scale not in SCALES:
        raise typer.BadParameter(f"expected one of {', '.join(SCALES)}", param_hint="--scale")
    planted = generate_district(out, day_list, scale=scale, seed=seed)
    totals = planted.totals.values()
    logs = [p for p in planted.totals if p.endswith(".log")]
    table = Table(title=f"sample district ({scale}, seed {seed}) in {out}")
    table.add_column("item")
    table.add_column("count", justify="right")
    rows: list[tuple[str, int | str]] = [
        ("days", len(planted.days)),
        ("log files", len(logs)),
        ("export files", len(planted.totals) - len(logs)),
        ("bytes", sum(t.bytes for t in totals)),
        ("frames / rows", sum(t.frames for t in totals)),
        ("data frames / rows", sum(t.data_frames for t in totals)),
        ("noise lines", sum(t.noise_lines for t in totals)),
    ]
    rows += [(f"planted {k}", v) for k, v in planted.counts().items()]
    rows.append(("seconds", f"{planted.seconds:.1f}"))
    for name, value in rows:
        table.add_row(name, str(value))
    Console().print(table)
