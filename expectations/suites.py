"""Great Expectations suites built from the control catalog, and how a run validates them.

One suite per batch (:data:`expectations.controls.BATCHES`), defined in code (GX 1.x: data
source → asset → batch definition, validated with its suite; Data Docs add validation
definitions and a checkpoint, whose stored results they render). Every
expectation carries ``meta = {"control_id", "limit_id"}`` so that the rows GX reports as
unexpected become findings of that control. Limits are literal in the suites: one
``expect_column_values_to_be_between`` per limit row in force that day (from
``limits.csv`` or a permit), restricted to the rows of that limit by a row condition, so
the suite and Data Docs show ``COD_Cr (DB11-307-2013-T3-COD_Cr) <= 500``.

Batches are Parquet files written by :func:`write_batches`. Two engines read them:

* ``sql`` (default): DuckDB through ``duckdb-engine`` (an in-memory database reading the
  Parquet files; never the warehouse file, so GX takes no lock).
* ``pandas``: a pandas filesystem data source reading the same Parquet files. GX does not support DuckDB: :func:`patch_gx_for_duckdb` adds it to the dialects
  GX keeps a persistent connection for (``shared/PITFALLS.md``); GX is pinned to 1.24.1
  and ``tests/expectations`` run both engines.

``docs/controls.md`` records the measurement behind the default.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from expectations.controls import Control
from expectations.errors import ControlRunError
from zwy.runtime import defer_import
from zwy.settings import ValiditySettings

if TYPE_CHECKING:
    from great_expectations.data_context.data_context.abstract_data_context import (
        AbstractDataContext,
    )

Engine = Literal["pandas", "sql"]
ENGINES: tuple[str, ...] = ("pandas", "sql")
DEFAULT_ENGINE: Engine = "sql"

#: Ids and values that go into a row condition: no quotes, no backslashes.
_SAFE = re.compile(r'^[^"\\]+$')


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation to add to a batch's suite (engine independent)."""

    batch: str
    control_id: str
    kind: str  # between
    column: str
    min_value: float | None = None
    max_value: float | None = None
    condition: tuple[str, str] | None = None  # (column, value): rows where column == value
    limit_id: str | None = None
    description: str = ""


@dataclass
class SuiteRun:
    """What a run of the suites returned, reduced to what the controls need.

    Attributes:
        failures: (control_id, limit_id or None, batch, column) → unexpected ``row_id``
            values.
        evaluated: control id → number of expectations evaluated.
        results: the validation results as JSON-able dicts (kept per run under ``gx/``).
        success: GX's overall verdict.
        seconds: wall time of the run, GX context set-up included.

    """

    failures: dict[tuple[str, str | None, str, str], list[int]] = field(default_factory=dict)
    evaluated: dict[str, int] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    success: bool = True
    seconds: float = 0.0


def patch_gx_for_duckdb() -> None:
    """Make GX keep one connection open for DuckDB (else every metric fails).

    GX fetches SQL results after returning the connection to the pool; for dialects not in
    ``_PERSISTED_CONNECTION_DIALECTS`` that loses DuckDB's result (``list index out of
    range``). The list holds ``GXSqlDialect`` members and GX compares with ``.value``, so a
    ``str`` with a ``value`` attribute stands in for the missing DuckDB member.
    """
    from great_expectations.execution_engine import sqlalchemy_execution_engine as see

    class _DuckDBDialect(str):
        value = "duckdb"

    current = tuple(see._PERSISTED_CONNECTION_DIALECTS)
    if not any(getattr(d, "value", d) == "duckdb" for d in current):
        see._PERSISTED_CONNECTION_DIALECTS = (*current, _DuckDBDialect("duckdb"))  # type: ignore[assignment]


