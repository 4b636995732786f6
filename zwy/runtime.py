"""Process settings for a night's stages: Python's cyclic garbage collector tuned for a batch job.

A stage allocates millions of small Python objects (GX's metric graphs and pydantic models,
the email package, matplotlib's artists, Polars' and DuckDB's Python results) on top of a
heap of about 0.4 M long-lived objects: the imported modules. With CPython's default
thresholds (700, 10, 10) every few hundred thousand allocations end in a full collection,
which walks that whole heap again and holds the GIL meanwhile: 8 full collections and
1.2-1.4 s of the benchmark district's one-process night (measured with ``gc.callbacks``).

:func:`batch_gc` runs a stage with the objects alive at its start frozen (``gc.freeze``:
never scanned again, since imported modules are not garbage) and the first threshold raised,
so young objects are still collected (cycles among them included) but a full collection
does not happen within a stage: 0.2-0.4 s of collecting for the same night, no full
collection, peak memory unchanged. The thresholds and the frozen set are restored when the
stage ends, so a process that goes on (a test session, an Airflow worker) is left as it was.

:func:`defer_import` keeps a module that a library imports but a night never uses from being
executed until something reads one of its attributes (GX imports ``scipy.stats`` and ``altair`` for
statistical expectations that no control uses: about 1 CPU-s of every validating process).
"""

from __future__ import annotations

import functools
import gc
import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

#: Young-generation threshold while a stage runs (CPython's default: 700 allocations).
STAGE_GC_THRESHOLD0 = 50_000
#: Full collections wait for this many middle-generation ones (CPython's default: 10).
STAGE_GC_THRESHOLD2 = 100

_lock = threading.Lock()
_depth = 0  # stages running now, in any thread
_saved: tuple[int, int, int] = gc.get_threshold()  # the thresholds before the first of them

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def batch_gc() -> Iterator[None]:
    """Run the ``with`` block with the collector tuned for a batch stage (see the module).

    Counted, not owned: the first stage to start tunes the collector, the last one to end
    restores it, whether stages nest (``run_day`` calling ``load_day``) or overlap in
    threads.
    """
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(STAGE_GC_THRESHOLD0, _saved[1], STAGE_GC_THRESHOLD2)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()


def batch_stage(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a stage function so that it runs under :func:`batch_gc`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with batch_gc():
            return fn(*args, **kwargs)

    return wrapper


_USE_DUNDERS = frozenset({"__path__", "__all__"})


def defer_import(name: str) -> bool:
    """Register a stand-in for module ``name`` that imports the real one on first use.

    Until an attribute of the module is read, ``import name`` and ``from parent import leaf``
    return the stand-in and nothing of the module runs. The first attribute read (other than
    dunders, which the import system itself reads) imports the real module, replaces the
    stand-in in ``sys.modules`` and answers from it; later readers of the stand-in are
    answered from the real module too. A module already imported, or not installed, is left
    alone.

    (``importlib.util.LazyLoader`` is the standard library's way, but on Python 3.11 the
    import system reads the lazy module's ``__spec__`` when the module is imported again,
    and that read executes it: measured, GX's ``from scipy import stats`` loaded it at once.)

    Returns:
        Whether a stand-in was registered.

    """
    if name in sys.modules:
        return False
    try:
        spec = importlib.util.find_spec(name)
    except ImportError:
        return False
    if spec is None:
        return False
    stand_in = types.ModuleType(name, f"Deferred import of {name} (zwy.runtime.defer_import).")
    stand_in.__spec__ = spec
    real: list[types.ModuleType] = []
    loading = threading.RLock()  # two threads' first reads import it once

    def __getattr__(attr: str) -> object:  # PEP 562: only for attributes the stand-in lacks
        # Dunders are what tools probe (``__file__``...): not a use. ``__path__`` and
        # ``__all__`` are: importing a submodule or ``*`` from the module reads them.
        if attr.startswith("__") and attr.endswith("__") and attr not in _USE_DUNDERS:
            raise AttributeError(attr)
        if not real:
            with loading:
                if not real:
                    if sys.modules.get(name) is stand_in:
                        del sys.modules[name]
                    real.append(importlib.import_module(name))
        return getattr(real[0], attr)

    stand_in.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = stand_in
    return True
