"""One run or rollback per work dir: a second process is refused at once, naming the holder."""
import subprocess
import sys
import time

import pytest

from components.errors import Busy
from pipelines.work_lock import exclusive

HOLD = "import sys, time; from pipelines.work_lock import exclusive\nwith exclusive(sys.argv[1]):\n" \
       "    print('held', flush=True); time.sleep(30)"


def test_a_second_process_is_refused_at_once_and_told_who_holds_it(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(Busy, match=f"pid {holder.pid}"):
            with exclusive(str(tmp_path)):
                pass
        assert time.monotonic() - started < 1
    finally:
        holder.kill()
        holder.wait()
    with exclusive(str(tmp_path)):  # the kernel released the dead holder's lock
        pass


def test_reentrant_within_a_process(tmp_path):
    """The CLI takes the lock before importing TFX; the runner takes it again inside."""
    with exclusive(str(tmp_path)):
        with exclusive(str(tmp_path)):
            pass
        with exclusive(str(tmp_path / "..") + "/" + tmp_path.name):  # same dir, other spelling
            pass
