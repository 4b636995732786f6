"""Charts as data, drawn here or in a pool of processes: the same PNG either way."""

from __future__ import annotations

import base64
import struct
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import pytest

import zwy.charts
from zwy.charts import MIN_PARALLEL, ChartSpec, Drawing, draw, draw_all


def _specs(n: int) -> list[ChartSpec]:
    """``n`` different charts: a series, its limit, a shaded breach hour."""
    out = []
    for i in range(n):
        ys = [10.0 + ((h * (i + 3)) % 7) for h in range(24)]
        out.append(
            ChartSpec(
                title=f"MN{i:04d} · a21002 · ZWY-LIMIT-HOUR",
                xlabel="2024-05-01 (Beijing time)",
                ylabel="mg/m³",
                calls=(
                    ("plot", (list(range(24)), ys), {"marker": "o", "label": "hourly mean"}),
                    ("axhline", (15.0,), {"color": "#c62828", "ls": "--", "label": "limit 15"}),
                    ("axvspan", (i % 24 - 0.5, i % 24 + 0.5), {"alpha": 0.12, "lw": 0}),
                ),
            )
        )
    return out


def _size(b64: str) -> tuple[int, int]:
    png = base64.b64decode(b64)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    return width, height


def test_charts_drawn_in_processes_are_the_charts_drawn_here():
    specs = _specs(MIN_PARALLEL + 2)
    here = [draw(s) for s in specs]
    assert len(set(here)) == len(specs)  # different charts, different pictures
    assert {_size(png) for png in here} == {(960, 340)}
    assert draw_all(specs, workers=2) == here  # same order, same bytes


def test_a_broken_pool_draws_the_charts_here(monkeypatch: pytest.MonkeyPatch):
    class Broken:
        """A pool whose workers die: every chart's future fails."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def submit(self, *args: object, **kwargs: object) -> Future[str]:
            failed: Future[str] = Future()
            failed.set_exception(BrokenProcessPool("a worker died"))
            return failed

        def shutdown(self, *args: object, **kwargs: object) -> None:
            pass

    specs = _specs(MIN_PARALLEL)
    monkeypatch.setattr(zwy.charts, "ProcessPoolExecutor", Broken)
    assert draw_all(specs, workers=2) == [draw(s) for s in specs]


def test_charts_drawn_here_are_drawn_when_first_asked_for(monkeypatch: pytest.MonkeyPatch):
    specs = _specs(3)
    drawn: list[str] = []
    real = zwy.charts.draw

    def counting(spec: ChartSpec) -> str:
        drawn.append(spec.title)
        return real(spec)

    monkeypatch.setattr(zwy.charts, "draw", counting)
    with Drawing(specs, workers=2) as drawing:  # too few for a pool
        first = drawing.get(2)
        assert drawing.get(2) == first  # drawn once
    assert drawn == [specs[2].title]


def test_a_preloaded_matplotlib_draws_the_same_charts(monkeypatch: pytest.MonkeyPatch):
    """preload() starts one import thread however often it is called; drawing waits for it."""
    monkeypatch.setattr(zwy.charts, "_preloading", None)
    zwy.charts.preload()
    thread = zwy.charts._preloading
    zwy.charts.preload()
    assert thread is not None and zwy.charts._preloading is thread
    specs = _specs(MIN_PARALLEL)
    with Drawing(specs, workers=2) as drawing:  # forks only once the import has finished
        assert not thread.is_alive()
        assert [drawing.get(i) for i in range(len(specs))] == [draw(s) for s in specs]


def test_a_reused_figure_draws_what_a_new_one_draws(monkeypatch: pytest.MonkeyPatch):
    """Charts drawn one after another on the thread's figure equal charts on new figures."""
    specs = _specs(4)
    scatter = ChartSpec(
        title="with a scatter and a lower limit",
        xlabel="hour",
        ylabel="m³/h",
        calls=(
            ("plot", ([0, 1, 2], [1000.0, 2500.0, 1800.0]), {"label": "flow"}),
            ("scatter", ([3, 4], [900.0, 950.0]), {"marker": "x", "label": "invalid hour"}),
            ("axhline", (500.0,), {"ls": ":", "label": "lower limit 500"}),
        ),
    )
    annotated = ChartSpec(
        title="a call the reused figure cannot clear",
        xlabel="hour",
        ylabel="mg/m³",
        calls=(("plot", ([0, 1], [1.0, 2.0]), {"label": "x"}), ("text", (1, 1.5, "note"), {})),
    )
    reused = [draw(s) for s in [specs[0], scatter, specs[1], annotated, specs[0], specs[2]]]
    monkeypatch.setattr(zwy.charts, "REUSABLE_CALLS", frozenset())
    new = [draw(s) for s in [specs[0], scatter, specs[1], annotated, specs[0], specs[2]]]
    assert reused == new
    assert reused[0] == reused[4] and len(set(reused)) == 5
