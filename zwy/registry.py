"""The facility registry: facilities, their outlets and the HJ 212 devices (MN) that monitor them.

The registry is reference data kept as CSV files (``facilities.csv``, ``outlets.csv``,
``monitoring_points.csv``) in the registry folder; the sample generator writes one for the
built-in district. Every run loads it into the warehouse's ``ref_*`` tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from zwy.contracts import FACILITIES, MONITORING_POINTS, OUTLETS
from zwy.errors import ConfigError

FILES: dict[str, tuple[str, pl.Schema]] = {
    "facilities": ("facilities.csv", FACILITIES),
    "outlets": ("outlets.csv", OUTLETS),
    "monitoring_points": ("monitoring_points.csv", MONITORING_POINTS),
}


@dataclass(frozen=True)
class Registry:
    """The three registry tables, typed per :mod:`zwy.contracts`."""

    facilities: pl.DataFrame
    outlets: pl.DataFrame
    monitoring_points: pl.DataFrame

    def as_dict(self) -> dict[str, pl.DataFrame]:
        """Return the tables keyed by name (``facilities``, ``outlets``, ``monitoring_points``)."""
        return {
            "facilities": self.facilities,
            "outlets": self.outlets,
            "monitoring_points": self.monitoring_points,
        }

    def crc_policies(self) -> dict[str, str]:
        """Return each MN's CRC policy (``tolerant`` or ``strict``)."""
        mp = self.monitoring_points
        return dict(zip(mp["mn"].to_list(), mp["crc_policy"].to_list(), strict=True))


def load_registry(folder: Path) -> Registry:
    """Read and type-check the registry CSVs in ``folder``.

    Raises:
        ConfigError: a file is missing, lacks a column, has a duplicate key or a dangling
            reference (an outlet of an unknown facility, a device of an unknown outlet).

    """
    tables: dict[str, pl.DataFrame] = {}
    for name, (file_name, schema) in FILES.items():
        path = folder / file_name
        if not path.is_file():
            raise ConfigError(
                f"registry file {path} is missing; run `zwy sample` or point ZWY_REGISTRY_DIR "
                "at your registry"
            )
        df = pl.read_csv(path, infer_schema=False)
        missing = [c for c in schema.names() if c not in df.columns]
        if missing:
            raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}")
        try:
            tables[name] = df.select([pl.col(c).cast(t) for c, t in schema.items()])
        except pl.exceptions.PolarsError as exc:
            raise ConfigError(f"{path}: a column does not have its expected type: {exc}") from exc
    reg = Registry(**tables)
    _check_keys(reg, folder)
    return reg


def _check_keys(reg: Registry, folder: Path) -> None:
    for df, key, file_name in (
        (reg.facilities, "facility_id", "facilities.csv"),
        (reg.outlets, "outlet_id", "outlets.csv"),
        (reg.monitoring_points, "mn", "monitoring_points.csv"),
    ):
        dup = df.filter(pl.col(key).is_duplicated())[key].unique().to_list()
        if dup:
            raise ConfigError(f"{folder / file_name}: duplicate {key} {sorted(dup)[:5]}")
    dangling = reg.outlets.join(reg.facilities, on="facility_id", how="anti")
    if dangling.height:
        raise ConfigError(
            f"{folder / 'outlets.csv'}: outlet(s) {dangling['outlet_id'].to_list()[:5]} "
            "reference an unknown facility_id"
        )
    dangling = reg.monitoring_points.join(reg.outlets, on="outlet_id", how="anti")
    if dangling.height:
        raise ConfigError(
            f"{folder / 'monitoring_points.csv'}: device(s) {dangling['mn'].to_list()[:5]} "
            "reference an unknown outlet_id"
        )


def read_optional_table(path: Path, schema: pl.Schema) -> pl.DataFrame:
    """Read an optional registry CSV typed as ``schema`` (ISO dates); absent: empty.

    Raises:
        ConfigError: a column is missing or a value does not have its type.

    """
    if not path.is_file():
        return pl.DataFrame(schema=schema)
    df = pl.read_csv(path, infer_schema=False)
    missing = [c for c in schema.names() if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}")
    try:
        return df.select(
            [
                pl.col(c).str.to_date() if t == pl.Date else pl.col(c).cast(t)
                for c, t in schema.items()
            ]
        )
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(f"{path}: a column does not have its expected type: {exc}") from exc