def patch_gx_kwargs() -> None:
    """Make GX read an expectation's kwargs once per lookup, not once per key.

    ``Expectation.configuration`` (GX 1.24) is a property that rebuilds an
    ``ExpectationConfiguration`` from the pydantic model on every access, and
    ``_get_domain_kwargs``, ``_get_success_kwargs``, ``_get_success_kwarg`` and
    ``_get_runtime_kwargs`` access it once per key (twice per key found). Validating an
    expectation calls them several times, so building configurations was about a third of
    GX's time per expectation (profiled). The replacements read ``configuration.kwargs``
    once per call and return the same values; the configuration is still rebuilt on every
    call, so a changed expectation is read as it is now.
    """
    from great_expectations.expectations.expectation import Expectation
    from great_expectations.expectations.expectation_configuration import parse_result_format

    cls: Any = Expectation  # methods are replaced below
    if getattr(cls, "_zwy_kwargs_once", False):
        return

    def _kwarg(self: Any, kwargs: Mapping[str, Any], key: str, default: Any = None) -> Any:
        # GX's _get_success_kwarg, over kwargs read once.
        if key in kwargs:
            return kwargs[key]
        field = self.__fields__.get(key)
        if field is not None:
            return field.default if not field.required else default
        return default

    def _values(self: Any, kwargs: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
        return {key: kwargs.get(key, self._get_default_value(key)) for key in keys}

    def _get_domain_kwargs(self: Any) -> dict[str, Any]:
        return _values(self, self.configuration.kwargs, self.domain_keys)

    def _success(self: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        # GX's _get_success_kwargs: the success keys, then the domain keys over them.
        return {
            **_values(self, kwargs, self.success_keys),
            **_values(self, kwargs, self.domain_keys),
        }

    def _get_success_kwargs(self: Any) -> dict[str, Any]:
        return _success(self, self.configuration.kwargs)

    def _get_success_kwarg(self: Any, key: str, default: Any = None) -> Any:
        return _kwarg(self, self.configuration.kwargs, key, default)

    def _get_runtime_kwargs(
        self: Any, runtime_configuration: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        runtime_configuration = runtime_configuration or {}
        kwargs = self.configuration.kwargs
        out = {
            key: runtime_configuration[key]
            if key in runtime_configuration
            else _kwarg(self, kwargs, key)
            for key in self.runtime_keys
        }
        out.update(_success(self, kwargs))
        out["result_format"] = parse_result_format(out["result_format"])
        return out

    cls._get_domain_kwargs = _get_domain_kwargs
    cls._get_success_kwargs = _get_success_kwargs
    cls._get_success_kwarg = _get_success_kwarg
    cls._get_runtime_kwargs = _get_runtime_kwargs
    cls._zwy_kwargs_once = True


def _check_safe(text: str) -> str:
    if not _SAFE.match(text):
        raise ControlRunError(f"{text!r} cannot be used in a GX row condition (quote or backslash)")
    return text


#: Controls checked as one bound on one column of their batch:
#: control id → (column, ``min`` or ``max``, the catalog parameter holding the bound,
#: the rows it applies to as (column, value) or None for all).
_ONE_BOUND: dict[str, tuple[str, str, str, tuple[str, str] | None]] = {
    "ZWY-DQ-NO-DATA": ("valid_hours_any", "min", "min", None),
    "ZWY-DQ-OFFLINE": ("hours", "max", "max_offline_hours", ("run_kind", "offline")),
    "ZWY-DQ-S-SHARE": ("s_share", "max", "max_share", None),
    "ZWY-DQ-T-FLAG": ("n_flag_t", "max", "max", None),
    "ZWY-DQ-UNKNOWN-MN": ("registered_i", "min", "min", None),
    "ZWY-DQ-UNKNOWN-CODE": ("code_known", "min", "min", None),
}


def expectation_specs(
    controls: Sequence[Control],
    limits: pl.DataFrame,
    validity: ValiditySettings,
) -> list[ExpectationSpec]:
    """Translate the catalog and the day's limits into expectations.

    Args:
        controls: the control catalog.
        limits: the effective limits of the day (:func:`expectations.controls.resolve_limits`).
        validity: the Annex D capture thresholds (day capture).

    Returns:
        One spec per expectation, in catalog order; limit controls get one per limit row.

    """
    specs: list[ExpectationSpec] = []
    for c in controls:
        p = c.params
        name = f"{c.control_id} {c.name_en} / {c.name_zh}"
        if c.is_limit:
            rows = (
                limits.filter(pl.col("control_id") == c.control_id)
                .select("limit_id", "limit_low", "limit_high", "unit", "pollutant")
                .unique("limit_id", keep="first", maintain_order=True)
                .sort("limit_id")
            )
            for r in rows.iter_rows(named=True):
                bounds = " .. ".join(
                    str(b) for b in (r["limit_low"], r["limit_high"]) if b is not None
                )
                specs.append(
                    ExpectationSpec(
                        batch=c.batch,
                        control_id=c.control_id,
                        kind="between",
                        column="checked",
                        min_value=r["limit_low"],
                        max_value=r["limit_high"],
                        condition=("limit_id", _check_safe(r["limit_id"])),
                        limit_id=r["limit_id"],
                        description=f"{name}: {r['pollutant']} {r['limit_id']} {bounds} {r['unit']}",
                    )
                )
            continue
        cid = c.control_id
        if cid == "ZWY-DQ-HOUR-CAPTURE":
            specs.append(
                ExpectationSpec(
                    c.batch, cid, "between", "capture_valid", min_value=1, description=name
                )
            )
        elif cid == "ZWY-DQ-DAY-CAPTURE":
            for cls, threshold in (
                ("gas", validity.gas_day_min_hours),
                ("water", validity.water_day_min_hours),
            ):
                specs.append(
                    ExpectationSpec(
                        c.batch,
                        cid,
                        "between",
                        "valid_hours",
                        min_value=threshold,
                        condition=("capture_class", cls),
                        description=f"{name}: {cls} days need {threshold} valid hours",
                    )
                )
        elif cid in _ONE_BOUND:
            column, side, param, condition = _ONE_BOUND[cid]
            bound = {f"{side}_value": p[param]}
            specs.append(
                ExpectationSpec(
                    c.batch, cid, "between", column, condition=condition, description=name, **bound
                )
            )
        elif cid == "ZWY-DQ-FLATLINE":
            specs.append(
                ExpectationSpec(
                    c.batch,
                    cid,
                    "between",
                    "hours",
                    max_value=int(p["min_hours"]) - 1,
                    condition=("run_kind", "flatline"),
                    description=name,
                )
            )
        elif cid == "ZWY-DQ-PINNED":
            for column, param, what in (
                ("pinned_hours", "max_hours_in_band", "hourly limits"),
                ("pinned_days", "max_days_in_band", "daily limits"),
            ):
                specs.append(
                    ExpectationSpec(
                        c.batch,
                        cid,
                        "between",
                        column,
                        max_value=p[param],
                        description=f"{name} ({what})",
                    )
                )
        else:
            raise ControlRunError(f"control {cid} has no GX translation in expectations/suites.py")
    return specs


def param_specs(controls: Sequence[Control]) -> list[ExpectationSpec]:
    """One ``between`` expectation per control from its ``params``.

    ``column`` between ``min`` and ``max``; with ``run_kind`` only the batch rows of that
    kind are judged. The solid-waste and dust catalogs are written this way.
    """
    return [
        ExpectationSpec(
            batch=c.batch,
            control_id=c.control_id,
            kind="between",
            column=str(c.params["column"]),
            min_value=c.params.get("min"),
            max_value=c.params.get("max"),
            condition=(("run_kind", str(c.params["run_kind"])) if "run_kind" in c.params else None),
            description=f"{c.control_id} {c.name_en} / {c.name_zh}",
        )
        for c in controls
    ]


def with_row_id(frame: pl.DataFrame) -> pl.DataFrame:
    """Return the batch with numbered rows (``row_id``): GX reports unexpected rows by it."""
    return frame.with_row_index("row_id").with_columns(pl.col("row_id").cast(pl.Int64))


def write_batches(batches: Mapping[str, pl.DataFrame], folder: Path) -> dict[str, Path]:
    """Write each batch as ``<folder>/<name>.parquet`` (what GX validates, kept for audit)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, frame in batches.items():
        path = folder / f"{name}.parquet"
        frame.write_parquet(path)
        out[name] = path
    return out


def _quiet_gx() -> None:
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    # GX imports scipy.stats (0.6-0.9 CPU-s) for its KL-divergence and KS-test
    # expectations and altair (0.2-0.3 CPU-s) for the KL expectation's charts; no control
    # uses them. Each is imported if ever read.
    for unused in ("scipy.stats", "altair"):
        defer_import(unused)


def import_gx() -> None:
    """Import GX, quietened (2.5 s of pure Python: callers may run it in a thread early).

    A failure is left for :func:`new_context`, which imports again and raises it where GX
    is used (in a thread it would only be printed).
    """
    _quiet_gx()
    try:
        import great_expectations  # noqa: F401
    except Exception:
        return


def new_context() -> AbstractDataContext:
    """Return an ephemeral GX context with progress bars off (nothing written to disk)."""
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return ctx


def _expectation(spec: ExpectationSpec, engine: Engine) -> Any:
    from great_expectations.expectations.core.expect_column_values_to_be_between import (
        ExpectColumnValuesToBeBetween,
    )

    kwargs: dict[str, Any] = {
        "column": spec.column,
        "meta": {"control_id": spec.control_id, "limit_id": spec.limit_id},
        "description": spec.description or None,
    }
    if spec.min_value is not None:
        kwargs["min_value"] = spec.min_value
    if spec.max_value is not None:
        kwargs["max_value"] = spec.max_value
    if spec.condition is not None:
        from great_expectations.expectations.row_conditions import Column

        col, value = spec.condition
        # Condition objects (GX >= 1.10) work on pandas and SQL alike; the legacy string
        # parser rejects non-ASCII values such as "DB11-307-2013-T3-石油类".
        kwargs["row_condition"] = Column(col) == value
    return ExpectColumnValuesToBeBetween(**kwargs)


def _result_format(engine: Engine, max_rows: int) -> dict[str, Any]:
    """Return the result format of every run: each unexpected row's ``row_id``, no values.

    On SQL, GX lists at most ``partial_unexpected_count`` unexpected rows even with
    ``COMPLETE``; it is raised to ``max_rows`` (the most rows any batch has) so that no
    finding is lost.
    """
    return {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": ["row_id"],
        "partial_unexpected_count": max(20, max_rows) if engine == "sql" else 20,
        "return_unexpected_index_query": False,
        "exclude_unexpected_values": True,
    }


def _register(
    ctx: AbstractDataContext,
    specs: Sequence[ExpectationSpec],
    batch_paths: Mapping[str, Path],
    name: str,
    engine: Engine,
) -> list[tuple[str, Any, Any]]:
    """Register the data source and one asset per batch; return (batch, batch definition, suite).

    Only batches with at least one expectation are returned. The suites are built, not
    added to the context's store (the caller adds them when it needs them stored).
    """
    import great_expectations as gx

    if engine not in ENGINES:
        raise ControlRunError(f"unknown GX engine {engine!r}; expected one of {ENGINES}")
    folders = {p.parent for p in batch_paths.values()}
    if len(folders) != 1:
        raise ControlRunError("all batches of a run live in one folder")
    folder = folders.pop()
    patch_gx_kwargs()
    if engine == "pandas":
        ds: Any = ctx.data_sources.add_pandas_filesystem(f"{name}_files", base_directory=folder)
    else:
        patch_gx_for_duckdb()
        ds = ctx.data_sources.add_sql(f"{name}_duckdb", connection_string="duckdb:///:memory:")
    out = []
    for batch, path in batch_paths.items():
        batch_specs = [s for s in specs if s.batch == batch]
        if not batch_specs:
            continue
        if engine == "pandas":
            asset = ds.add_parquet_asset(batch)
            bd = asset.add_batch_definition_path(f"{batch}_day", path=Path(path.name))
        else:
            asset = ds.add_query_asset(
                batch, query=f"select * from read_parquet('{path.as_posix()}')"
            )
            bd = asset.add_batch_definition_whole_table(f"{batch}_day")
        suite = gx.ExpectationSuite(
            name=f"zwy_{batch}",
            expectations=[_expectation(spec, engine) for spec in batch_specs],
        )
        out.append((batch, bd, suite))
    return out


def build_checkpoint(
    ctx: AbstractDataContext,
    specs: Sequence[ExpectationSpec],
    batch_paths: Mapping[str, Path],
    name: str,
    engine: Engine = DEFAULT_ENGINE,
    max_rows: int = 20,
) -> Any:
    """Register data source, assets, suites and validation definitions; return the Checkpoint.

    The Checkpoint stores its results in the context, which is what Data Docs render
    (:mod:`expectations.docs`); the nightly run validates each batch directly
    (:func:`run_suites`).

    Args:
        ctx: a GX context.
        specs: the expectations (:func:`expectation_specs`).
        batch_paths: batch name → Parquet file.
        name: unique name of this run's checkpoint.
        engine: ``pandas`` or ``sql``.
        max_rows: the most rows any batch has. On SQL, GX lists at most
            ``partial_unexpected_count`` unexpected rows even with ``COMPLETE``; it is
            raised to this so that no finding is lost.

    Returns:
        A ``great_expectations.Checkpoint`` with one validation definition per batch that
        has at least one expectation.

    """
    import great_expectations as gx

    vds = []
    for batch, bd, suite in _register(ctx, specs, batch_paths, name, engine):
        # The suite gets its expectations before it is added: each add_expectation on a
        # stored suite saves the whole suite again (0.45 s for 35 expectations).
        stored = ctx.suites.add(suite)
        vds.append(
            ctx.validation_definitions.add(
                gx.ValidationDefinition(name=f"{name}_{batch}", data=bd, suite=stored)
            )
        )
    return ctx.checkpoints.add(
        gx.Checkpoint(
            name=name,
            validation_definitions=vds,
            result_format=_result_format(engine, max_rows),
        )
    )


def _row_ids(result: Mapping[str, Any]) -> list[int]:
    """Return the ``row_id`` values of a COMPLETE result (with or without grouped values)."""
    ids: list[int] = []
    for r in result.get("unexpected_index_list") or []:
        value = r["row_id"] if isinstance(r, Mapping) else r
        if isinstance(value, list | tuple):
            ids.extend(int(v) for v in value)
        else:
            ids.append(int(value))
    return sorted(ids)


def run_suites(
    specs: Sequence[ExpectationSpec],
    batch_paths: Mapping[str, Path],
    engine: Engine = DEFAULT_ENGINE,
    name: str | None = None,
    row_counts: Mapping[str, int] | None = None,
) -> SuiteRun:
    """Validate each batch with its suite and collect the unexpected rows per control.

    Each batch is validated directly (GX's ``Batch.validate`` with the batch's suite), not
    through a Checkpoint: a Checkpoint also stores the suites, validation definitions and
    results in the context and checks before running that none changed since they were
    stored (re-reading each one from its store), which a run that builds and runs them in
    the same call does not need. That bookkeeping was a quarter of GX's time on a district
    day (profiled: 1.2 of 4.6 s); the expectations, and so the results, are the same. Data
    Docs, which render stored results, still run a Checkpoint (:func:`build_checkpoint`).

    Args:
        specs: the expectations.
        batch_paths: batch name → Parquet file.
        engine: ``pandas`` or ``sql``.
        name: the run's name, prefixing its data source (default a fresh one).
        row_counts: batch name → rows; when given, an expectation reporting more
            unexpected rows than its index list holds is an error (nothing is dropped).

    Returns:
        The failures per (control, limit, batch) and the JSON-able results.

    Raises:
        ControlRunError: an expectation raised inside GX, or GX truncated a list of rows.

    """
    t0 = time.perf_counter()
    ctx = new_context()
    name = name or f"zwy_{uuid.uuid4().hex[:8]}"
    max_rows = max(row_counts.values(), default=0) if row_counts else 0
    if engine == "sql" and not row_counts:
        max_rows = sum(
            pl.scan_parquet(p).select(pl.len()).collect().item() for p in batch_paths.values()
        )
    result_format = _result_format(engine, max_rows)
    run = SuiteRun()
    for batch, bd, suite in _register(ctx, specs, batch_paths, name, engine):
        vr = bd.get_batch().validate(suite, result_format=result_format)
        vr.meta["batch"] = batch
        run.success = run.success and bool(vr.success)
        run.results.append(vr.to_json_dict())
        for r in vr.results:
            meta = r.expectation_config.meta or {}
            cid = str(meta.get("control_id"))
            run.evaluated[cid] = run.evaluated.get(cid, 0) + 1
            info = r.exception_info or {}
            if info.get("raised_exception"):
                raise ControlRunError(
                    f"GX expectation of {cid} ({meta.get('limit_id')}) raised: "
                    f"{info.get('exception_message')}"
                )
            if r.success:
                continue
            res = r.result or {}
            ids = _row_ids(res)
            count = int(res.get("unexpected_count") or 0)
            if len(ids) != count:
                raise ControlRunError(
                    f"GX returned {len(ids)} of {count} unexpected rows for {cid}: "
                    "the result list was truncated"
                )
            column = str(r.expectation_config.kwargs.get("column"))
            key = (cid, meta.get("limit_id"), batch, column)
            run.failures.setdefault(key, []).extend(ids)
    run.seconds = time.perf_counter() - t0
    return run


def failures_frame(run: SuiteRun) -> pl.DataFrame:
    """Return a run's failures as rows: control_id, limit_id, batch, column, row_id."""
    rows = [
        (cid, lid, batch, column, rid)
        for (cid, lid, batch, column), ids in run.failures.items()
        for rid in ids
    ]
    return pl.DataFrame(
        rows,
        schema={
            "control_id": pl.String,
            "limit_id": pl.String,
            "batch": pl.String,
            "column": pl.String,
            "row_id": pl.Int64,
        },
        orient="row",
    )


def plain_sql(spec: ExpectationSpec, path: Path) -> str:
    """Return the DuckDB query that finds the rows ``spec`` rejects, without GX.

    ``expect_column_values_to_be_between`` ignores nulls and includes both bounds; so does
    this query. It is the "SQL that reproduces" a finding and the baseline GX is timed
    against (docs/controls.md).
    """
    where = [f"{spec.column} is not null"]
    if spec.condition is not None:
        col, value = spec.condition
        where.append(f"{col} = '{_check_safe(value)}'")
    bad = []
    if spec.min_value is not None:
        bad.append(f"{spec.column} < {spec.min_value!r}")
    if spec.max_value is not None:
        bad.append(f"{spec.column} > {spec.max_value!r}")
    where.append("(" + " or ".join(bad) + ")")
    return f"select row_id from read_parquet('{path.as_posix()}') where " + " and ".join(where)


def judge_plain(
    specs: Sequence[ExpectationSpec], batch_paths: Mapping[str, Path]
) -> dict[tuple[str, str | None, str, str], list[int]]:
    """Evaluate the expectations as one plain DuckDB query (the GX-free baseline).

    Returns:
        The same mapping as :attr:`SuiteRun.failures`.

    """
    import duckdb

    parts = []
    for i, spec in enumerate(specs):
        parts.append(
            f"select {i} as spec, row_id from ({plain_sql(spec, batch_paths[spec.batch])})"
        )
    out: dict[tuple[str, str | None, str, str], list[int]] = {}
    if not parts:
        return out
    with duckdb.connect() as con:
        rows = con.execute(" union all ".join(parts) + " order by spec, row_id").fetchall()
    for i, row_id in rows:
        s = specs[i]
        out.setdefault((s.control_id, s.limit_id, s.batch, s.column), []).append(int(row_id))
    return out
