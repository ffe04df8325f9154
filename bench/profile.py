"""One `transferline run`, profiled by phase: wall seconds, CPU seconds and peak RSS per component.

The run's own progress lines ("[transferline] <Component> running ..." on stderr) mark the phases; a
sampler reads /proc for the run's process tree (the runner and any Beam worker processes) every 0.25 s.
Phases: "start" (process start, imports, encoder resolution) before the first component, each component,
and "between/after" (the runner between components; summary and report after the last). CPU seconds are
what to compare on a shared, noisy machine: they barely move with the load, wall seconds do.

    python bench/profile.py [--repo DIR] -- --work-dir /tmp/w --set beam.direct_running_mode=in_memory
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _proc_table() -> dict[int, tuple[int, float, float]]:
    """pid -> (parent pid, CPU seconds of itself, CPU seconds of its reaped children)."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[int(name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK,
                              (int(fields[13]) + int(fields[14])) / _TICK)
    return out


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except OSError:
        return 0.0


def _tree(root: int, table) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def profiled_run(cmd: list[str], cwd: str, env: dict | None = None, timeout: float = 3600) -> dict:
    """Runs cmd (a `transferline run`); returns {wall_s, rc, stdout, stderr, phases: {name: {...}}}."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    phase = ["start"]
    phases: dict[str, dict] = {}
    order = ["start"]
    err_lines: list[str] = []
    started = time.monotonic()
    done = threading.Event()

    def cpu_now() -> float:
        table = _proc_table()
        pids = [p for p in _tree(proc.pid, table) if p in table]
        return sum(table[p][1] for p in pids) + table.get(proc.pid, (0, 0, 0))[2]

    def enter(name: str, now: float, cpu: float) -> None:
        old = phases.setdefault(phase[0], {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mb": 0.0, "peak_tree_rss_mb": 0.0})
        old["wall_s"] += now - old.pop("_t", started)
        old["cpu_s"] += cpu - old.pop("_c", 0.0)
        phase[0] = name
        if name not in order:
            order.append(name)
        new = phases.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mb": 0.0, "peak_tree_rss_mb": 0.0})
        new["_t"], new["_c"] = now, cpu

    last_cpu = [0.0]

    def read_stderr():
        for line in proc.stderr:
            err_lines.append(line)
            words = line.split()
            if line.startswith("[transferline]") and len(words) >= 3 and words[2] == "running":
                enter(words[1], time.monotonic(), last_cpu[0])
            elif line.startswith("[transferline]") and len(words) >= 3 and words[2] == "done":
                enter("between/after", time.monotonic(), last_cpu[0])

    def sample():
        while not done.is_set():
            try:
                last_cpu[0] = max(last_cpu[0], cpu_now())
                table = _proc_table()
                rss = [_rss_mb(p) for p in _tree(proc.pid, table)]
                p = phases.setdefault(phase[0], {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mb": 0.0,
                                                 "peak_tree_rss_mb": 0.0})
                p["peak_rss_mb"] = max(p["peak_rss_mb"], max(rss, default=0.0))
                p["peak_tree_rss_mb"] = max(p["peak_tree_rss_mb"], sum(rss))
            except (OSError, ValueError):
                pass
            done.wait(0.25)

    reader, sampler = threading.Thread(target=read_stderr), threading.Thread(target=sample)
    reader.start()
    sampler.start()
    try:
        stdout = proc.stdout.read()
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=30)
        done.set()
        sampler.join(timeout=30)
    enter("_exit", time.monotonic(), last_cpu[0])
    phases.pop("_exit", None)
    # Reaped children's CPU is only certain at exit: give what the samples missed to the last phase.
    return {"wall_s": time.monotonic() - started, "rc": proc.returncode, "stdout": stdout,
            "stderr": "".join(err_lines), "phases": {k: phases[k] for k in order if k in phases}}


def table(result: dict) -> str:
    rows = [f"{'phase':<22}{'wall s':>8}{'CPU s':>8}{'peak RSS MB':>13}{'tree RSS MB':>13}"]
    for name, p in result["phases"].items():
        if p["wall_s"] >= 0.5 or p["cpu_s"] >= 0.5:
            rows.append(f"{name:<22}{p['wall_s']:>8.1f}{p['cpu_s']:>8.1f}{p['peak_rss_mb']:>13.0f}"
                        f"{p['peak_tree_rss_mb']:>13.0f}")
    total_cpu = sum(p["cpu_s"] for p in result["phases"].values())
    rows.append(f"{'total':<22}{result['wall_s']:>8.1f}{total_cpu:>8.1f}")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help="the checkout whose code runs (default: this one)")
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("run_args", nargs=argparse.REMAINDER, help="after --: the `transferline run` flags")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": args.repo, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    run_args = [a for a in args.run_args if a != "--"]
    result = profiled_run([sys.executable, "-m", "ops.cli", "run", *run_args], args.repo, env)
    if result["rc"]:
        sys.exit(result["stderr"][-3000:])
    print(table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: v for k, v in result.items() if k not in ("stdout", "stderr")}, f, indent=2)


if __name__ == "__main__":
    main()
