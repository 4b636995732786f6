"""The control catalog and the limits a control applies on a given day.

Controls are data (``expectations/catalog/controls.csv``): one row per control with its id,
stream, Chinese and English name and description, rule and parameters, what it applies to,
severity, legal basis and a ``verified``/``unverified``/``policy`` status taken from
``shared/domain/BRIEF.md``. Limits come from ``expectations/catalog/limits.csv`` (see
:mod:`expectations.reference`) and, per facility, from an optional
``<registry>/permit_limits.csv`` (discharge-permit limits, :data:`PERMIT_LIMITS`).

:func:`resolve_limits` turns these tables into the effective limit of every outlet and
pollutant for one day: the rows in force that day (validity dates, winter season), matched
to the registry's outlets, with the reference O2 of stacks and the stricter of the standard
and the permit. Everything here except the loaders is pure: frames in, frames out.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from expectations.errors import ControlCatalogError
from expectations.reference import load_limits, load_reference_o2

CATALOG = "catalog"
CONTROLS_FILE = "controls.csv"
UNITS_FILE = "units.csv"
#: Optional registry file with per-facility discharge-permit limits.
PERMIT_FILE = "permit_limits.csv"

KINDS: tuple[str, ...] = ("breach", "dq")
STATUSES: tuple[str, ...] = ("verified", "unverified", "policy")
LIMIT_STATUSES: tuple[str, ...] = ("verified", "unverified")
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
#: The GX batches a control is evaluated on (see :mod:`expectations.measures`).
BATCHES: tuple[str, ...] = ("daily", "hourly", "runs", "devices", "codes")
#: The batches of the solid-waste controls (see :mod:`expectations.waste`).
WASTE_BATCHES: tuple[str, ...] = (
    "waste_ledger",
    "waste_manifests",
    "waste_codes",
    "waste_utilisation",
)
STREAMS: tuple[str, ...] = ("wastewater", "exhaust_gas", "any", "solid_waste", "dust")
#: The batches of the construction-dust controls (see :mod:`expectations.dust`).
DUST_BATCHES: tuple[str, ...] = ("dust_hours", "dust_runs")
#: The construction-dust control catalog (site monitors against the nearest station).
DUST_CONTROLS_FILE = "dust_controls.csv"
#: The solid-waste control catalog (ledgers and manifests: no limits table, no devices).
WASTE_CONTROLS_FILE = "waste_controls.csv"
LIMIT_RULES: tuple[str, ...] = ("limit_max", "limit_range")
RULES: tuple[str, ...] = (*LIMIT_RULES, "min_value", "max_value")

CONTROL_COLUMNS: tuple[str, ...] = (
    "control_id",
    "kind",
    "stream",
    "name_zh",
    "name_en",
    "description_zh",
    "description_en",
    "rule",
    "params",
    "outlet_types",
    "standards",
    "pollutants",
    "averaging_period",
    "batch",
    "severity",
    "basis",
    "legal_basis",
    "clause",
    "status",
    "source",
    "note",
)
_REQUIRED = tuple(c for c in CONTROL_COLUMNS if c != "note")

#: ``<registry>/permit_limits.csv``: one row per permit limit. ``outlet_id`` empty means
#: every outlet of the facility whose stream the pollutant belongs to.
PERMIT_LIMITS = pl.Schema(
    {
        "facility_id": pl.String,
        "outlet_id": pl.String,
        "pollutant": pl.String,  # HJ 212-2017 code
        "averaging_period": pl.String,  # hour | day
        "limit_low": pl.Float64,
        "limit_high": pl.Float64,
        "unit": pl.String,
        "valid_from": pl.Date,
        "valid_to": pl.Date,
        "permit_no": pl.String,  # 排污许可证编号
        "clause": pl.String,
        "source": pl.String,
        "status": pl.String,  # verified | unverified
        "note": pl.String,
    }
)

#: One row per (control, outlet, pollutant): the limit a control applies on the day.
EFFECTIVE_LIMITS = pl.Schema(
    {
        "control_id": pl.String,
        "outlet_id": pl.String,
        "facility_id": pl.String,
        "pollutant": pl.String,
        "averaging_period": pl.String,
        "limit_id": pl.String,
        "limit_low": pl.Float64,
        "limit_high": pl.Float64,
        "unit": pl.String,
        "status": pl.String,  # verified | unverified: limit row and reference O2 together
        "legal_basis": pl.String,  # e.g. "DB11/307-2013 Table 3" or "permit 9111...001P"
        "clause": pl.String,
        "source": pl.String,
        "value_column": pl.String,  # value | value_zs
        "reference_o2": pl.Float64,  # stacks: the reference O2 used by value_zs, else null
        "o2_status": pl.String,
        "standard_limit_id": pl.String,  # the standard's row when a permit row is stricter
        "note": pl.String,
    }
)


@dataclass(frozen=True)
class Control:
    """One control of the catalog (a row of ``controls.csv``)."""

    control_id: str
    kind: str  # breach | dq
    stream: str  # wastewater | exhaust_gas | any
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    rule: str  # limit_max | limit_range | min_value | max_value
    params: Mapping[str, Any]
    outlet_types: tuple[str, ...]  # ("*",) = every outlet type
    standards: str
    pollutants: str
    averaging_period: str  # hour | day | run
    batch: str  # the GX batch it runs on
    severity: str
    basis: str  # standard | policy
    legal_basis: str
    clause: str
    status: str  # verified | unverified | policy
    source: str
    note: str

    @property
    def is_limit(self) -> bool:
        """Whether the control compares values against limits (breaches)."""
        return self.rule in LIMIT_RULES

    def basis_text(self) -> str:
        """Return the legal basis as one line, e.g. ``HJ 212-2017 Annex D.1 (verified)``."""
        if self.basis == "policy":
            return f"policy: {self.clause}"
        return f"{self.legal_basis} {self.clause}"


def _catalog_text(name: str) -> str:
    try:
        return resources.files("expectations").joinpath(CATALOG, name).read_text("utf-8")
    except FileNotFoundError as exc:
        raise ControlCatalogError(f"expectations/{CATALOG}/{name} is missing") from exc


def parse_controls(text: str, origin: str = CONTROLS_FILE) -> tuple[Control, ...]:
    """Parse and check the control catalog.

    Args:
        text: the CSV text.
        origin: the file name used in error messages.

    Returns:
        The controls in file order.

    Raises:
        ControlCatalogError: a missing column or field, an unknown kind/status/severity/
            batch/rule, parameters that are not a JSON object, or a duplicate id.

    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CONTROL_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ControlCatalogError(f"{origin}: missing columns {missing}")
    out: list[Control] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        cid = (row["control_id"] or "").strip()
        where = f"{origin} line {line} ({cid or 'no id'})"
        for col in _REQUIRED:
            if not (row[col] or "").strip():
                raise ControlCatalogError(f"{where}: {col} is empty")
        if cid in seen:
            raise ControlCatalogError(f"{where}: duplicate control_id {cid}")
        seen.add(cid)
        checks = {
            "kind": KINDS,
            "status": STATUSES,
            "severity": SEVERITIES,
            "batch": {"solid_waste": WASTE_BATCHES, "dust": DUST_BATCHES}.get(
                row["stream"], BATCHES
            ),
            "rule": RULES,
            "stream": STREAMS,
            "basis": ("standard", "policy"),
        }
        for col, allowed in checks.items():
            if row[col] not in allowed:
                raise ControlCatalogError(f"{where}: {col} {row[col]!r} is not one of {allowed}")
        if (row["basis"] == "policy") != (row["status"] == "policy"):
            raise ControlCatalogError(
                f"{where}: a policy rule has status 'policy' and a standard's rule "
                f"'verified' or 'unverified' (basis {row['basis']!r}, status {row['status']!r})"
            )
        try:
            params = json.loads(row["params"])
        except json.JSONDecodeError as exc:
            raise ControlCatalogError(f"{where}: params is not JSON: {exc}") from exc
        if not isinstance(params, dict):
            raise ControlCatalogError(f"{where}: params must be a JSON object")
        if row["stream"] in ("solid_waste", "dust"):
            # Waste and dust breaches compare a measure with the control's own parameter (no
            # limits table): min_value / max_value for both kinds.
            if row["rule"] in LIMIT_RULES:
                raise ControlCatalogError(
                    f"{where}: {row['stream']} controls use min_value/max_value"
                )
        elif (row["kind"] == "breach") != (row["rule"] in LIMIT_RULES):
            raise ControlCatalogError(f"{where}: breach controls are exactly the limit rules")
        out.append(
            Control(
                control_id=cid,
                kind=row["kind"],
                stream=row["stream"],
                name_zh=row["name_zh"],
                name_en=row["name_en"],
                description_zh=row["description_zh"],
                description_en=row["description_en"],
                rule=row["rule"],
                params=params,
                outlet_types=tuple(t.strip() for t in row["outlet_types"].split("|")),
                standards=row["standards"],
                pollutants=row["pollutants"],
                averaging_period=row["averaging_period"],
                batch=row["batch"],
                severity=row["severity"],
                basis=row["basis"],
                legal_basis=row["legal_basis"],
                clause=row["clause"],
                status=row["status"],
                source=row["source"],
                note=row["note"] or "",
            )
        )
    return tuple(out)


