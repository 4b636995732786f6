"""Drawing charts: a chart is plain data (:class:`ChartSpec`), drawn to a PNG by matplotlib.

The report and the alerts build each chart's data with Polars (``zwy.report``'s
``*_chart_spec`` functions) and draw it here. Drawing holds the GIL for most of its
0.07-0.09 s a chart, so threads would not overlap it; a day with many breached series
(40 on the benchmark district, each drawn once for every email that carries it) draws in
a pool of processes instead (:func:`draw_all`). A spec holds only plain values, so
sending one is cheap and drawing it there gives the same bytes as drawing it here.

The workers are forked from the calling process, which has imported matplotlib first.
Not spawned, nor forked from a forkserver: those re-import the caller's ``__main__`` in
every worker, which runs a script without a ``__name__ == "__main__"`` guard (a user's,
say) a second time, and they start a new interpreter. A forked worker only draws: it
never touches Polars or DuckDB, whose threads and locks it inherits but does not use,
and it leaves with ``os._exit`` as every multiprocessing worker does, so nothing of the
caller's (an open warehouse) is closed or flushed by it.
"""

from __future__ import annotations

import base64
import io
import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Fewer charts than this are drawn in the calling process: forking the workers would
#: cost more than it saves.
MIN_PARALLEL = 8

#: An axes call to replay: (method name, positional args, keyword args).
Call = tuple[str, tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class ChartSpec:
    """One chart of a compliance day, hour by hour, as data.

    ``calls`` are replayed in order on the axes (``plot``, ``scatter``, ``axhline``,
    ``axvspan``...) with plain Python values only; the hour axis (00:00-23:00 Beijing
    time), labels, grid, legend and margins are the same for every chart.
    """

    title: str
    xlabel: str
    ylabel: str
    calls: tuple[Call, ...] = field(default_factory=tuple)


def _fixed_margins(fig: Any, ax: Any) -> None:
    """Place the axes of a 9.6 x 3.4 in (960 x 340 px) chart with margins that fit its labels.

    ``tight_layout`` measured every text to fit them (60 of a chart's 145 ms). The charts
    all have the same furniture (a title, hour ticks, a unit), so only the left margin
    varies: it grows with the longest y tick label (about 9 px per character at size 10).
    """
    chars = max((len(f"{t:g}") for t in ax.get_yticks()), default=3)
    left = (36 + 9 * chars) / 960
    fig.subplots_adjust(left=left, right=0.985, top=0.9, bottom=0.17)


def draw(spec: ChartSpec) -> str:
    """Draw ``spec``; return the PNG (960 x 340 px) as base64 text."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.6, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    for name, args, kwargs in spec.calls:
        getattr(ax, name)(*args, **kwargs)
    ax.set_xlim(-0.5, 23.5)
    ax.set_xticks(range(0, 24, 2))
    ax.set_xticklabels([f"{x:02d}:00" for x in range(0, 24, 2)], fontsize=8)
    ax.set_xlabel(spec.xlabel, fontsize=9)
    ax.set_ylabel(spec.ylabel, fontsize=9)
    ax.set_title(spec.title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _fixed_margins(fig, ax)
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def draw_all(specs: Sequence[ChartSpec], workers: int = 2) -> list[str]:
    """Draw every spec (in order); in ``workers`` processes when there are enough of them.

    A pool that cannot start or breaks (no ``fork`` on this platform, a worker killed) is
    logged and the charts are drawn here instead: a chart is never lost to the pool.
    """
    if workers <= 1 or len(specs) < MIN_PARALLEL:
        return [draw(s) for s in specs]
    import matplotlib.backends.backend_agg  # noqa: F401  # imported once, before the fork
    import matplotlib.figure  # noqa: F401

    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            return list(pool.map(draw, specs, chunksize=max(1, len(specs) // (4 * workers))))
    except (BrokenProcessPool, OSError, ValueError) as exc:
        log.warning(
            "drawing %d charts in processes failed (%s); drawing them here", len(specs), exc
        )
        return [draw(s) for s in specs]
