"""Staging retention: loaded days' staging folders go once they are staging_keep_days old."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from zwy.locks import file_lock, remove_held
from zwy.pipeline import LOADED_MARKER, mark_loaded, prune_staging, staging_lock, uses_staging
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
    # Days kept are not locked by the pruner: it leaves no lock files behind for them.
    assert not (settings.staging / ".locks").exists()
    assert (rerun / LOADED_MARKER).read_text().startswith('{"day": "2024-05-10"')


def test_zero_keeps_every_day(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, staging_keep_days=0)
    folder = _stage(settings, TODAY - timedelta(days=400), loaded=True)
    assert prune_staging(settings, TODAY) == []
    assert folder.exists()


def test_a_day_a_stage_is_using_is_left_for_a_later_load(settings: Settings):
    """A backfill's stage holds its day's lock: the nightly prune skips that day, not waits."""
    day = TODAY - timedelta(days=20)
    folder = _stage(settings, day, loaded=True)
    inside, leave = threading.Event(), threading.Event()

    @uses_staging
    def backfill_parse(day: date, settings: Settings) -> None:
        inside.set()
        leave.wait(10)

    worker = threading.Thread(target=backfill_parse, args=(day, settings))
    worker.start()
    try:
        assert inside.wait(10)
        assert prune_staging(settings, TODAY) == []
        assert folder.exists()
    finally:
        leave.set()
        worker.join()
    assert prune_staging(settings, TODAY) == [day]
    assert not folder.exists() and not staging_lock(settings, day).exists()


def test_a_lock_held_by_another_process_keeps_the_day(settings: Settings):
    """The lock is the kernel's (flock): another process's shared lock blocks the prune."""
    day = TODAY - timedelta(days=30)
    folder = _stage(settings, day, loaded=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from zwy.locks import file_lock\n"
            "with file_lock(Path(sys.argv[1]), shared=True):\n"
            "    print('held', flush=True); sys.stdin.readline()",
            str(staging_lock(settings, day)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert prune_staging(settings, TODAY) == []
        assert folder.exists()
    finally:
        holder.communicate("\n", timeout=30)
    assert prune_staging(settings, TODAY) == [day]


def test_a_waiter_locks_the_file_made_after_the_holder_removed_it(tmp_path: Path):
    """A process given the lock of a removed file locks the file now at the path instead."""
    path = tmp_path / "locks" / "d.lock"
    waiting, done = threading.Event(), threading.Event()
    result: dict[str, bool] = {}

    def waiter() -> None:
        waiting.set()
        with file_lock(path, shared=True) as held:
            # Another exclusive lock must now fail: the waiter holds what the path names.
            with file_lock(path, shared=False, blocking=False) as other:
                result.update(held=held, other=other, exists=path.exists())
        done.set()

    with file_lock(path, shared=False) as held:
        assert held
        thread = threading.Thread(target=waiter)
        thread.start()
        assert waiting.wait(10)
        time.sleep(0.2)  # let the waiter open the file and block on it
        remove_held(path)
    assert done.wait(10)
    thread.join()
    assert result == {"held": True, "other": False, "exists": True}