@lru_cache(maxsize=1)
def load_controls() -> tuple[Control, ...]:
    """Return the control catalog (``expectations/catalog/controls.csv``), checked."""
    return parse_controls(_catalog_text(CONTROLS_FILE))


def controls_by_id() -> dict[str, Control]:
    """Return both catalogs (telemetry and solid waste) keyed by control id."""
    return {
        c.control_id: c for c in (*load_controls(), *load_waste_controls(), *load_dust_controls())
    }


def _stream_catalog(file: str, stream: str) -> tuple[Control, ...]:
    """Parse a catalog whose controls all belong to ``stream``."""
    controls = parse_controls(_catalog_text(file), file)
    other = [c.control_id for c in controls if c.stream != stream]
    if other:
        raise ControlCatalogError(f"{file}: {other} are not {stream} controls")
    return controls


@lru_cache(maxsize=1)
def load_waste_controls() -> tuple[Control, ...]:
    """Return the solid-waste control catalog (``expectations/catalog/waste_controls.csv``)."""
    return _stream_catalog(WASTE_CONTROLS_FILE, "solid_waste")


@lru_cache(maxsize=1)
def load_dust_controls() -> tuple[Control, ...]:
    """Return the construction-dust control catalog (``expectations/catalog/dust_controls.csv``)."""
    return _stream_catalog(DUST_CONTROLS_FILE, "dust")


