"""zwy: the zero-waste Yizhuang monitoring pipeline (HJ 212 logs and exports → DuckDB warehouse).

Importing the package sets one process-wide default before Polars loads. Polars configures
its allocator (jemalloc) to hand freed pages back to the kernel after half a second
(``dirty_decay_ms:500``) and appends whatever ``_RJEM_MALLOC_CONF`` holds, which then wins;
zwy puts ``dirty_decay_ms:5000`` there. A night allocates and frees gigabytes of column
buffers, and with half a second the kernel spent 5-6 s of the load's 36 CPU-seconds handing
the same pages out again (benchmark district: load 20.8 → 18.6 s wall, system time 5-6 →
2.3 s; 30 s instead of 5 s gained another second of the night but raised its peak memory
from 2.2 to 2.6 GB). A value already in the environment wins; once Polars has been
imported the setting would have no effect and is not made.
"""

from __future__ import annotations

import os
import sys

if "polars" not in sys.modules:
    os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:5000")
