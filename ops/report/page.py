"""`transferline report [RUN]`: one self-contained HTML page about a run, from MLMD and the artifacts it names.

Sections: the gate's decision (thresholds and baseline from the Evaluator's own eval config), TFMA metrics
per class with the confusion matrix, training (ops/report/training.py: mode, phases, per-epoch curves, warm
start, knobs, the most confident mistakes on the gate data), the pushed version's model card, data (label distribution per split from StatisticsGen, per span from
the span folders; TFDV's anomalies and statistics views), and lineage (which spans -> which Transform and
Trainer executions -> which model -> which pushed version). Images are inlined, so the page is one file
that can be mailed or attached to a ticket; only TFDV's interactive Facets view loads code from the web.
"""
from __future__ import annotations

import datetime
import os
import sys

from components import names
from components.errors import NotFound
from ops.args import add_config_args, config_from
from ops.report.html_parts import STYLE as _STYLE, e as _e, png as _png, table as _table
from pipelines.config import Config



def register(sub) -> None:
    p = sub.add_parser("report", help="write one self-contained HTML page about a run (default: the latest)")
    add_config_args(p)
    p.add_argument("run", nargs="?", metavar="RUN",
                   help="run id (as in work/reports/), or an index: -1 the latest (default), 0 the first")
    p.set_defaults(func=command)


def command(args) -> int:
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # TFMA's readers warn about TF1 APIs they use
    logging.getLogger("absl").setLevel(logging.ERROR)
    path, text = write_report(config_from(args), args.run)
    print(text, file=sys.stderr)
    print(path)
    return 0


def write_report(config: Config, run=None) -> tuple[str, str]:
    """Writes <work_dir>/reports/<run>/report.html; returns (its path, a short terminal summary).

    ``run``: a run id or index (default: the latest), or the RecordedRun the caller has already read.
    """
    from ops.report.card import model_card_section
    from ops.report.data_sections import data_section, lineage_section  # TFX, TFMA: not for `transferline --help`
    from ops.report.training import training_section
    from ops.pipeline.summary import format_summary
    from pipelines.runs import RecordedRun, read_run
    from pipelines.work_lock import is_held

    if not isinstance(run, RecordedRun):
        if not os.path.exists(config.metadata_path):
            raise NotFound(f"no pipeline metadata in {config.paths.work_dir}; run `transferline run` first "
                           "(or give --work-dir)")
        run = read_run(config.metadata_path, config.pipeline_name, run, lock_held=is_held(config.paths.work_dir))
    store, context, outputs, classes, summary = run.store, run.context, run.outputs, run.classes, run.summary

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>transferline run {_e(summary.run_id)}"
             f"</title><style>{_STYLE}</style></head><body>",
             f"<h1>transferline: run <code>{_e(summary.run_id)}</code></h1>",
             f"<p>Pipeline <b>{_e(summary.pipeline_name)}</b>, started {_when(context.create_time_since_epoch)}; "
             f"{len(summary.ran)} component(s) ran, {len(summary.cached)} cached. "
             f"Report written {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}.</p>"]
    if summary.interrupted:
        parts.append(f"<p id='interrupted' class='no'><b>Interrupted</b> during {_e(summary.interrupted)}: the run's "
                     "process ended before it finished (killed?); nothing after it ran.</p>")
    if summary.failed:
        parts.append(failed_paragraph(summary))
    parts += _gate_section(summary, outputs)
    parts += _metrics_section(summary, outputs, classes)
    parts += training_section(outputs, _mistakes(outputs))
    parts += model_card_section(summary)
    parts += data_section(store, outputs)
    parts += lineage_section(store, context, outputs)
    parts.append("</body></html>")

    report_dir = config.work.reports(summary.run_id)
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, "report.html")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    os.replace(path + ".tmp", path)
    return path, format_summary(summary) + f"\n  report: {path}"


def _mistakes(outputs) -> dict | None:
    """The candidate's most confident mistakes on the gate data (ops/report/mistakes.py); None without a model."""
    from tfx.utils import path_utils

    from ops.report.mistakes import confident_mistakes

    model, examples = outputs.get(names.MODEL), outputs.get(names.EXAMPLES)
    if not (model and examples and os.path.exists(os.path.join(path_utils.serving_model_path(model[0].uri),
                                                                "saved_model.pb"))):
        return None
    return confident_mistakes(model[0].uri, examples[0])


def failed_paragraph(summary) -> str:
    """The report's line for a run with a FAILED execution: `FAILED at <component>` and what that means."""
    from ops.pipeline.summary import failed_line

    why = failed_line(summary).split(": ", 1)[1]
    return f"<p id='failed' class='no'><b>FAILED at {_e(summary.failed)}</b>: {_e(why)}</p>"


def _when(ms: int) -> str:
    return f"{datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc):%Y-%m-%d %H:%M:%S UTC}"


def _thresholds(evaluation_uri: str, first_model: bool) -> list[list]:
    """The accuracy thresholds the Evaluator applied, from the eval config TFMA wrote beside its results."""
    from tensorflow_model_analysis.writers import eval_config_writer

    rows = []
    for spec in eval_config_writer.load_eval_run(evaluation_uri)[0].metrics_specs:
        for metric in spec.metrics:
            threshold = metric.threshold
            if threshold.value_threshold.HasField("lower_bound"):
                rows.append(["accuracy", "at least", f"{threshold.value_threshold.lower_bound.value:.4f}"])
            if threshold.HasField("change_threshold"):
                change = round(threshold.change_threshold.absolute.value, 4) or 0.0  # no "-0.0000"
                rows.append(["accuracy change vs the served model", "at least",
                             f"{change:+.4f}" + (" (no served model yet: not applied)" if first_model else "")])
    return rows


