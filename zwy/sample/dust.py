"""Construction-site dust sample data: site monitors' HJ 212 logs and the nearest station.

Each construction site (工地) has one dust monitor (ST=39) sending real-time data (CN 2011)
every minute: TSP ``a34001``, PM10 ``a34002`` and PM2.5 ``a34004`` in µg/m³ with their
flags. The national/municipal control station nearest to the zone delivers hourly ambient
data in the layout of the UCI Beijing multi-site files (``No, year, month, day, hour,
PM2.5, PM10, SO2, NO2, CO, O3, TEMP, PRES, DEWP, RAIN, wd, WSPM, station``; ``NA`` for a
missing value); the sample's station values are simulated, not real measurements.

Planted (test and demo scales), what the dust controls must find:

- ``diff_runs``: site 1 exceeds the station's PM10 by 60 µg/m³ for three hours (10-13 h),
  over the default 50 µg/m³ margin (a policy placeholder, see the controls catalog), while
  staying under the absolute threshold;
- ``absolute``: site 2 at 180 µg/m³ PM10 for two hours (15-17 h) while the station is high
  too (difference under the margin);
- ``offline``: site 2 sends nothing from 08:00 to 11:00 (working hours); site 1 sends
  nothing from 01:00 to 03:00 (outside working hours: must not be flagged);
- ``station_na``: the station's PM10 is NA at 05:00 (no difference for that hour).
"""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from zwy.sample.telemetry import sign_many

STATION = "Yizhuang"
UCI_HEADER = (
    "No",
    "year",
    "month",
    "day",
    "hour",
    "PM2.5",
    "PM10",
    "SO2",
    "NO2",
    "CO",
    "O3",
    "TEMP",
    "PRES",
    "DEWP",
    "RAIN",
    "wd",
    "WSPM",
    "station",
)
SITES_BY_SCALE = {"test": 2, "demo": 4, "benchmark": 200}
DEVELOPERS = ("北京亦庄建设发展有限公司", "北京经开城市建设有限公司", "北京亦城置业有限公司")


@dataclass(frozen=True)
class Site:
    """A construction project with one dust monitor."""

    site_id: str
    project_name: str
    developer: str
    address: str
    mn: str
    station: str
    start_date: date
    end_date: date
    ehs_email: str


@dataclass
class DustDay:
    """Files and truth of one day's dust inputs."""

    files: dict[str, bytes] = field(default_factory=dict)
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    planted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def plant(self, key: str, item: dict[str, Any]) -> None:
        """Record one planted item under ``key``."""
        self.planted.setdefault(key, []).append(item)


def sites(scale: str, seed: int) -> list[Site]:
    """Return the district's construction sites (deterministic)."""
    rng = random.Random(f"zwy-dust-sites-{seed}-{scale}")
    out = []
    for i in range(SITES_BY_SCALE.get(scale, 2)):
        sid = f"S{i + 1:03d}"
        out.append(
            Site(
                site_id=sid,
                project_name=f"亦庄新城{rng.choice(('住宅', '产业园', '道路', '管网'))}项目{i + 1}号地块",
                developer=rng.choice(DEVELOPERS),
                address=f"北京经济技术开发区 {rng.randint(1, 30)} 街区",
                mn=f"390112{i + 1:08d}",
                station=STATION,
                start_date=date(2024, 1, 1),
                end_date=date(2026, 12, 31),
                ehs_email=f"site-{sid.lower()}@builder.example.org",
            )
        )
    return out


def sites_csv(all_sites: list[Site]) -> bytes:
    """Return ``dust_sites.csv`` for the registry."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "site_id",
            "project_name",
            "developer",
            "address",
            "mn",
            "station",
            "start_date",
            "end_date",
            "ehs_email",
        ]
    )
    for s in all_sites:
        w.writerow(
            [
                s.site_id,
                s.project_name,
                s.developer,
                s.address,
                s.mn,
                s.station,
                s.start_date,
                s.end_date,
                s.ehs_email,
            ]
        )
    return buf.getvalue().encode("utf-8")


def station_pm10(day: date, rng: random.Random) -> list[float]:
    """24 hourly PM10 values (µg/m³) of the station: a smooth day with a morning peak."""
    base = rng.uniform(35, 55)
    return [
        round(base + 15 * math.sin((h - 6) / 24 * 2 * math.pi) + rng.uniform(-4, 4), 0)
        for h in range(24)
    ]


def station_csv(day: date, pm10: list[float | None], rng: random.Random) -> bytes:
    """Return the station's hourly file in the UCI layout (``NA`` unquoted, text quoted)."""

    def num(v: float | None, dec: int = 0) -> str:
        return "NA" if v is None else f"{v:.{dec}f}" if dec else f"{v:.0f}"

    lines = [",".join(f'"{h}"' for h in UCI_HEADER)]
    for h in range(24):
        v = pm10[h]
        cells = [
            str(h + 1),
            str(day.year),
            str(day.month),
            str(day.day),
            str(h),
            num(None if v is None else v * 0.62),
            num(v),
            num(rng.uniform(2, 8)),
            num(rng.uniform(20, 60)),
            num(rng.uniform(300, 900)),
            num(rng.uniform(20, 90)),
            num(rng.uniform(10, 25), 1),
            num(rng.uniform(1005, 1020), 1),
            num(rng.uniform(-5, 10), 1),
            "0",
            f'"{rng.choice(("N", "NE", "SW", "S"))}"',
            num(rng.uniform(0.5, 4.0), 1),
            f'"{STATION}"',
        ]
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode("utf-8")


