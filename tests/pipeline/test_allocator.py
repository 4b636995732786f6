"""Importing zwy sets Polars' allocator default unless the environment already has one."""

from __future__ import annotations

import os
import subprocess
import sys

SHOW = "import zwy, os; print(os.environ.get('_RJEM_MALLOC_CONF'))"


def _run(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_default_set_before_polars_loads() -> None:
    assert _run(SHOW) == "dirty_decay_ms:5000"
    # Polars appends what it finds to its own defaults; the last setting wins in jemalloc.
    conf = _run(SHOW + "; import polars; print(os.environ['_RJEM_MALLOC_CONF'])").splitlines()
    assert conf[-1].endswith(",dirty_decay_ms:5000")


def test_operator_setting_wins() -> None:
    assert _run(SHOW, _RJEM_MALLOC_CONF="dirty_decay_ms:0") == "dirty_decay_ms:0"


def test_no_setting_once_polars_is_loaded() -> None:
    # Too late to matter: jemalloc has read its configuration already, so zwy leaves it.
    assert "5000" not in _run("import polars; " + SHOW)
