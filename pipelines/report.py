"""`transferline report [RUN]`: one self-contained HTML page about a run, from MLMD and the artifacts it names.

Sections: the gate's decision (thresholds and baseline from the Evaluator's own eval config), TFMA metrics
per class with the confusion matrix, data (label distribution per split from StatisticsGen, per span from
the span folders; TFDV's anomalies and statistics views), and lineage (which spans -> which Transform and
Trainer executions -> which model -> which pushed version). Images are inlined, so the page is one file
that can be mailed or attached to a ticket; only TFDV's interactive Facets view loads code from the web.
"""
from __future__ import annotations

import base64
import csv
import datetime
import html
import io
import os

from ml_metadata.proto import metadata_store_pb2

from components import features
from components.spans import DATA_FINGERPRINT, SPANS, span_dirs
from pipelines.config import Config, ConfigError
from pipelines.reports import splits, tfdv_sections
from pipelines.summary import class_names, connect, format_summary, run_contexts, run_outputs, summarize_run

_OUTPUT = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_INPUT = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.ok{color:#176d2a}.no{color:#b3261e}
code{background:#f5f5f5;padding:0 3px}h2{border-bottom:1px solid #ddd;margin-top:1.6em}"""


def pick_run(store, pipeline_name: str, run: str | None):
    """The run context RUN names (a run id, or an index such as -1 among the runs, oldest first)."""
    runs = run_contexts(store, pipeline_name)
    if not runs:
        raise ConfigError(f"no run of pipeline '{pipeline_name}' recorded yet; run `transferline run` first")
    if run is None:
        return runs[-1]
    names = [r.name for r in runs]
    if run in names:
        return runs[names.index(run)]
    try:
        return runs[int(run)]
    except (ValueError, IndexError):
        recent = ", ".join(names[-5:])
        raise ConfigError(f"no run '{run}' of pipeline '{pipeline_name}'; give a run id or an index "
                          f"(-1 = latest of {len(runs)}); the latest: {recent}") from None


def write_report(config: Config, run: str | None = None) -> tuple[str, str]:
    """Writes <work_dir>/reports/<run>/report.html; returns (its path, a short terminal summary)."""
    if not os.path.exists(config.metadata_path):
        raise ConfigError(f"no pipeline metadata in {config.paths.work_dir}; run `transferline run` first "
                          "(or give --work-dir)")
    store = connect(config.metadata_path)
    context = pick_run(store, config.pipeline_name, run)
    states, outputs = run_outputs(store, context)
    classes = class_names(outputs)
    summary = summarize_run(config.pipeline_name, context, states, outputs, classes)

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>transferline run {_e(summary.run_id)}"
             f"</title><style>{_STYLE}</style></head><body>",
             f"<h1>transferline: run <code>{_e(summary.run_id)}</code></h1>",
             f"<p>Pipeline <b>{_e(summary.pipeline_name)}</b>, started {_when(context.create_time_since_epoch)}; "
             f"{len(summary.ran)} component(s) ran, {len(summary.cached)} cached. "
             f"Report written {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}.</p>"]
    parts += _gate_section(summary, outputs)
    parts += _metrics_section(summary, outputs, classes)
    parts += _data_section(store, outputs)
    parts += _lineage_section(store, context, states, outputs)
    parts.append("</body></html>")

    report_dir = os.path.join(config.paths.work_dir, "reports", summary.run_id)
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, "report.html")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    os.replace(path + ".tmp", path)
    return path, format_summary(summary) + f"\n  report: {path}"


def _e(value) -> str:
    return html.escape(str(value))


def _when(ms: int) -> str:
    return f"{datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc):%Y-%m-%d %H:%M:%S UTC}"


