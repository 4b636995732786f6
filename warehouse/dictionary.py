"""Generate the data dictionary (``docs/data-dictionary.md``) from the published catalog itself.

Usage::

    uv run python -m warehouse.dictionary <published>/zwy.duckdb --out docs/data-dictionary.md

Every view of the snapshot with its comment, columns, types and column comments: the
analysts' model (``v_*``) first, then the tables it is built on. Only the schema and the
comments go in (no data, no paths), so the document changes only when they do; a test
regenerates it from a sample snapshot and fails when the committed file differs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

HEADER = """# Data dictionary

Generated from the published snapshot by `uv run python -m warehouse.dictionary
<published>/zwy.duckdb --out docs/data-dictionary.md` (a test keeps it in sync). Analysts
open `<published>/zwy.duckdb` read-only (`zwy sql`, `zwy shell`, Python, DBeaver: see the
README); the `v_*` views are the stable model, the other views are the warehouse tables as
of the last published run.
"""


def render(con: duckdb.DuckDBPyConnection) -> str:
    """Return the Markdown dictionary of every view (and table) in ``con``."""
    objects = con.execute(
        "select view_name, comment from duckdb_views() where not internal "
        "union all select table_name, comment from duckdb_tables() order by 1"
    ).fetchall()
    model = [o for o in objects if o[0].startswith("v_")]
    base = [o for o in objects if not o[0].startswith("v_")]
    lines = [HEADER]
    for title, group in (("The analysts' model", model), ("Tables of the snapshot", base)):
        lines.append(f"## {title}\n")
        for name, comment in group:
            lines.append(f"### `{name}`\n")
            lines.append(f"{comment or '(no description)'}\n")
            lines.append("| column | type | description |")
            lines.append("|---|---|---|")
            for col, dtype, ccomment in con.execute(
                "select column_name, data_type, comment from duckdb_columns() "
                "where table_name = ? order by column_index",
                [name],
            ).fetchall():
                text = (ccomment or "").replace("|", "\\|").replace("\n", " ")
                lines.append(f"| `{col}` | {dtype} | {text} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the dictionary of a catalog; return the exit code."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("catalog", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    with duckdb.connect(str(args.catalog), read_only=True) as con:
        text = render(con)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
