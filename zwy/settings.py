"""One typed settings object, read from the environment (prefix ``ZWY_``) with defaults.

Secrets (SMTP passwords, database URLs) come only from the environment; nothing here has a
secret default. ``.env.example`` lists every variable.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ValiditySettings(BaseModel):
    """Data-capture thresholds of HJ 212-2017 Annex D (configurable, defaults cited).

    Gas (Annex D.2, formulas 23-25): a minute needs ``gas_minute_min_values`` valid
    instantaneous values, an hour ``gas_hour_min_minutes`` valid minutes, a day
    ``gas_day_min_hours`` valid hours. Devices that upload real-time data every 30-60 s
    cannot send 12 values a minute: the minute rule is capped at what the device's upload
    interval allows (full coverage), see ``transforms.validity``.
    Water (Annex D.1): an hour needs at least ``water_hour_min_periods`` valid minute
    periods, a day at least ``water_day_min_hours`` valid hours.
    """

    gas_minute_min_values: int = 12
    gas_hour_min_minutes: int = 45
    gas_day_min_hours: int = 20
    water_hour_min_periods: int = 1
    water_day_min_hours: int = 1


class AlertSettings(BaseModel):
    """How alerts are routed and delivered (``ZWY_ALERTS__<NAME>``).

    The SMTP server itself (host, port, STARTTLS or SSL, login and password) is Airflow's
    ``smtp_default`` connection, e.g. ``AIRFLOW_CONN_SMTP_DEFAULT`` in the environment; see
    docs/alerts.md.
    """

    smtp_conn_id: str = "smtp_default"
    from_email: str | None = Field(
        default=None, description="sender; default: the connection's from_email extra"
    )
    max_attempts: int = Field(
        default=10, description="delivery attempts before a pending alert is marked failed"
    )
    immediate_min_severity: str = Field(
        default="critical",
        description="breaches at least this severe also go out at once, one email each, "
        "where the routing rules say 'immediate'",
    )
    quarantine_spike_share: float = Field(
        default=0.05,
        description="a file with more than this share of its frames "
        "quarantined raises a data-quality alert",
    )
    report_base_url: str | None = Field(
        default=None,
        description="where analysts open the reports folder (e.g. https://zwy.example.org/"
        "reports/); default: the report's file path",
    )
    max_charts: int = Field(default=6, description="charts per email, worst breaches first")
    routing_file: Path | None = Field(
        default=None,
        description="routing rules CSV; default: <registry>/alert_routing.csv "
        "if present, else the built-in rules (zwy/alerts/routing.csv)",
    )


class Settings(BaseSettings):
    """Where the product reads and writes, and how it behaves.

    Every path defaults to a folder under ``data_dir`` (``./data`` in the working
    directory) so that the embedded default needs no configuration at all.
    """

    model_config = SettingsConfigDict(env_prefix="ZWY_", env_nested_delimiter="__")

    data_dir: Path = Field(default=Path("data"), description="root of local state")
    warehouse_path: Path | None = Field(default=None, description="DuckDB file")
    inbox_dir: Path | None = Field(default=None, description="inbox/YYYY-MM-DD/<stream>/")
    registry_dir: Path | None = Field(default=None, description="facility registry CSVs")
    staging_dir: Path | None = Field(default=None, description="Parquet between stages")
    reports_dir: Path | None = Field(default=None, description="HTML reports, Data Docs")
    published_dir: Path | None = Field(
        default=None, description="the analysts' snapshot (default: <warehouse dir>/published)"
    )
    default_crc_policy: str = Field(
        default="tolerant",
        description="tolerant: Appendix A accepted, Modbus variants accepted and marked; "
        "strict: Appendix A only",
    )
    parse_chunk_mb: int = Field(
        default=32,
        ge=1,
        description="HJ 212 logs are parsed in groups of at most about this many MB "
        "(a small stream in about eight groups, at least 4 MB each)",
    )
    parse_workers: int = Field(
        default=2,
        ge=1,
        description="groups of HJ 212 logs parsed at once (threads); peak memory grows "
        "with parse_workers x parse_chunk_mb (about 23 bytes per byte of log)",
    )
    staging_keep_days: int = Field(
        default=14,
        ge=0,
        description="days of staging kept behind the day just loaded: an older day's "
        "staging folder, once loaded and not staged again since, is removed after each "
        "load (the warehouse holds what it staged; a rerun stages it again from the "
        "inbox); 0 keeps every day's",
    )
    chart_workers: int = Field(
        default=2,
        ge=1,
        description="processes drawing a day's charts at once (report and alerts, from "
        "8 charts on); 1: drawn in the calling process",
    )
    validity: ValiditySettings = Field(default_factory=ValiditySettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    holidays_file: Path | None = Field(
        default=None,
        description="public holidays and make-up working days (date,kind,name,status,source) "
        "for the 5-working-day manifest rule; default zwy/reference/holidays_cn.csv",
    )

    @classmethod
    def for_district(cls, data_dir: Path, district: Path) -> Settings:
        """Return settings writing under ``data_dir`` for a district from ``zwy sample``.

        ``district`` holds ``inbox/`` and ``registry/`` as the generator writes them.
        """
        return cls(
            data_dir=data_dir, inbox_dir=district / "inbox", registry_dir=district / "registry"
        )

    @property
    def warehouse(self) -> Path:
        """The DuckDB warehouse file."""
        return self.warehouse_path or self.data_dir / "warehouse" / "zwy.duckdb"

    @property
    def inbox(self) -> Path:
        """The inbox root: ``<inbox>/<YYYY-MM-DD>/<stream>/<files>``."""
        return self.inbox_dir or self.data_dir / "inbox"

    @property
    def registry(self) -> Path:
        """The facility registry folder (facilities.csv, outlets.csv, monitoring_points.csv)."""
        return self.registry_dir or self.data_dir / "registry"

    @property
    def staging(self) -> Path:
        """Parquet files passed between stages, keyed by day and stream."""
        return self.staging_dir or self.data_dir / "staging"

    @property
    def published(self) -> Path:
        """The analysts' read-only snapshot: ``<published>/zwy.duckdb`` and its Parquet files."""
        return self.published_dir or self.warehouse.parent / "published"

    @property
    def reports(self) -> Path:
        """Generated reports."""
        return self.reports_dir or self.data_dir / "reports"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once from the environment)."""
    return Settings()


def settings_from_options(
    inbox: Path | None = None,
    registry: Path | None = None,
    warehouse: Path | None = None,
    data_dir: Path | None = None,
    reports: Path | None = None,
) -> Settings:
    """Return settings from the environment with the command-line path overrides applied."""
    overrides = {
        "data_dir": data_dir,
        "inbox_dir": inbox,
        "registry_dir": registry,
        "warehouse_path": warehouse,
        "reports_dir": reports,
    }
    return Settings(**{k: v for k, v in overrides.items() if v})  # type: ignore[arg-type]