@lru_cache(maxsize=1)
def load_units() -> pl.DataFrame:
    """Return the unit map: ``limit_unit, code_unit, factor, comparable, note``.

    ``code_unit`` is the HJ 212-2017 Appendix B unit the marts carry for a pollutant;
    ``comparable = false`` marks a limit that cannot be applied to the data as sent.
    """
    df = pl.read_csv(_catalog_text(UNITS_FILE).encode("utf-8"), infer_schema=False)
    return df.with_columns(
        pl.col("factor").replace("", None).cast(pl.Float64),
        (pl.col("comparable").str.to_lowercase() == "true").alias("comparable"),
    )


def load_permit_limits(registry_dir: Path) -> pl.DataFrame:
    """Read ``<registry_dir>/permit_limits.csv`` if it exists.

    Args:
        registry_dir: the registry folder (``Settings.registry``).

    Returns:
        A :data:`PERMIT_LIMITS` frame; empty when the file is absent.

    Raises:
        ControlCatalogError: a column is missing, a row lacks its permit number, unit,
            source or valid_from, a status is not verified/unverified, a number or date
            does not parse, or a row has neither bound.

    """
    path = registry_dir / PERMIT_FILE
    if not path.is_file():
        return pl.DataFrame(schema=PERMIT_LIMITS)
    raw = pl.read_csv(path, infer_schema=False)
    return parse_permit_limits(raw, str(path))