def _gate_section(summary, outputs) -> list[str]:
    verdict = (("BLESSED" if summary.blessed else "NOT BLESSED") if summary.blessed is not None else
               f"not evaluated: FAILED at {summary.failed}" if summary.failed else "not evaluated")
    pushed = summary.pushed_path or "nothing (the served model is unchanged)"
    rows = [["Evaluator verdict", verdict], ["push gate", summary.gate_reason or "-"], ["pushed", pushed],
            ["compared with", summary.baseline or "-"]]
    if summary.servable is not None:  # the servability gate (ServabilityCheck / InfraValidator)
        from ops.pipeline.summary import servability_line

        rows.insert(2, ["servability gate", servability_line(summary).split(": ", 1)[1]])
    if summary.already_present:
        rows.append(["push", "the model was already under the serving dir (an interrupted earlier push); recorded"])
    if summary.rolled_back:
        r = summary.rolled_back
        rows.append(["rolled back", f"on {r.get('time')} by {r.get('user')} ({r.get('reason')!r}); "
                                    f"serving version {r.get('to_version')}"])
    if summary.leaked_rows is not None:
        rows.append(["leakage (gate rows also in training)", f"{summary.leaked_rows} of {summary.gate_rows}"])
    if summary.skipped_spans:
        rows.append(["skipped span folders (no data file)", ", ".join(f"span-{n}/" for n in summary.skipped_spans)])
    first_model = not summary.baseline.startswith("served")
    if "baseline_accuracy" in summary.metrics and not first_model:
        rows.append(["baseline accuracy", f"{summary.metrics['baseline_accuracy']:.4f}"])
    if summary.references:
        from ops.pipeline.summary import references_line

        rows.append(["references (same gate data)", references_line(summary)])
    if summary.gate_reason == names.GateReason.BELOW_REFERENCE:
        from ops.pipeline.summary import below_reference_reason

        rows.append(["why not", below_reference_reason(summary)])
    rows += [["why not", f] for f in summary.failures]
    if summary.gate_reason == names.GateReason.BELOW_REFERENCE:
        verdict = "REFUSED: below the references"
    css = "ok" if summary.blessed and summary.gate_reason != names.GateReason.BELOW_REFERENCE else "no"
    out = ["<h2>Gate decision</h2>", f"<p class='{css}'><b>{_e(verdict)}</b>; pushed: {_e(pushed)}</p>",
           _table("gate", ["step", "result"], rows)]
    if outputs.get(names.EVALUATION):
        out += ["<p>Thresholds (the Evaluator's eval config):</p>",
                _table("thresholds", ["metric", "must be", "bound"],
                       _thresholds(outputs[names.EVALUATION][0].uri, first_model))]
    return out


def _confusion(evaluation_uri: str, classes: list[str]) -> list[list[float]]:
    """The candidate's confusion matrix (rows actual, columns predicted), from TFMA's plots."""
    import tensorflow_model_analysis as tfma

    n = len(classes)
    matrix = [[0.0] * n for _ in range(n)]
    for plots in tfma.load_plots(evaluation_uri):
        if plots.slice_key.single_slice_keys:
            continue
        for kv in plots.plot_keys_and_values:
            if kv.key.model_name == "baseline" or not kv.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                continue
            for entry in kv.value.multi_class_confusion_matrix_at_thresholds.matrices[0].entries:
                if 0 <= entry.actual_class_id < n and 0 <= entry.predicted_class_id < n:
                    matrix[entry.actual_class_id][entry.predicted_class_id] += entry.num_weighted_examples
    return matrix


def _confusion_png(matrix, classes) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.4), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    top = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", color="white" if v > top / 2 else "black")
    ax.set_title("Confusion matrix (TFMA, gate data)")
    data = _png(fig)
    plt.close(fig)
    return data


def _metrics_section(summary, outputs, classes) -> list[str]:
    m = summary.metrics
    if not m:
        return ["<h2>Model metrics</h2><p>No evaluation in this run.</p>"]
    out = ["<h2>Model metrics (TFMA)</h2>",
           _table("metrics", ["metric", "value"],
                  [["accuracy", f"{m['accuracy']:.4f}"], ["macro F1", f"{m.get('macro_f1', float('nan')):.4f}"],
                   ["examples", f"{int(m['example_count'])}"]]),
           _table("per-class", ["class", "precision", "recall", "F1"],
                  [[c, f"{v.get('precision', 0):.4f}", f"{v.get('recall', 0):.4f}", f"{v.get('f1_score', 0):.4f}"]
                   for c, v in sorted(summary.per_class.items())])]
    matrix = _confusion(outputs[names.EVALUATION][0].uri, classes)
    order = sorted(range(len(classes)), key=classes.__getitem__)  # alphabetical, as the per-class table
    classes, matrix = [classes[i] for i in order], [[matrix[i][j] for j in order] for i in order]
    out += ["<h3>Confusion matrix</h3>",
            f"<img id='confusion-matrix' alt='confusion matrix' src='data:image/png;base64,"
            f"{_confusion_png(matrix, classes)}'>",
            _table("confusion", ["actual \\ predicted", *classes],
                   [[c, *(f"{v:.0f}" for v in row)] for c, row in zip(classes, matrix)])]
    return out