def dust_day(scale: str, day: date, seed: int) -> DustDay:
    """Generate the day's dust files: one log per site, one station file."""
    out = DustDay()
    rng = random.Random(f"zwy-dust-{seed}-{day.isoformat()}")
    plant = scale != "benchmark"
    folder = f"{day.isoformat()}/dust"
    base = station_pm10(day, rng)  # what the air carries; sites add their own dust on top
    pm10_station: list[float | None] = list(base)
    if plant:
        # A high-pollution afternoon at the station (15-17 h): site 2 reads 180 there.
        pm10_station[15] = pm10_station[16] = 165.0
    all_sites = sites(scale, seed)
    offline: dict[str, tuple[int, int]] = {}
    for k, s in enumerate(all_sites):
        excess = [rng.uniform(5, 25) for _ in range(24)]
        hourly = [base[h] + excess[h] for h in range(24)]
        if plant and k == 0:
            for h in (10, 11, 12):
                hourly[h] = base[h] + 60.0
            out.plant(
                "diff_runs",
                {
                    "site_id": s.site_id,
                    "mn": s.mn,
                    "start_local": f"{day}T10:00:00",
                    "end_local": f"{day}T13:00:00",
                    "hours": 3,
                    "excess": 60.0,
                },
            )
            offline[s.site_id] = (1, 3)
            out.plant(
                "offline_outside_hours",
                {
                    "site_id": s.site_id,
                    "start_local": f"{day}T01:00:00",
                    "end_local": f"{day}T03:00:00",
                },
            )
        if plant and k == 1:
            for h in (15, 16):
                hourly[h] = 180.0
            out.plant(
                "absolute",
                {
                    "site_id": s.site_id,
                    "mn": s.mn,
                    "start_local": f"{day}T15:00:00",
                    "end_local": f"{day}T17:00:00",
                    "hours": 2,
                    "pm10": 180.0,
                },
            )
            offline[s.site_id] = (8, 11)
            out.plant(
                "offline",
                {
                    "site_id": s.site_id,
                    "mn": s.mn,
                    "start_local": f"{day}T08:00:00",
                    "end_local": f"{day}T11:00:00",
                    "hours": 3,
                },
            )
        segs = []
        start = datetime(day.year, day.month, day.day)
        gap = offline.get(s.site_id)
        for minute in range(24 * 60):
            h = minute // 60
            if gap and gap[0] <= h < gap[1]:
                continue
            t = start + timedelta(minutes=minute)
            pm10 = max(1.0, hourly[h] + rng.uniform(-3, 3))
            qn = t.strftime("%Y%m%d%H%M%S") + f"{rng.randint(0, 999):03d}"
            segs.append(
                f"QN={qn};ST=39;CN=2011;PW=123456;MN={s.mn};Flag=4;CP=&&DataTime="
                f"{t:%Y%m%d%H%M%S};a34001-Rtd={pm10 * 1.6:.1f},a34001-Flag=N;"
                f"a34002-Rtd={pm10:.1f},a34002-Flag=N;a34004-Rtd={pm10 * 0.62:.1f},"
                "a34004-Flag=N&&"
            )
        frames = sign_many(segs, "appendix_a")
        path = f"{folder}/{s.mn}_{day:%Y%m%d}.log"
        out.files[path] = ("\r\n".join(frames) + "\r\n").encode("ascii")
        out.totals[path] = {"lines": len(frames), "frames": len(frames), "quarantined": 0}
    if plant:
        pm10_station[5] = None
        out.plant("station_na", {"station": STATION, "hour_local": f"{day}T05:00:00"})
    path = f"{folder}/station_{STATION}_{day:%Y%m%d}.csv"
    out.files[path] = station_csv(day, pm10_station, rng)
    out.totals[path] = {"lines": 25, "frames": 24, "quarantined": 0}
    return out