def parse_permit_limits(raw: pl.DataFrame, origin: str = PERMIT_FILE) -> pl.DataFrame:
    """Check and type a permit-limits table read as text (see :func:`load_permit_limits`)."""
    optional = {"outlet_id", "valid_to", "clause", "note", "limit_low", "limit_high"}
    missing = [c for c in PERMIT_LIMITS.names() if c not in raw.columns and c not in optional]
    if missing:
        raise ControlCatalogError(f"{origin}: missing columns {missing}")
    raw = raw.with_columns(
        [pl.lit(None, pl.String).alias(c) for c in PERMIT_LIMITS.names() if c not in raw.columns]
    )
    for i, row in enumerate(raw.iter_rows(named=True), start=2):
        where = f"{origin} line {i}"
        for col in (
            "facility_id",
            "pollutant",
            "averaging_period",
            "unit",
            "valid_from",
            "permit_no",
            "source",
            "status",
        ):
            if not (row[col] or "").strip():
                raise ControlCatalogError(f"{where}: {col} is empty")
        if row["status"] not in LIMIT_STATUSES:
            raise ControlCatalogError(
                f"{where}: status {row['status']!r} is not verified/unverified"
            )
        if row["averaging_period"] not in ("hour", "day"):
            raise ControlCatalogError(f"{where}: averaging_period must be hour or day")
        if not (row["limit_low"] or row["limit_high"]):
            raise ControlCatalogError(f"{where}: a permit row needs limit_low or limit_high")
    try:
        typed = raw.select(
            [
                (
                    pl.col(name).replace("", None).str.strip_chars().str.to_date()
                    if dtype == pl.Date
                    else pl.col(name).replace("", None).cast(dtype)
                ).alias(name)
                for name, dtype in PERMIT_LIMITS.items()
            ]
        )
    except pl.exceptions.PolarsError as exc:
        raise ControlCatalogError(f"{origin}: a number or date does not parse: {exc}") from exc
    return typed


def season_contains(season: str | None, day: date) -> bool:
    """Return whether ``day`` falls in a ``MM-DD..MM-DD`` season (it may wrap the year end).

    An empty season means the whole year.
    """
    if not season:
        return True
    start, _, end = season.partition("..")
    md = (day.month, day.day)
    lo = tuple(int(x) for x in start.split("-"))
    hi = tuple(int(x) for x in end.split("-"))
    if lo <= hi:
        return lo <= md <= hi
    return md >= lo or md <= hi


def limits_in_force(limits: pl.DataFrame, day: date) -> pl.DataFrame:
    """Return the limit rows that apply on ``day``.

    A row applies from ``valid_from`` to ``valid_to`` (inclusive, open-ended when empty). A
    seasonal row (e.g. the DB11/307-2013 Table 1 winter NH3-N limit, ``12-01..03-31``)
    replaces the season-less row of the same standard, table class, outlet type,
    pollutant and averaging period while the season lasts.
    """
    dated = limits.filter(
        (pl.col("valid_from") <= day) & (pl.col("valid_to").is_null() | (pl.col("valid_to") >= day))
    )
    in_season = [season_contains(s, day) for s in dated["season"].fill_null("").to_list()]
    dated = dated.with_columns(
        _seasonal=pl.col("season").fill_null("") != "",
        _in=pl.Series(in_season, dtype=pl.Boolean),
    ).filter(pl.col("_in"))
    key = ["standard", "table_class", "outlet_type", "pollutant", "averaging_period"]
    return (
        dated.with_columns(_has_seasonal=pl.col("_seasonal").any().over(key))
        .filter(pl.col("_seasonal") | ~pl.col("_has_seasonal"))
        .drop("_seasonal", "_in", "_has_seasonal")
    )


