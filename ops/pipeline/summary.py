"""The run summary in words: what `run` and `retrain` print, and summary.json beside the report."""
from __future__ import annotations

import dataclasses
import json
import os

from components.names import DATA_GATE, PUSHER, REFERENCE_NAMES, GateReason
from pipelines.work_dir import WorkDir
from pipelines.runs import RunSummary

# Reasons worth a line of their own: the model was good, yet held back.
_HELD_BACK = (GateReason.STALE, GateReason.ALREADY_SERVED, GateReason.SAME_TRAINING, GateReason.ROLLED_BACK)


def format_summary(s: RunSummary, durations: dict[str, float] | None = None) -> str:
    lines = [f"Run {s.run_id} of '{s.pipeline_name}': " + (f"FAILED at {s.failed}; " if s.failed else "")
             + f"{len(s.ran)} component(s) ran, {len(s.cached)} cached"]
    if s.failed:
        lines.append("  " + failed_line(s))
    if s.interrupted:
        lines.append(f"  INTERRUPTED during {s.interrupted}: its process ended before the run finished (killed?); "
                     "nothing after it ran. Run again: finished steps are cached")
    if durations and s.ran:
        lines.append("  " + ", ".join(f"{c} {durations[c]:.1f}s" for c in durations if c in s.ran))
    if s.spans:
        eval_spans = s.eval_spans or s.spans[-1:]
        source = (f"span {eval_spans[0]}'s eval split" if len(eval_spans) == 1 else
                  f"the eval split of spans {', '.join(map(str, s.eval_spans))} (span {s.spans[-1]} alone is "
                  f"too small for data.min_eval_rows={s.min_eval_rows})")
        lines.append(f"  trained on span(s) {', '.join(map(str, s.spans))}; gate data: {source}"
                     + (" + the held-out test set" if s.held_out_test else ""))
    if s.eval_rows is not None and s.eval_rows < s.min_eval_rows:
        lines.append(f"  WARNING: the eval split has {s.eval_rows} rows, fewer than data.min_eval_rows="
                     f"{s.min_eval_rows}: early stopping and the gate judged on a small sample (add labelled data)")
    if s.skipped_spans:
        lines.append(f"  skipped: {', '.join(f'span-{n}/' for n in s.skipped_spans)} (no data file yet)")
    if s.leaked_rows is not None and s.gate_rows:
        lines.append(f"  leakage: {s.leaked_rows} of {s.gate_rows} gate rows ({s.leaked_rows / s.gate_rows:.1%}) "
                     "have a text also in the training data (contract.max_leakage_fraction)")
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
    r = s.rolled_back
    rollback = (f"version {os.path.basename(s.pushed_path or '')} was rolled back on {r.get('time')} by "
                f"{r.get('user')} ({r.get('reason')!r}); serving version {r.get('to_version')}") if r else ""
    if s.references:
        lines.append("  references on the same gate data: " + references_line(s))
    if s.gate_reason == GateReason.BELOW_REFERENCE:
        lines.append("  gate: REFUSED: " + below_reference_reason(s))
    elif s.blessed is not None:
        verdict = "BLESSED" if s.blessed else "NOT BLESSED: " + "; ".join(s.failures or ["?"])
        lines.append(f"  gate: {verdict}" + (" (then; since rolled back, see below)" if r and s.blessed else ""))
    if s.gate_reason in _HELD_BACK:
        lines.append(f"  held back: {GateReason.EXPLAINED[s.gate_reason]}")
    if s.servable is not None:
        lines.append("  " + servability_line(s))
    if r:
        lines.append(f"  pushed: nothing served from this run: {rollback}")
    elif s.pushed_path and s.executions.get(PUSHER) == "CACHED":
        lines.append(f"  pushed: nothing new (cached: {s.pushed_path} was pushed by an earlier run)")
    elif s.pushed_path and s.already_present:
        lines.append(f"  pushed: nothing new ({s.pushed_path} already holds this model, from an interrupted "
                     "earlier push; recorded as this run's push)")
    else:
        lines.append(f"  pushed: {s.pushed_path}" if s.pushed_path else
                     "  pushed: nothing (the served model is unchanged)")
    return "\n".join(lines)


def next_steps(s: RunSummary, flags: str = "") -> list[str]:
    """What to do after this run, as commands (the run's output ends with them, as `init`'s does); ``flags``:
    the --config/--work-dir flags the run was given, so the commands read the same project."""
    flags = f" {flags}" if flags else ""
    if s.failed or s.interrupted:
        return [f"transferline run{flags}   # again, once the cause is fixed: finished steps are cached"]
    steps = [f"transferline report{flags}   # the run's page: data, gate, model"]
    if s.pushed_path and not s.rolled_back:
        steps[:0] = [f"transferline predict{flags} \"a text to classify\"",
                     f"transferline serve{flags}   # TF Serving's REST API on :8501"]
    steps.append(f"transferline runs{flags}   # every run and version")
    return steps


def failed_line(s: RunSummary) -> str:
    """A FAILED run in words: where it stopped, and what that means for the served model."""
    if s.failed == DATA_GATE:
        return (f"FAILED at {s.failed}: the data broke the contract (rejected); nothing was trained or pushed, "
                "the served model is unchanged")
    return (f"FAILED at {s.failed}: the component raised an error, nothing after it ran and nothing was pushed "
            "(the served model is unchanged); the error is in the run's log (logs/ under the work dir). "
            "Run again once fixed: finished steps are cached")


def servability_line(s: RunSummary) -> str:
    """The servability gate in words: whether TF Serving would load the candidate, and why not."""
    if s.servable:
        return (f"servability: loads as TF Serving loads it; {s.warmup_records} warmup records replayed "
                "(assets.extra/tf_serving_warmup_requests, pushed with it)")
    return (f"servability: REFUSED: {s.servability_reason or 'InfraValidator did not bless it'}; "
            "nothing pushed, the served model is unchanged")


def references_line(s: RunSummary) -> str:
    """'majority class 0.4915, TF-IDF(1-2-grams)+LR 0.7966; the model: +0.4661 and +0.1610'."""
    line = ", ".join(f"{REFERENCE_NAMES[n]} {v:.4f}" for n, v in s.references.items())
    if "accuracy" in s.metrics:
        line += "; the model: " + " and ".join(f"{s.metrics['accuracy'] - v:+.4f}" for v in s.references.values())
    return line


def below_reference_reason(s: RunSummary) -> str:
    """Why a first model was refused, in words: which reference it did not beat, by how much."""
    from components.gate_rules import below_references

    accuracy = s.metrics.get("accuracy", 0.0)
    missed = below_references(accuracy, s.references, s.reference_margin)
    margin = f" + margin {s.reference_margin:.4f}" if s.reference_margin else ""
    return (f"accuracy {accuracy:.4f} does not beat " + " nor ".join(
        f"the {REFERENCE_NAMES[n]} reference {s.references[n]:.4f}{margin}" for n in missed)
        + " on the same gate data; a first model must beat the references (gate.reference_margin)")


def write_summary(s: RunSummary, work_dir: str, durations: dict[str, float] | None = None) -> str:
    """Writes summary.json (the summary plus each component's wall time) into the run's report folder."""
    report_dir = WorkDir(work_dir).reports(s.run_id)
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, "summary.json")
    with open(path, "w") as f:
        json.dump({**dataclasses.asdict(s), "durations_s": durations or {}}, f, indent=2, sort_keys=True)
    return path
