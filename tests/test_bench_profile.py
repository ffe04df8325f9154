"""bench/profile.py: phases from the run's progress lines, CPU seconds per phase, children included (fast)."""
import sys

from bench.profile import profiled_run

# A stand-in for `transferline run`: progress lines as pipelines/run_log.py prints them, CPU burnt in
# between, the second component's CPU in a child process (as a Beam worker's would be).
_FAKE = r"""
import subprocess, sys, time
def burn(s):
    end = time.process_time() + s
    while time.process_time() < end:
        pass
burn(0.3)
print("[transferline] A                      running ...", file=sys.stderr, flush=True)
burn(0.6)
print("[transferline] A                      done in    0.6 s", file=sys.stderr, flush=True)
print("[transferline] B                      running ...", file=sys.stderr, flush=True)
child = "import time\nend = time.process_time() + 1.2\nwhile time.process_time() < end: pass"
subprocess.run([sys.executable, "-c", child])
print("[transferline] B                      done in    1.2 s", file=sys.stderr, flush=True)
print("summary: none")
"""


def test_phases_and_cpu_seconds_come_from_the_progress_lines_and_the_process_tree():
    result = profiled_run([sys.executable, "-c", _FAKE], ".")
    assert result["rc"] == 0 and "summary: none" in result["stdout"]
    phases = result["phases"]
    assert list(phases)[:3] == ["start", "A", "between/after"] and "B" in phases
    assert 0.4 <= phases["A"]["cpu_s"] <= 1.2, phases
    assert 0.9 <= phases["B"]["cpu_s"] <= 2.0, phases  # the child's CPU counts to B
    assert phases["A"]["peak_rss_mb"] > 1