def comparable_limits(limits: pl.DataFrame, code_units: Mapping[str, str]) -> pl.DataFrame:
    """Keep the limit rows that can be compared with the data: a code, a comparable unit.

    Args:
        limits: limit rows (``pollutant``, ``unit``).
        code_units: HJ 212-2017 code → unit of the marts (``zwy.hj212.codes.units()``).

    Returns:
        The rows with a pollutant code whose ``unit`` maps to the code's unit in
        ``units.csv`` with ``comparable = true``.

    """
    units = load_units().filter(pl.col("comparable")).select("limit_unit", "code_unit")
    codes = pl.DataFrame(
        {"pollutant": list(code_units), "_code_unit": list(code_units.values())},
        schema={"pollutant": pl.String, "_code_unit": pl.String},
    )
    return (
        limits.filter(pl.col("pollutant").fill_null("") != "")
        .join(codes, on="pollutant", how="inner")
        .join(
            units,
            left_on=["unit", "_code_unit"],
            right_on=["limit_unit", "code_unit"],
            how="semi",
        )
        .drop("_code_unit")
    )


def _stream_of(pollutant: pl.Expr) -> pl.Expr:
    # HJ 212-2017 Appendix B: w-codes are water parameters, a-codes gas parameters.
    return (
        pl.when(pollutant.str.starts_with("w"))
        .then(pl.lit("wastewater"))
        .when(pollutant.str.starts_with("a"))
        .then(pl.lit("exhaust_gas"))
    )


def _control_pollutant_filter(control: Control) -> pl.Expr:
    params = control.params
    expr = pl.lit(True)
    if params.get("pollutants"):
        expr = expr & pl.col("pollutant").is_in(list(params["pollutants"]))
    if params.get("exclude_pollutants"):
        expr = expr & ~pl.col("pollutant").is_in(list(params["exclude_pollutants"]))
    return expr


def _outlets_of(control: Control, outlets: pl.DataFrame) -> pl.DataFrame:
    df = outlets
    if control.stream != "any":
        df = df.filter(pl.col("stream") == control.stream)
    if "*" not in control.outlet_types:
        df = df.filter(pl.col("outlet_type").is_in(list(control.outlet_types)))
    return df


def _standard_limits(
    control: Control,
    outlets: pl.DataFrame,
    limits: pl.DataFrame,
    o2_ref: pl.DataFrame,
) -> pl.DataFrame:
    params = control.params
    period = params["averaging_period"]
    match_on = list(params["match_on"])
    # limits.csv's own reference_o2 column is informational; the O2 table is the source.
    rows = limits.drop("reference_o2", strict=False).filter(
        (pl.col("averaging_period") == period) & _control_pollutant_filter(control)
    )
    if "*" not in control.outlet_types:
        rows = rows.filter(pl.col("outlet_type").is_in(list(control.outlet_types)))
    joined = (
        _outlets_of(control, outlets)
        .select("outlet_id", "facility_id", *match_on)
        .join(rows, on=match_on, how="inner")
    )
    value_column = str(params.get("value_column", "value"))
    ref = o2_ref.select(
        "standard",
        "applies_to",
        pl.col("reference_o2_pct").alias("reference_o2"),
        pl.col("status").alias("o2_status"),
    ).unique(["standard", "applies_to"], keep="first", maintain_order=True)
    if value_column == "value_zs":
        out_refs = outlets.select("outlet_id", "standard", "applies_to").join(
            ref, on=["standard", "applies_to"], how="left"
        )
        joined = joined.join(
            out_refs.select("outlet_id", "reference_o2", "o2_status"), on="outlet_id", how="left"
        )
    else:
        joined = joined.with_columns(
            pl.lit(None, pl.Float64).alias("reference_o2"),
            pl.lit(None, pl.String).alias("o2_status"),
        )
    return joined.select(
        pl.lit(control.control_id).alias("control_id"),
        "outlet_id",
        "facility_id",
        "pollutant",
        "averaging_period",
        "limit_id",
        "limit_low",
        "limit_high",
        "unit",
        pl.when((pl.col("status") == "unverified") | (pl.col("o2_status") == "unverified"))
        .then(pl.lit("unverified"))
        .otherwise(pl.lit("verified"))
        .alias("status"),
        pl.concat_str([pl.col("standard"), pl.col("table_class")], separator=" ").alias(
            "legal_basis"
        ),
        "clause",
        "source",
        # Without a reference O2 the measured dry concentration is compared (Annex D.2.3).
        pl.when(pl.col("reference_o2").is_not_null())
        .then(pl.lit(value_column))
        .otherwise(pl.lit("value"))
        .alias("value_column"),
        "reference_o2",
        "o2_status",
        pl.lit(None, pl.String).alias("standard_limit_id"),
        pl.col("note").fill_null(""),
    )


