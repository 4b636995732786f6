"""Fixtures for the HJ 212 tests: tiny log files written into tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest


@pytest.fixture
def write_log(tmp_path: Path) -> Callable[..., Path]:
    """Write lines (str) or raw bytes to a file in tmp_path and return its path."""

    def _write(name: str, content: str | bytes | Sequence[str], eol: str = "\r\n") -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_bytes(content.encode("utf-8"))
        else:
            path.write_bytes("".join(line + eol for line in content).encode("utf-8"))
        return path

    return _write