def _table(table_id: str, header: list, rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table id='{table_id}'><tr>{head}</tr>{body}</table>"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


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
    verdict = ("BLESSED" if summary.blessed else "NOT BLESSED") if summary.blessed is not None else "not evaluated"
    pushed = summary.pushed_path or "nothing (the served model is unchanged)"
    rows = [["Evaluator verdict", verdict], ["push gate", summary.gate_reason or "-"], ["pushed", pushed],
            ["compared with", summary.baseline or "-"]]
    first_model = not summary.baseline.startswith("served")
    if "baseline_accuracy" in summary.metrics and not first_model:
        rows.append(["baseline accuracy", f"{summary.metrics['baseline_accuracy']:.4f}"])
    rows += [["why not", f] for f in summary.failures]
    css = "ok" if summary.blessed else "no"
    out = ["<h2>Gate decision</h2>", f"<p class='{css}'><b>{_e(verdict)}</b>; pushed: {_e(pushed)}</p>",
           _table("gate", ["step", "result"], rows)]
    if outputs.get("Evaluator.evaluation"):
        out += ["<p>Thresholds (the Evaluator's eval config):</p>",
                _table("thresholds", ["metric", "must be", "bound"],
                       _thresholds(outputs["Evaluator.evaluation"][0].uri, first_model))]
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
    matrix = _confusion(outputs["Evaluator.evaluation"][0].uri, classes)
    order = sorted(range(len(classes)), key=classes.__getitem__)  # alphabetical, as the per-class table
    classes, matrix = [classes[i] for i in order], [[matrix[i][j] for j in order] for i in order]
    out += ["<h3>Confusion matrix</h3>",
            f"<img id='confusion-matrix' alt='confusion matrix' src='data:image/png;base64,"
            f"{_confusion_png(matrix, classes)}'>",
            _table("confusion", ["actual \\ predicted", *classes],
                   [[c, *(f"{v:.0f}" for v in row)] for c, row in zip(classes, matrix)])]
    return out


def _split_label_counts(statistics_uri: str) -> dict[str, dict[str, int]]:
    """split -> class -> count, from StatisticsGen's label feature (TFDV rank histogram)."""
    import tensorflow_data_validation as tfdv

    counts = {}
    for split, path in splits(statistics_uri, "FeatureStats.pb"):
        for feature in tfdv.load_stats_binary(path).datasets[0].features:
            if feature.path.step == [features.LABEL]:
                counts[split] = {
                    b.label: int(b.sample_count) for b in feature.string_stats.rank_histogram.buckets}
    return counts


def _input_base(store, examples) -> str:
    """The data root the ExampleGen execution that produced `examples` read (its input_base property)."""
    producers = [ev.execution_id for ev in store.get_events_by_artifact_ids([examples.id]) if ev.type in _OUTPUT]
    for execution in store.get_executions_by_id(producers[:1]):
        if "input_base" in execution.custom_properties:
            return execution.custom_properties["input_base"].string_value
    return ""


def _span_label_counts(spans: list[int], data_dir: str) -> dict[str, dict[str, int]]:
    """span -> class -> count, read from the span folders this run's ExampleGen took."""
    folders = span_dirs(data_dir) if data_dir else {}
    counts = {}
    for n in spans:
        if n not in folders:
            continue
        label_counts: dict[str, int] = {}
        for name in sorted(os.listdir(folders[n])):
            if name.endswith(".csv"):
                with open(os.path.join(folders[n], name), newline="", encoding="utf-8") as f:
                    for row in csv.DictReader(f):
                        label_counts[row[features.LABEL]] = label_counts.get(row[features.LABEL], 0) + 1
        counts[f"span-{n}"] = label_counts
    return counts


def _distribution_table(table_id: str, what: str, counts: dict[str, dict[str, int]]) -> str:
    classes = sorted({c for v in counts.values() for c in v})
    return _table(table_id, [what, *classes, "total"],
                  [[k, *(v.get(c, 0) for c in classes), sum(v.values())] for k, v in counts.items()])


def _data_section(store, outputs) -> list[str]:
    out = ["<h2>Data</h2>"]
    examples = outputs.get("CsvExampleGen.examples")
    if examples:
        e = examples[0]
        data_dir = _input_base(store, e)
        out.append(f"<p>Examples artifact {e.id}: span(s) <b>{_e(_prop_str(e, SPANS))}</b>, data fingerprint "
                   f"<code>{_e(_prop_str(e, DATA_FINGERPRINT))}</code>, read from <code>{_e(data_dir)}</code>.</p>")
        spans = _span_label_counts([int(n) for n in _prop_str(e, SPANS).split(",") if n], data_dir)
        if spans:
            out += ["<h3>Labels per span</h3>", _distribution_table("span-labels", "span", spans)]
    if outputs.get("StatisticsGen.statistics"):
        out += ["<h3>Labels per split (StatisticsGen)</h3>",
                _distribution_table("label-distribution", "split",
                                    _split_label_counts(outputs["StatisticsGen.statistics"][0].uri))]
    if outputs.get("StatisticsGen.statistics"):
        out += ["<h3>Statistics per split (StatisticsGen)</h3>",
                _table("statistics", ["split", "examples", "mean text length (chars)", "distinct texts", "classes"],
                       _split_statistics(outputs["StatisticsGen.statistics"][0].uri))]
    out += tfdv_sections(outputs)
    return out


def _split_statistics(statistics_uri: str) -> list[list]:
    import tensorflow_data_validation as tfdv

    rows = []
    for split, path in splits(statistics_uri, "FeatureStats.pb"):
        stats = tfdv.load_stats_binary(path).datasets[0]
        by_name = {f.path.step[0]: f.string_stats for f in stats.features}
        rows.append([split, stats.num_examples, f"{by_name[features.TEXT].avg_length:.1f}",
                     by_name[features.TEXT].unique, by_name[features.LABEL].unique])
    return rows


def _prop_str(artifact, name: str) -> str:
    return artifact.custom_properties[name].string_value if name in artifact.custom_properties else ""


def _lineage_section(store, context, states, outputs) -> list[str]:
    """Each execution of the run with its input and output artifacts; cached ones name the original producer."""
    executions = sorted(store.get_executions_by_context(context.id), key=lambda x: x.id)
    node_type = store.get_context_type("node")
    rows = []
    for execution in executions:
        node = next(c for c in store.get_contexts_by_execution(execution.id) if c.type_id == node_type.id)
        events = store.get_events_by_execution_ids([execution.id])
        inputs = sorted({ev.artifact_id for ev in events if ev.type in _INPUT})
        produced = sorted({ev.artifact_id for ev in events if ev.type in _OUTPUT})
        origin = ""
        if produced and metadata_store_pb2.Execution.State.Name(execution.last_known_state) == "CACHED":
            first = min(ev.execution_id for ev in store.get_events_by_artifact_ids(produced) if ev.type in _OUTPUT)
            origin = f"execution {first}"
        rows.append([node.name.split(".", 1)[1], metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                     execution.id, ", ".join(map(str, inputs)) or "-", ", ".join(map(str, produced)) or "-",
                     origin or "-"])
    chain = []
    ids = {r[0]: f"{r[2]}" + (f" (cached: {r[5]}'s outputs)" if r[5] != "-" else "") for r in rows}
    if outputs.get("CsvExampleGen.examples"):
        chain.append(f"span(s) {_prop_str(outputs['CsvExampleGen.examples'][0], SPANS)} "
                     f"(Examples {outputs['CsvExampleGen.examples'][0].id})")
    for component, key in (("Transform", "Transform.transform_graph"), ("Trainer", "Trainer.model")):
        if outputs.get(key):
            chain.append(f"{component} execution {ids.get(component)} -> {key.split('.')[1]} {outputs[key][0].id}")
    if outputs.get("Pusher.pushed_model"):
        pushed = outputs["Pusher.pushed_model"][0]
        destination = _prop_str(pushed, "pushed_destination")
        chain.append(f"Pusher execution {ids.get('Pusher')} -> version {_prop_str(pushed, 'pushed_version')} "
                     f"({destination})" if destination else f"Pusher execution {ids.get('Pusher')}: nothing pushed")
    return ["<h2>Lineage (MLMD)</h2>", f"<p id='chain'>{' &rarr; '.join(map(_e, chain))}</p>",
            _table("lineage", ["component", "state", "execution", "input artifacts", "output artifacts",
                               "outputs first produced by"], rows),
            f"<p>MLMD run context {context.id} (<code>{_e(context.name)}</code>). The run's output artifacts:</p>",
            _table("artifacts", ["output", "artifact", "uri"],
                   [[k, v[0].id, v[0].uri] for k, v in sorted(outputs.items(), key=lambda kv: kv[1][0].id) if v])]
