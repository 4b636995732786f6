"""GX Data Docs for a validation run, built off the critical path.

``zwy validate`` keeps, per run, the Parquet batches it validated and the expectations it
built (``<data_dir>/gx/<day>/<run_id>/``). :func:`build_docs` re-runs that Checkpoint on
those files in a fresh GX context whose Data Docs site is ``<reports>/data_docs/<day>/``
and renders it. It never opens the warehouse, so it can run at any time, on any machine
that has the run folder; the nightly validation and the report do not wait for it.

Rebuilding Data Docs gets slower as results pile up (``shared/PITFALLS.md``): each day's
site holds only its latest run (older validation pages are removed first).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from datetime import date
from pathlib import Path

from expectations.errors import ControlRunError
from expectations.suites import ExpectationSpec, build_checkpoint, new_context
from zwy.settings import Settings

SPECS_FILE = "expectations.json"
BATCHES = "batches"


def save_specs(specs: list[ExpectationSpec], run_dir: Path) -> Path:
    """Write a run's expectations next to its batches (what Data Docs re-run)."""
    path = run_dir / SPECS_FILE
    path.write_text(
        json.dumps([asdict(s) for s in specs], ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return path


def load_specs(run_dir: Path) -> list[ExpectationSpec]:
    """Read the expectations a run was validated with."""
    path = run_dir / SPECS_FILE
    if not path.is_file():
        raise ControlRunError(f"{path} is missing: the run folder is incomplete")
    out = []
    for d in json.loads(path.read_text(encoding="utf-8")):
        cond = d.get("condition")
        out.append(ExpectationSpec(**{**d, "condition": tuple(cond) if cond else None}))
    return out


def docs_dir(day: date, settings: Settings) -> Path:
    """Return the Data Docs site folder of ``day``."""
    return settings.reports / "data_docs" / day.isoformat()


def build_docs(day: date, run_dir: Path, settings: Settings) -> Path:
    """Render GX Data Docs for the validation run in ``run_dir``.

    Returns:
        The site's ``index.html``.

    """
    specs = load_specs(run_dir)
    paths = {p.stem: p for p in sorted((run_dir / BATCHES).glob("*.parquet"))}
    if not paths:
        raise ControlRunError(f"no batches under {run_dir / BATCHES}")
    site = docs_dir(day, settings)
    shutil.rmtree(site / "validations", ignore_errors=True)
    site.mkdir(parents=True, exist_ok=True)
    ctx = new_context()
    ctx.add_data_docs_site(
        site_name="zwy",
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(site),
            },
        },
    )
    checkpoint = build_checkpoint(ctx, specs, paths, f"zwy_docs_{run_dir.name}", "pandas")
    checkpoint.run()
    ctx.build_data_docs(site_names=["zwy"])
    index = site / "index.html"
    if not index.is_file():
        raise ControlRunError(f"GX did not write {index}")
    return index