def _permit_limits(
    control: Control, outlets: pl.DataFrame, permits: pl.DataFrame, day: date
) -> pl.DataFrame:
    params = control.params
    rows = permits.filter(
        (pl.col("averaging_period") == params["averaging_period"])
        & (pl.col("valid_from") <= day)
        & (pl.col("valid_to").is_null() | (pl.col("valid_to") >= day))
        & _control_pollutant_filter(control)
    ).with_columns(_stream=_stream_of(pl.col("pollutant")))
    targets = _outlets_of(control, outlets).select("outlet_id", "facility_id", "stream")
    cols = [*PERMIT_LIMITS.names(), "_specific"]
    specific = (
        rows.filter(pl.col("outlet_id").is_not_null())
        .join(targets, on=["outlet_id", "facility_id"], how="inner")
        .filter(pl.col("_stream") == pl.col("stream"))
        .with_columns(_specific=pl.lit(True))
        .select(cols)
    )
    wide = (
        rows.filter(pl.col("outlet_id").is_null())
        .drop("outlet_id")
        .join(targets, left_on=["facility_id", "_stream"], right_on=["facility_id", "stream"])
        .with_columns(_specific=pl.lit(False))
        .select(cols)
    )
    both = pl.concat([specific, wide])
    if both.height == 0:
        return pl.DataFrame(schema=EFFECTIVE_LIMITS)
    # An outlet-specific row wins over a facility-wide row for the same pollutant.
    return (
        both.sort("_specific", descending=True)
        .unique(["outlet_id", "pollutant"], keep="first", maintain_order=True)
        .select(
            pl.lit(control.control_id).alias("control_id"),
            "outlet_id",
            "facility_id",
            "pollutant",
            "averaging_period",
            pl.concat_str(
                [
                    pl.lit("PERMIT"),
                    pl.col("permit_no"),
                    pl.col("outlet_id"),
                    pl.col("pollutant"),
                    pl.col("averaging_period"),
                ],
                separator="-",
            ).alias("limit_id"),
            "limit_low",
            "limit_high",
            "unit",
            "status",
            pl.concat_str([pl.lit("discharge permit"), pl.col("permit_no")], separator=" ").alias(
                "legal_basis"
            ),
            pl.col("clause").fill_null("permit limit"),
            "source",
            pl.lit(str(params.get("value_column", "value"))).alias("value_column"),
            pl.lit(None, pl.Float64).alias("reference_o2"),
            pl.lit(None, pl.String).alias("o2_status"),
            pl.lit(None, pl.String).alias("standard_limit_id"),
            pl.col("note").fill_null(""),
        )
    )


