"""The run summary in words: what `run` and `retrain` print, and summary.json beside the report."""
from __future__ import annotations

import dataclasses
import json
import os

from components.names import PUSHER, GateReason, reports_dir
from pipelines.runs import RunSummary

# Reasons worth a line of their own: the model was good, yet held back.
_HELD_BACK = (GateReason.STALE, GateReason.ALREADY_SERVED, GateReason.SAME_TRAINING, GateReason.ROLLED_BACK)


def format_summary(s: RunSummary, durations: dict[str, float] | None = None) -> str:
    lines = [f"Run {s.run_id} of '{s.pipeline_name}': {len(s.ran)} component(s) ran, {len(s.cached)} cached"]
    if durations and s.ran:
        lines.append("  " + ", ".join(f"{c} {durations[c]:.1f}s" for c in durations if c in s.ran))
    if s.spans:
        lines.append(f"  trained on span(s) {', '.join(map(str, s.spans))}; gate data: span {s.spans[-1]}'s eval "
                     f"split" + (" + the held-out test set" if s.held_out_test else ""))
    if s.trainer_mode:
        lines.append(f"  model: {s.trainer_mode}")
    if s.warm_start:
        lines.append(f"  warm start: {s.warm_start}")
    m = s.metrics
    if m:
        lines.append(f"  accuracy {m.get('accuracy', float('nan')):.4f} on {int(m.get('example_count', 0))} "
                     f"examples, macro F1 {m.get('macro_f1', float('nan')):.4f}")
        lines.append("  per class (precision/recall/F1): " + ", ".join(
            f"{c} {v.get('precision', 0):.2f}/{v.get('recall', 0):.2f}/{v.get('f1_score', 0):.2f}"
            for c, v in sorted(s.per_class.items())))
    if s.baseline:
        base = f"  compared with: {s.baseline}"
        if "baseline_accuracy" in m and s.baseline.startswith("served"):
            base += f" (accuracy {m['baseline_accuracy']:.4f}, change {m['accuracy'] - m['baseline_accuracy']:+.4f})"
        lines.append(base)
    if s.blessed is not None:
        lines.append("  gate: BLESSED" if s.blessed else "  gate: NOT BLESSED: " + "; ".join(s.failures or ["?"]))
    if s.gate_reason in _HELD_BACK:
        lines.append(f"  held back: {GateReason.EXPLAINED[s.gate_reason]}")
    if s.pushed_path and s.executions.get(PUSHER) == "CACHED":
        lines.append(f"  pushed: nothing new (cached: {s.pushed_path} was pushed by an earlier run)")
    else:
        lines.append(f"  pushed: {s.pushed_path}" if s.pushed_path else
                     "  pushed: nothing (the served model is unchanged)")
    return "\n".join(lines)


def write_summary(s: RunSummary, work_dir: str, durations: dict[str, float] | None = None) -> str:
    """Writes summary.json (the summary plus each component's wall time) into the run's report folder."""
    report_dir = reports_dir(work_dir, s.run_id)
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, "summary.json")
    with open(path, "w") as f:
        json.dump({**dataclasses.asdict(s), "durations_s": durations or {}}, f, indent=2, sort_keys=True)
    return path
