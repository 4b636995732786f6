"""Alert routing rules, pipeline event kinds and contacts: data, read from CSV files.

- ``routing.csv`` (built in; a deployment overrides it with ``<registry>/alert_routing.csv``
  or ``ZWY_ALERTS__ROUTING_FILE``): which findings go to whom. One rule per row: findings
  of ``kind`` (breach | dq | pipeline) at least as severe as ``min_severity`` go to
  ``audience`` (``facility_ehs``: the facility's EHS contact in ``facilities.csv``; any
  other value: every contact with that ``role`` in ``contacts.csv``) as a ``digest`` (one
  email per recipient per run) or ``immediate`` (one email per finding).
- ``events.csv`` (built in): the alerts the pipeline itself raises (a stage failed, nothing
  arrived, an accounting mismatch, an unreadable file, a quarantine spike) with their
  severity, in the same shape as the controls catalog.
- ``<registry>/contacts.csv``: ``contact_id, name, role, email`` of the bureau's people
  (compliance officers, data stewards, ops).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from zwy.errors import ConfigError

HERE = Path(__file__).parent

#: Severity names, most severe first (the controls catalog uses the same four).
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
KINDS: tuple[str, ...] = ("breach", "dq", "pipeline")
MODES: tuple[str, ...] = ("digest", "immediate")
FACILITY_EHS = "facility_ehs"

ROUTING = pl.Schema(
    {
        "kind": pl.String,
        "min_severity": pl.String,
        "audience": pl.String,
        "mode": pl.String,
        "note_zh": pl.String,
        "note_en": pl.String,
    }
)
CONTACTS = pl.Schema(
    {"contact_id": pl.String, "name": pl.String, "role": pl.String, "email": pl.String}
)
EVENTS = pl.Schema(
    {
        "event_id": pl.String,
        "kind": pl.String,
        "severity": pl.String,
        "name_zh": pl.String,
        "name_en": pl.String,
        "description_en": pl.String,
        "source": pl.String,
    }
)


def _read(path: Path, schema: pl.Schema) -> pl.DataFrame:
    try:
        df = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    missing = [c for c in schema.names() if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}")
    return df.select([pl.col(c).cast(t) for c, t in schema.items()])


def load_routing(path: Path | None = None) -> pl.DataFrame:
    """Read and check the routing rules (default: the built-in ``routing.csv``).

    Raises:
        ConfigError: unreadable file, missing column, unknown kind, severity or mode.

    """
    path = path or HERE / "routing.csv"
    rules = _read(path, ROUTING)
    for col, allowed in (("kind", KINDS), ("min_severity", SEVERITIES), ("mode", MODES)):
        bad = rules.filter(~pl.col(col).is_in(list(allowed)))
        if bad.height:
            raise ConfigError(
                f"{path}: {col} {bad[col][0]!r} (row {bad.row(0)}) is not one of {allowed}"
            )
    if rules.filter(pl.col("audience").is_null()).height:
        raise ConfigError(f"{path}: a rule has no audience")
    return rules


def load_events(path: Path | None = None) -> pl.DataFrame:
    """Read the pipeline event kinds (``event_id, kind, severity, name_zh, name_en, ...``)."""
    return _read(path or HERE / "events.csv", EVENTS)


def load_contacts(registry: Path) -> pl.DataFrame:
    """Read ``<registry>/contacts.csv``; an absent file means no role recipients (empty)."""
    path = registry / "contacts.csv"
    if not path.is_file():
        return pl.DataFrame(schema=CONTACTS)
    contacts = _read(path, CONTACTS)
    bad = contacts.filter(~pl.col("email").str.contains(r"^[^@\s<>]+@[^@\s<>]+$").fill_null(False))
    if bad.height:
        raise ConfigError(f"{path}: contact {bad['contact_id'][0]!r} has no valid email")
    return contacts


def routing_path(registry: Path, configured: Path | None) -> Path | None:
    """Return the routing file in force: configured, else the registry's, else None (built in)."""
    if configured is not None:
        return configured
    candidate = registry / "alert_routing.csv"
    return candidate if candidate.is_file() else None