def _stricter(standard: pl.DataFrame, permit: pl.DataFrame) -> pl.DataFrame:
    """Combine standard and permit limits: the stricter bound applies.

    DB11 standards are mandatory ("fully mandatory", BRIEF §4.1): a permit can tighten a
    limit but never relax it, so a permit bound looser than the standard's is ignored.
    """
    if permit.height == 0:
        return standard
    key = ["control_id", "outlet_id", "pollutant"]
    s = standard.rename({c: f"s_{c}" for c in standard.columns if c not in key})
    p = permit.rename({c: f"p_{c}" for c in permit.columns if c not in key})
    j = s.join(p, on=key, how="full", coalesce=True)
    tighter_high = pl.col("p_limit_high").is_not_null() & (
        pl.col("s_limit_high").is_null() | (pl.col("p_limit_high") < pl.col("s_limit_high"))
    )
    tighter_low = pl.col("p_limit_low").is_not_null() & (
        pl.col("s_limit_low").is_null() | (pl.col("p_limit_low") > pl.col("s_limit_low"))
    )
    use_p = tighter_high | tighter_low | pl.col("s_limit_id").is_null()
    any_unverified = (pl.col("s_status") == "unverified").fill_null(False) | (
        pl.col("p_status") == "unverified"
    ).fill_null(False)

    def pick(col: str) -> pl.Expr:
        return pl.when(use_p).then(pl.col(f"p_{col}")).otherwise(pl.col(f"s_{col}")).alias(col)

    return j.select(
        *key,
        pick("facility_id"),
        pick("averaging_period"),
        pick("limit_id"),
        pl.when(tighter_low | pl.col("s_limit_id").is_null())
        .then(pl.col("p_limit_low"))
        .otherwise(pl.col("s_limit_low"))
        .alias("limit_low"),
        pl.when(tighter_high | pl.col("s_limit_id").is_null())
        .then(pl.col("p_limit_high"))
        .otherwise(pl.col("s_limit_high"))
        .alias("limit_high"),
        pick("unit"),
        pl.when(use_p & pl.col("s_limit_id").is_not_null())
        .then(pl.when(any_unverified).then(pl.lit("unverified")).otherwise(pl.lit("verified")))
        .otherwise(pick("status"))
        .alias("status"),
        pl.when(use_p & pl.col("s_limit_id").is_not_null())
        .then(pl.format("{} (stricter than {})", pl.col("p_legal_basis"), pl.col("s_legal_basis")))
        .otherwise(pick("legal_basis"))
        .alias("legal_basis"),
        pick("clause"),
        pick("source"),
        pl.coalesce("s_value_column", "p_value_column").alias("value_column"),
        pl.col("s_reference_o2").alias("reference_o2"),
        pl.col("s_o2_status").alias("o2_status"),
        pl.when(use_p).then(pl.col("s_limit_id")).alias("standard_limit_id"),
        pick("note"),
    )


def resolve_limits(
    day: date,
    outlets: pl.DataFrame,
    *,
    permits: pl.DataFrame | None = None,
    limits: pl.DataFrame | None = None,
    o2_ref: pl.DataFrame | None = None,
    code_units: Mapping[str, str] | None = None,
    controls: Sequence[Control] | None = None,
) -> pl.DataFrame:
    """Return the effective limit of every (limit control, outlet, pollutant) on ``day``.

    Args:
        day: the local (Asia/Shanghai) compliance day.
        outlets: the registry's outlets (``OUTLETS`` contract or ``ref_outlets``).
        permits: permit limits (:data:`PERMIT_LIMITS`), default none.
        limits: the limits table, default :func:`expectations.reference.load_limits`.
        o2_ref: the reference-O2 table, default :func:`load_reference_o2`.
        code_units: code → unit of the marts, default ``zwy.hj212.codes.units()``.
        controls: the catalog, default :func:`load_controls`.

    Returns:
        An :data:`EFFECTIVE_LIMITS` frame, at most one row per (control, outlet, pollutant).

    """
    from zwy.hj212.codes import units as hj212_units

    limits = load_limits() if limits is None else limits
    o2_ref = load_reference_o2() if o2_ref is None else o2_ref
    code_units = hj212_units() if code_units is None else code_units
    permits = pl.DataFrame(schema=PERMIT_LIMITS) if permits is None else permits
    controls = load_controls() if controls is None else controls
    usable = comparable_limits(limits_in_force(limits, day), code_units)
    parts = []
    for control in controls:
        if not control.is_limit:
            continue
        std = _standard_limits(control, outlets, usable, o2_ref)
        per = _permit_limits(control, outlets, permits, day)
        parts.append(_stricter(std.cast(EFFECTIVE_LIMITS), per.cast(EFFECTIVE_LIMITS)))
    if not parts:
        return pl.DataFrame(schema=EFFECTIVE_LIMITS)
    out = pl.concat([p.select(EFFECTIVE_LIMITS.names()).cast(EFFECTIVE_LIMITS) for p in parts])
    dup = out.filter(pl.struct("control_id", "outlet_id", "pollutant").is_duplicated())
    if dup.height:
        raise ControlCatalogError(
            "more than one limit applies to the same control, outlet and pollutant on "
            f"{day}: {dup.select('control_id', 'outlet_id', 'pollutant', 'limit_id').rows()}"
        )
    return out.sort("control_id", "outlet_id", "pollutant")
