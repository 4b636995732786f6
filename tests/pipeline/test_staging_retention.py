"""Staging retention: loaded days' staging folders go once they are staging_keep_days old."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import pytest

from zwy.pipeline import LOADED_MARKER, mark_loaded, prune_staging
from zwy.settings import Settings

TODAY = date(2024, 5, 31)


def _stage(settings: Settings, day: date, *, loaded: bool, restaged: bool = False) -> Path:
    """A day's staging folder with one stream's file; marked loaded an hour after it was written."""
    folder = settings.staging / day.isoformat()
    (folder / "wastewater").mkdir(parents=True)
    staged = folder / "wastewater" / "readings.parquet"
    staged.write_bytes(b"PAR1")
    written = 1_700_000_000
    os.utime(staged, (written, written))
    if loaded:
        marker = mark_loaded(settings, day, run_id=f"{day}-test")
        os.utime(marker, (written + 3600, written + 3600))
    if restaged:  # a rerun's parse wrote it again after the load
        os.utime(staged, (written + 7200, written + 7200))
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, staging_keep_days=14)


def test_loaded_days_older_than_the_window_are_removed(settings: Settings):
    old = [TODAY - timedelta(days=n) for n in (15, 30)]
    recent = [TODAY - timedelta(days=n) for n in (0, 14)]
    folders = {d: _stage(settings, d, loaded=True) for d in old + recent}
    assert prune_staging(settings, TODAY) == sorted(old)
    assert [d for d, f in folders.items() if f.exists()] == recent


def test_days_never_loaded_or_staged_again_since_stay(settings: Settings):
    never = _stage(settings, TODAY - timedelta(days=20), loaded=False)
    rerun = _stage(settings, TODAY - timedelta(days=21), loaded=True, restaged=True)
    other = settings.staging / "not-a-day"
    other.mkdir()
    assert prune_staging(settings, TODAY) == []
    assert never.exists() and rerun.exists() and other.exists()
    assert (rerun / LOADED_MARKER).read_text().startswith('{"day": "2024-05-10"')


def test_zero_keeps_every_day(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, staging_keep_days=0)
    folder = _stage(settings, TODAY - timedelta(days=400), loaded=True)
    assert prune_staging(settings, TODAY) == []
    assert folder.exists()
