"""The values of a parse in compact form: one row per value, its frame and key by number.

A district day's 18 M values come from 1.7 M frames and a few hundred distinct keys
(pollutant code and field). Spelled out (the VALUES contract), each value row repeats its
frame's file, line, MN, CN, ST and DataTime and its key's codes: eleven columns gathered
per value and written per value, where the compact form gathers and writes two numbers.
The parse keeps its values compact (:class:`CompactValues`), the stage folder stores them
compact (:func:`write_staged`, :func:`read_staged`), and the VALUES frame is built only
where it is used: by the transform, part by part, and by ``zwy hj212 parse``.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl

from zwy.contracts import VALUES, conform
from zwy.hj212.exceptions import StagedValuesError

if TYPE_CHECKING:
    from polars._typing import ParquetCompression

#: VALUES columns that belong to the frame a value came from.
FRAME_COLUMNS: tuple[str, ...] = ("source_file", "line", "mn", "cn", "data_time", "st")
#: VALUES columns that belong to the value's key (the CP item's name).
KEY_COLUMNS: tuple[str, ...] = ("pollutant", "code_raw", "code_status", "field", "field_known")
#: VALUES columns of the value itself.
OWN_COLUMNS: tuple[str, ...] = ("value", "value_text", "flag")

#: The compact frames, keys and rows, typed as the VALUES contract types them.
FRAMES = pl.Schema({c: VALUES[c] for c in FRAME_COLUMNS})
KEYS = pl.Schema({c: VALUES[c] for c in KEY_COLUMNS})
ROWS = pl.Schema({"frame": pl.UInt32(), "key": pl.UInt32()} | {c: VALUES[c] for c in OWN_COLUMNS})

#: Footer metadata of a staged part: its keys, as JSON ``{column: [values]}``.
KEYS_META = "zwy:keys"


@dataclass(frozen=True, eq=False)
class CompactValues:
    """Values as ``rows`` (frame, key, value, value_text, flag) over ``frames`` and ``keys``.

    Row ``i`` of the VALUES frame is ``frames[rows.frame[i]]``, ``keys[rows.key[i]]`` and
    ``rows[i]``'s own columns (:meth:`expand`). ``frames`` holds only frames that have
    values, in the order of their values. ``rows.value_text`` may hold only the texts of
    values that are not numbers (what staging keeps), with every text in ``texts``.
    """

    frames: pl.DataFrame
    keys: pl.DataFrame
    rows: pl.DataFrame
    #: Every value's text, when ``rows.value_text`` holds only those of values that are
    #: not numbers (a parse's): the item texts and each row's item. None: ``rows`` has all.
    texts: tuple[pl.Series, npt.NDArray[np.int64]] | None = None

    @property
    def height(self) -> int:
        """Number of values."""
        return self.rows.height

    @classmethod
    def empty(cls) -> CompactValues:
        """No values."""
        return cls(
            pl.DataFrame(schema=FRAMES), pl.DataFrame(schema=KEYS), pl.DataFrame(schema=ROWS)
        )

    @classmethod
    def of(cls, values: pl.DataFrame) -> CompactValues:
        """Compact a VALUES frame (e.g. a platform export's): a frame per row, keys shared.

        For frames the parser did not cut: each row is its own frame. Meant for small
        frames; the parser builds its compact values directly.
        """
        values = conform(values, VALUES)
        keys = values.select(KEY_COLUMNS).unique(maintain_order=True)
        key_no = (
            values.select(KEY_COLUMNS)
            .join(
                keys.with_row_index("key"),
                on=list(KEY_COLUMNS),
                how="left",
                nulls_equal=True,
                maintain_order="left",
            )
            .get_column("key")
        )
        rows = values.select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("frame"),
            key_no.cast(pl.UInt32).alias("key"),
            *OWN_COLUMNS,
        )
        return cls(values.select(FRAME_COLUMNS), keys, rows)

    def expand(self, columns: Collection[str] | None = None) -> pl.DataFrame:
        """Return the VALUES frame (one row per value, in row order).

        ``columns``: only these VALUES columns, typed as VALUES types them (what a reader
        needs: each column is a gather over every value); None: the whole contract.
        """
        frame = self.rows.get_column("frame")
        key = self.rows.get_column("key")
        want = VALUES.names() if columns is None else [c for c in VALUES.names() if c in columns]
        out = pl.concat(
            [
                self.frames.select(pl.col(c).gather(frame) for c in FRAME_COLUMNS if c in want),
                self.keys.select(pl.col(c).gather(key) for c in KEY_COLUMNS if c in want),
                self.rows.select(c for c in OWN_COLUMNS if c in want),
            ],
            how="horizontal",
        )
        if self.texts is not None and "value_text" in want:
            items, rows = self.texts
            out = out.with_columns(items.gather(pl.Series(rows)).alias("value_text"))
        return out.select(want)

    def per_source_file(self) -> pl.DataFrame:
        """Return ``source_file`` (String) and ``values_loaded``, one row per file with values."""
        counts = np.bincount(
            self.rows.get_column("frame").to_numpy(), minlength=self.frames.height
        ).astype(np.int64)
        return (
            self.frames.select(pl.col("source_file").cast(pl.String))
            .with_columns(pl.Series("values_loaded", counts))
            .group_by("source_file", maintain_order=True)
            .agg(pl.col("values_loaded").sum())
        )

    def mn_bounds(self) -> tuple[str | None, str | None, int]:
        """Return the smallest and largest MN of the values' frames and how many have none."""
        lo, hi, nulls = self.frames.select(
            lo=pl.col("mn").min().cast(pl.String),
            hi=pl.col("mn").max().cast(pl.String),
            nulls=pl.col("mn").null_count(),
        ).row(0)
        return lo, hi, nulls


def frames_dir(values_dir: Path) -> Path:
    """Return the folder of the frames of staged ``values_dir``: ``frames.parquet`` beside it."""
    return values_dir.with_name("frames.parquet")


def frames_path(part: Path) -> Path:
    """Return the frames file of staged values part ``part`` (same name, in :func:`frames_dir`)."""
    return frames_dir(part.parent) / part.name


def write_staged(
    values: CompactValues,
    part: Path,
    *,
    compression: ParquetCompression = "snappy",
    metadata: dict[str, str] | None = None,
) -> int:
    """Write ``values`` as staged part ``part`` (rows) and its frames (:func:`frames_path`).

    The keys go into the part's footer metadata (:data:`KEYS_META`), with ``metadata``.
    No column statistics: the transform reads each part whole. Returns the rows written.
    """
    keys = values.keys.with_columns(pl.col(pl.Categorical).cast(pl.String))
    meta = {KEYS_META: json.dumps(keys.to_dict(as_series=False)), **(metadata or {})}
    frames = frames_path(part)
    frames.parent.mkdir(parents=True, exist_ok=True)
    values.frames.write_parquet(frames, compression=compression, statistics=False)
    rows = values.rows
    # A part whose every value is a number (most: staging keeps a text only where the value
    # is not one) leaves its all-null value_text out, and read_staged's conform puts it
    # back: Polars writes 0.86 M null strings in 9.8 ms, 0.86 M null doubles in 1.7.
    if rows.get_column("value_text").null_count() == rows.height:
        rows = rows.drop("value_text")
    rows.write_parquet(part, compression=compression, statistics=False, metadata=meta)
    return values.height


def read_staged(part: Path) -> CompactValues:
    """Read a part written by :func:`write_staged`.

    Raises:
        StagedValuesError: the part or its frames are missing, or the part has no keys in
            its footer (written by something else, e.g. an older release: parse the day
            again).

    """
    import pyarrow.parquet as pq

    frames = frames_path(part)
    if not part.is_file() or not frames.is_file():
        missing = part if not part.is_file() else frames
        raise StagedValuesError(str(part), f"{missing} is missing: parse the day again")
    written = (pq.read_metadata(part).metadata or {}).get(KEYS_META.encode())
    if written is None:
        raise StagedValuesError(
            str(part), f"no {KEYS_META} in its footer: not a staged values part of this release"
        )
    keys = json.loads(written)
    return CompactValues(
        conform(pl.read_parquet(frames), FRAMES),
        conform(pl.DataFrame(keys), KEYS),
        conform(pl.read_parquet(part), ROWS),
    )


def read_staged_dataset(folder: Path) -> pl.DataFrame:
    """Return every part of a staged ``values.parquet`` folder as one VALUES frame, in part order.

    For looking at a stage folder by hand and for tests; the transform reads part by part.
    """
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        return pl.DataFrame(schema=VALUES)
    return pl.concat([read_staged(p).expand() for p in parts])
