"""One pipeline run or rollback at a time per work dir: MLMD and the push destination are shared."""
from __future__ import annotations

import contextlib
import fcntl
import os
import time

from components.errors import Busy, StorageError
from pipelines.work_dir import WorkDir

_held: set[str] = set()  # work dirs this process holds: re-entrant, so the CLI can lock before importing TFX


@contextlib.contextmanager
def exclusive(work_dir: str):
    """Holds the work dir's lock (an flock: the kernel releases it when its process ends, so a killed run
    never blocks the next); raises Busy at once, naming the holder, if another process has it.

    Light on purpose (no TF, no TFX): the CLI takes it before the heavy imports, so a second run is refused
    in well under a second.
    """
    key = os.path.realpath(work_dir)
    if key in _held:
        yield
        return
    f = _open_lock(work_dir)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise Busy(f"another transferline run or rollback is using {work_dir} ({holder}); "
                   f"nothing was done: run this again when it has finished") from None
    try:
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        f.flush()
        _held.add(key)
        yield
    finally:
        _held.discard(key)
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def _open_lock(work_dir: str):
    """The lock file, the work dir made first; a work dir that cannot be (read-only, full, under a regular file,
    in /proc) is said in one line: the first thing a run writes is this lock, so it is said before anything."""
    try:
        os.makedirs(work_dir, exist_ok=True)
        return open(WorkDir(work_dir).lock, "a+")
    except OSError as e:
        full = StorageError.from_exception(e)
        if full:
            raise full from None
        where = f" ({e.filename})" if e.filename and os.path.abspath(e.filename) != os.path.abspath(work_dir) else ""
        raise StorageError(f"the work dir {work_dir} cannot be made or written: {e.strerror or e}{where}; "
                           "give a writable --work-dir (paths.work_dir)") from None


def is_held(work_dir: str) -> bool:
    """Whether a process (this one included) holds the work dir's lock now: a run or rollback is alive."""
    if os.path.realpath(work_dir) in _held:
        return True
    path = WorkDir(work_dir).lock
    if not os.path.exists(path):
        return False
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False
