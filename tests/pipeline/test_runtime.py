"""The batch stages' garbage-collector settings are applied inside a stage and restored after;
deferred imports run a module only when it is first used."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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


def _printed(code: str, tmp_path: Path) -> list[str]:
    """Run ``code`` in a fresh interpreter (the test session's sys.modules already holds
    most modules); return the lines it printed, after checking it succeeded."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_a_deferred_module_runs_only_when_first_read(tmp_path: Path) -> None:
    pkg = tmp_path / "zwy_probe_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    # The module records each execution, so the test sees when (and how often) it ran.
    (pkg / "leaf.py").write_text(
        "from pathlib import Path\n"
        "with Path('executed.txt').open('a') as f:\n"
        "    f.write('x')\n"
        "VALUE = 42\n"
    )
    printed = _printed(
        """
        import sys
        from pathlib import Path
        from zwy.runtime import defer_import

        ran = lambda: Path('executed.txt').read_text() if Path('executed.txt').exists() else ''
        assert defer_import('zwy_probe_pkg.leaf') is True
        assert defer_import('zwy_probe_pkg.leaf') is False   # already registered
        assert defer_import('zwy_probe_no_such_module') is False
        from zwy_probe_pkg import leaf
        import zwy_probe_pkg.leaf
        print('after import:', repr(ran()))
        print('value:', leaf.VALUE, zwy_probe_pkg.leaf.VALUE)
        print('after read:', repr(ran()))
        print('real in sys.modules:', sys.modules['zwy_probe_pkg.leaf'] is not leaf)
        """,
        tmp_path,
    )
    assert printed == [
        "after import: ''",
        "value: 42 42",
        "after read: 'x'",
        "real in sys.modules: True",
    ]


def test_gx_is_imported_without_running_scipy_stats_or_altair(tmp_path: Path) -> None:
    printed = _printed(
        """
        import math, sys
        from expectations.suites import import_gx

        import_gx()
        import great_expectations.expectations.core.expect_column_kl_divergence_to_be_less_than as kl
        print('gx imported:', 'great_expectations.expectations.core' in sys.modules)
        print('scipy.stats ran:', 'scipy.stats._stats_py' in sys.modules)
        print('altair ran:', 'altair.vegalite' in sys.modules)
        # The expectation that uses it still gets the real function.
        print('entropy:', round(kl.stats.entropy([1.0, 0.0], [0.5, 0.5]), 6) == round(math.log(2), 6))
        print('scipy.stats ran:', 'scipy.stats._stats_py' in sys.modules)
        """,
        tmp_path,
    )
    assert printed == [
        "gx imported: True",
        "scipy.stats ran: False",
        "altair ran: False",
        "entropy: True",
        "scipy.stats ran: True",
    ]


def test_a_submodule_of_a_deferred_package_can_be_imported(tmp_path: Path) -> None:
    inner = tmp_path / "zwy_probe_outer" / "inner"
    inner.mkdir(parents=True)
    (tmp_path / "zwy_probe_outer" / "__init__.py").write_text("")
    (inner / "__init__.py").write_text("READY = True\n")
    (inner / "child.py").write_text("from . import READY\nVALUE = 7 if READY else 0\n")
    printed = _printed(
        """
        import sys
        from zwy.runtime import defer_import

        assert defer_import('zwy_probe_outer.inner')
        import zwy_probe_outer.inner.child as child   # reads the package's __path__
        print(child.VALUE, type(sys.modules['zwy_probe_outer.inner']).__name__)
        """,
        tmp_path,
    )
    assert printed == ["7 module"]
