"""Maintenance of a warehouse file: ``python -m warehouse <command> <file.duckdb>``.

``refresh-views``
    Point the staging views at the Parquet folder next to the file (run it once after
    moving or copying the warehouse folder: the views hold absolute paths).
``remove-orphans``
    Delete Parquet files that ``meta_partitions`` does not list (left by a crashed load).

Both need the write lock: no other process may have the file open.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from warehouse.db import connect
from warehouse.partitions import refresh_views, remove_orphan_files
from zwy.errors import WarehouseError


def main(argv: Sequence[str] | None = None) -> int:
    """Run one maintenance command; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m warehouse", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["refresh-views", "remove-orphans"])
    parser.add_argument("warehouse", type=Path, help="the DuckDB file")
    args = parser.parse_args(argv)
    if not args.warehouse.is_file():
        print(f"no warehouse file {args.warehouse}", file=sys.stderr)
        return 2
    try:
        with connect(args.warehouse) as con:
            if args.command == "refresh-views":
                counts = refresh_views(con)
                print(", ".join(f"{view}: {n} file(s)" for view, n in counts.items()))
            else:
                removed = remove_orphan_files(con)
                print(f"removed {len(removed)} orphan file(s)")
                for path in removed:
                    print(f"  {path}")
    except WarehouseError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
