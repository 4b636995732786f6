"""Drawing charts: a chart is plain data (:class:`ChartSpec`), drawn to a PNG by matplotlib.

The report and the alerts build each chart's data with Polars (``zwy.report``'s
``*_chart_spec`` functions) and draw it here. Drawing holds the GIL for most of its
0.05-0.06 s a chart (on a figure each thread reuses, :func:`draw`), so threads would not
overlap it; a day with many breached series (40 on the benchmark district, each drawn
once for every email that carries it) draws in a pool of processes instead
(:func:`draw_all`). A spec holds only plain values, so sending one is cheap and drawing it
there gives the same bytes as drawing it here.

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
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Fewer charts than this are drawn in the calling process: forking the workers would
#: cost more than it saves.
MIN_PARALLEL = 8

#: The thread importing matplotlib ahead of the first chart (:func:`preload`), if any.
_preloading: threading.Thread | None = None


def _import_matplotlib() -> None:
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


def preload() -> None:
    """Start importing matplotlib in a daemon thread, for charts about to be drawn.

    The import is 0.3-0.6 s of pure Python. A caller that will draw soon, and meanwhile
    reads with DuckDB or Polars (which release the GIL), overlaps the two by calling this
    first; drawing then waits for the import to finish, as any import would. Idempotent.
    """
    global _preloading
    if _preloading is None:
        _preloading = threading.Thread(
            target=_import_matplotlib, name="zwy-matplotlib-import", daemon=True
        )
        _preloading.start()


def _imported() -> None:
    """Import matplotlib here, after any preload has finished (before forking workers)."""
    if _preloading is not None:
        _preloading.join()
    _import_matplotlib()


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


#: Axes methods whose artists :func:`draw` can take off a reused figure again (lines,
#: collections, patches); a spec calling anything else is drawn on a figure of its own.
REUSABLE_CALLS = frozenset({"plot", "scatter", "axhline", "axvspan"})

#: The hour axis of every chart: 00:00-23:00 Beijing time, half an hour of margin.
_HOURS = (-0.5, 23.5)

#: The reused figure of each thread (figures are not thread-safe): ``(fig, ax)`` or unset.
_reused = threading.local()


def _new_axes() -> tuple[Any, Any]:
    """Return a new 960 x 340 px figure and its axes, with the hour axis and grid of every chart."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.6, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlim(*_HOURS)
    ax.set_xticks(range(0, 24, 2))
    ax.set_xticklabels([f"{x:02d}:00" for x in range(0, 24, 2)], fontsize=8)
    ax.grid(True, alpha=0.3)
    FigureCanvasAgg(fig)
    return fig, ax


def _cleared_axes() -> tuple[Any, Any]:
    """Return this thread's reused figure and axes, as :func:`_new_axes` made them.

    Building a figure, its axes and their hour ticks was a third of a chart (0.07 s). The
    previous chart's lines, collections, patches and legend are taken off, the colour
    cycle and the data limits reset, and the default subplot margins put back: the y
    ticks (and so the left margin, :func:`_fixed_margins`) are chosen for the axes' size
    at that moment, so a reused figure draws the same bytes as a new one.
    """
    import matplotlib

    pair = getattr(_reused, "axes", None)
    if pair is None:
        pair = _reused.axes = _new_axes()
    fig, ax = pair
    for artist in [*ax.lines, *ax.collections, *ax.patches]:
        artist.remove()
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()
    ax.set_prop_cycle(None)
    ax.relim()
    ax.set_autoscaley_on(True)
    rc = matplotlib.rcParams
    fig.subplots_adjust(
        left=rc["figure.subplot.left"],
        right=rc["figure.subplot.right"],
        top=rc["figure.subplot.top"],
        bottom=rc["figure.subplot.bottom"],
    )
    return fig, ax


def draw(spec: ChartSpec) -> str:
    """Draw ``spec``; return the PNG (960 x 340 px) as base64 text.

    The same spec gives the same bytes whichever thread or process draws it, and
    whatever it drew before.
    """
    reuse = all(name in REUSABLE_CALLS for name, _, _ in spec.calls)
    fig, ax = _cleared_axes() if reuse else _new_axes()
    try:
        for name, args, kwargs in spec.calls:
            getattr(ax, name)(*args, **kwargs)
        ax.set_xlim(*_HOURS)
        ax.set_xlabel(spec.xlabel, fontsize=9)
        ax.set_ylabel(spec.ylabel, fontsize=9)
        # An explicit y turns off the automatic title placement, which measures every tick
        # label of the axes to clear them (about a fifth of drawing a chart); no label is
        # above these axes, so the title sits where it would anyway.
        ax.set_title(spec.title, fontsize=10, y=1.0, pad=6.0)
        ax.legend(fontsize=8, loc="best")
        _fixed_margins(fig, ax)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
    except BaseException:
        if reuse:  # a half-drawn chart is not cleared again: start the next on a new figure
            _reused.axes = None
        raise
    return base64.b64encode(buf.getvalue()).decode("ascii")


class Drawing:
    """Charts being drawn while the caller goes on: :meth:`get` waits for one of them.

    With ``workers`` > 1 and at least :data:`MIN_PARALLEL` specs, every spec is handed to
    a pool of forked processes at once, in the given order (put the charts needed first
    first); otherwise, or when the pool cannot start or breaks (no ``fork`` on this
    platform, a worker killed: logged), a chart is drawn here when it is first asked for.
    A chart is never lost to the pool. Use as a context manager: leaving it stops the
    pool.
    """

    def __init__(self, specs: Sequence[ChartSpec], workers: int = 2) -> None:
        self._specs = list(specs)
        self._done: dict[int, str] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future[str]] = []
        if workers > 1 and len(self._specs) >= MIN_PARALLEL:
            _imported()  # once, before the fork: the workers inherit it
            try:
                ctx = multiprocessing.get_context("fork")
                self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
                self._futures = [self._pool.submit(draw, spec) for spec in self._specs]
            except (BrokenProcessPool, OSError, ValueError) as exc:
                self._fall_back(exc)

    def _fall_back(self, exc: BaseException) -> None:
        log.warning(
            "drawing %d charts in processes failed (%s); drawing them here", len(self._specs), exc
        )
        self.close()
        self._futures = []

    def get(self, i: int) -> str:
        """Return chart ``i`` (the PNG as base64 text), waiting for it if need be."""
        if i not in self._done:
            png = None
            if self._futures:
                try:
                    png = self._futures[i].result()
                except (BrokenProcessPool, OSError) as exc:
                    self._fall_back(exc)
            self._done[i] = draw(self._specs[i]) if png is None else png
        return self._done[i]

    def close(self) -> None:
        """Stop the pool (charts not yet drawn are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Drawing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def draw_all(specs: Sequence[ChartSpec], workers: int = 2) -> list[str]:
    """Draw every spec (in order), in ``workers`` processes when there are enough (:class:`Drawing`)."""
    with Drawing(specs, workers) as drawing:
        return [drawing.get(i) for i in range(len(specs))]
