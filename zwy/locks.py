"""Advisory file locks between the processes of one machine (or one shared file system).

A day's staging folder is written by its parse and transform tasks, read by its load, and
removed by a later night's load once it is old (``zwy.pipeline.prune_staging``). Airflow
runs these as separate processes, and a backfill of an old day may be staging it while the
nightly load prunes: the stages hold the day's lock shared while they use its folder, and
the pruner takes it exclusively, without waiting, and leaves a day it cannot lock alone.

``flock(2)`` locks are released by the kernel when their process ends, however it ends, so
a killed task never leaves a stale lock behind. On NFS, Linux emulates them with POSIX
record locks, which NFSv4 servers honour.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path, *, shared: bool, blocking: bool = True) -> Iterator[bool]:
    """Hold the lock of ``path`` (created if missing) for the ``with`` block.

    The holder of an exclusive lock may remove the lock file (:func:`remove_held`). A
    process that opened the file before and is given its lock afterwards would then hold
    a lock nobody else can see, so after locking it checks that ``path`` still names the
    file it locked, and locks the new one otherwise.

    Args:
        path: the lock file; its folder is created.
        shared: a shared (reader) lock, else an exclusive one.
        blocking: wait for the lock; else give it up at once when another process holds it.

    Yields:
        True when the lock is held; False (only when not ``blocking``) when it was busy.

    """
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # removed (and maybe made again) while we waited: lock what is there
    try:
        yield True
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def remove_held(path: Path) -> None:
    """Remove the lock file of an exclusive lock the caller holds (inside its ``with``)."""
    path.unlink(missing_ok=True)
