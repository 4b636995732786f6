"""Platform exports: hourly data of facilities that deliver no packet log (GB18030 CSV).

Some facilities' loggers report to a vendor platform instead of the bureau's receiver;
the bureau gets a daily CSV export of their hourly data, encoded GB18030 as Chinese
Windows tools write it, with Chinese headers. The hourly values come from the same
device simulation as the packet logs (water pollutants flow-weighted over the hour, flow
the mean L/s, pH and gas parameters arithmetic; 折算值 the mean O2-corrected value).

Each export file carries two planted defects: a row whose 监测时间 cannot be parsed
(rule ``export_time``) and a row whose 小时均值 is not a number (rule ``export_value``).
"""

from __future__ import annotations

import csv
import io
import random
from datetime import date

from zwy.sample.district import Catalog, Device, District
from zwy.sample.telemetry import (
    F64,
    HOUR_S,
    WATER_FLOW,
    ZS_DEC,
    DayManifest,
    DaySeries,
    DeviceDayResult,
    FileTotals,
    QuarantineItem,
    pollutants_of,
    simulate,
)

#: Column headers of the platform export, in order.
EXPORT_HEADER: tuple[str, ...] = (
    "企业名称",
    "监测点编码",
    "排口编号",
    "监测时间",
    "污染物编码",
    "污染物名称",
    "小时均值",
    "折算值",
    "单位",
    "数据标记",
)
#: The export's encoding.
EXPORT_ENCODING = "gb18030"
#: Text of the planted non-numeric value.
BAD_VALUE = "异常"


def export_path(stream: str, day: date) -> str:
    """Return an export's path relative to the inbox root."""
    return f"{day.isoformat()}/{stream}/platform_export_{day.strftime('%Y%m%d')}.csv"


def hourly_means(series: DaySeries) -> dict[str, tuple[F64, F64 | None]]:
    """Return per parameter the 24 hourly means and, for stack pollutants, corrected means.

    Args:
        series: a simulated device-day (no planted faults).

    Returns:
        ``code -> (hourly value, hourly 折算值 or None)``.

    """
    m = HOUR_S // series.dt
    water = series.device.stream == "wastewater"
    flow = series.value(WATER_FLOW).reshape(24, m) if water else None
    out: dict[str, tuple[F64, F64 | None]] = {}
    for p in pollutants_of(series.device):
        v = series.value(p.code).reshape(24, m)
        if flow is not None and p.cou_dec is not None and p.code != WATER_FLOW:
            mean: F64 = (v * flow).sum(axis=1) / flow.sum(axis=1)
        else:
            mean = v.mean(axis=1)
        zs = None
        if p.zs and p.code in series.zq:
            zs = series.zq[p.code].reshape(24, m).mean(axis=1) / 10.0**ZS_DEC
        out[p.code] = (mean, zs)
    return out


def export_day(
    district: District, day: date, stream: str, seed: int, catalog: Catalog
) -> DeviceDayResult | None:
    """Build one day's platform export of a stream.

    Args:
        district: the registry.
        day: the local day.
        stream: ``wastewater`` or ``exhaust_gas``.
        seed: district seed.
        catalog: limits (normal values stay below them) and reference O2.

    Returns:
        The file (GB18030 bytes) with its manifest, or None when no facility of the
        stream delivers exports.

    """
    devices: list[Device] = [d for d in district.export_devices if d.stream == stream]
    if not devices:
        return None
    rows: list[list[str]] = []
    for device in devices:
        means = hourly_means(simulate(device, day, seed, catalog))
        for hour in range(24):
            stamp = f"{day.isoformat()} {hour:02d}:00:00"
            for p in pollutants_of(device):
                value, zs = means[p.code]
                rows.append(
                    [
                        device.facility.name,
                        device.mn,
                        device.outlet.outlet_id,
                        stamp,
                        p.code,
                        p.name,
                        f"{value[hour]:.{p.dec}f}",
                        "" if zs is None else f"{zs[hour]:.{ZS_DEC}f}",
                        p.unit,
                        "N",
                    ]
                )
    rng = random.Random(f"zwy-export-{seed}-{stream}-{day.toordinal()}")
    bad_time, bad_value = rng.sample(range(len(rows)), 2)
    rows[bad_time][3] = f"{day.isoformat()} 25:00:00"
    rows[bad_value][6] = BAD_VALUE
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    writer.writerows(rows)
    data = buf.getvalue().encode(EXPORT_ENCODING)
    path = export_path(stream, day)
    man = DayManifest()
    for i, rule, note in (
        (bad_time, "export_time", "监测时间 hour 25 cannot be parsed"),
        (bad_value, "export_value", f"小时均值 {BAD_VALUE!r} is not a number"),
    ):
        man.quarantine.append(QuarantineItem(path, i + 2, rule, rows[i][1], "export", note))
    man.noise_lines[path] = 0
    man.totals[path] = FileTotals(len(rows) + 1, len(rows), len(rows) - 2, 0, 2, len(data))
    return DeviceDayResult(path, data, man)
