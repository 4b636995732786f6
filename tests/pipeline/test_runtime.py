"""The batch stages' garbage-collector settings are applied inside a stage and restored after."""

from __future__ import annotations

import gc

import pytest

from zwy import runtime


def test_stage_tunes_the_collector_and_restores_it() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    seen: list[tuple[tuple[int, int, int], int]] = []

    @runtime.batch_stage
    def inner() -> str:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return "inner"

    @runtime.batch_stage
    def outer() -> str:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return inner()  # nested stages tune once

    assert outer() == "inner"
    assert seen[0][0] == (runtime.STAGE_GC_THRESHOLD0, before[1], runtime.STAGE_GC_THRESHOLD2)
    assert seen[0][1] > frozen_before  # the heap alive at the start is frozen
    assert seen[1] == seen[0]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before == 0


def test_stage_restores_the_collector_when_it_fails() -> None:
    before = gc.get_threshold()

    @runtime.batch_stage
    def failing() -> None:
        raise ValueError("stage failed")

    with pytest.raises(ValueError, match="stage failed"):
        failing()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_young_cycles_are_still_collected_inside_a_stage() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    with runtime.batch_gc():
        gc.collect(0)
        for _ in range(3 * runtime.STAGE_GC_THRESHOLD0):
            Node()  # each a cycle: freed only by the collector
        # At most one threshold's worth of young cycles can be pending at any time.
        assert sum(isinstance(o, Node) for o in gc.get_objects(0)) < runtime.STAGE_GC_THRESHOLD0


def test_overlapping_stages_restore_when_the_last_one_ends() -> None:
    before = gc.get_threshold()
    first, second = runtime.batch_gc(), runtime.batch_gc()
    first.__enter__()
    second.__enter__()  # e.g. a stage started in another thread
    first.__exit__(None, None, None)  # the first one ends while the second runs
    assert gc.get_threshold()[0] == runtime.STAGE_GC_THRESHOLD0
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
