"""The run summary, read back from MLMD and the artifacts it points at (never from logs).

Which components ran or were cached, the Evaluator's metrics (TFMA), whether the
model was blessed and why (TFMA validation result), the baseline it was compared
with, and where the Pusher put it.
"""
from __future__ import annotations

import dataclasses
import json
import os

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from components import features
from components.baseline import (ALREADY_SERVED, BASELINE_SOURCE, BASELINE_VERSION, REASON, ROLLED_BACK,
                                 SAME_TRAINING, STALE)
from components.spans import SPANS, TEST_SPLIT
from components.trainer import WARM_START_FILE

_STATE = metadata_store_pb2.Execution.State


@dataclasses.dataclass
class RunSummary:
    run_id: str
    pipeline_name: str
    executions: dict[str, str]               # component id -> COMPLETE / CACHED / FAILED / ...
    metrics: dict[str, float]                # accuracy, macro_f1, example_count, baseline_accuracy
    per_class: dict[str, dict[str, float]]   # class name -> precision / recall / f1_score
    baseline: str                            # "first model (absolute bound only)" or "served version N"
    blessed: bool | None                     # the Evaluator's verdict
    gate_reason: str                         # PushGate: ok / not_blessed / stale_baseline
    failures: list[str]                      # why not blessed, in words
    pushed_path: str | None
    artifacts: dict[str, str]                # "Component.output" -> uri
    spans: list[int] = dataclasses.field(default_factory=list)  # the spans this run trained on
    held_out_test: bool = False              # whether the gate also used the fixed held-out test set
    warm_start: str = ""                     # "from served version N" or "fresh start: why"

    @property
    def ran(self) -> list[str]:
        return [c for c, s in self.executions.items() if s == "COMPLETE"]

    @property
    def cached(self) -> list[str]:
        return [c for c, s in self.executions.items() if s == "CACHED"]


def connect(metadata_path: str) -> mlmd.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return mlmd.MetadataStore(config)


def run_contexts(store: mlmd.MetadataStore, pipeline_name: str) -> list:
    """This pipeline's runs, oldest first."""
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return []
    runs = store.get_children_contexts_by_context(pipeline.id)
    return sorted((c for c in runs if c.type == "pipeline_run"),
                  key=lambda c: (c.create_time_since_epoch, c.id))


def run_outputs(store: mlmd.MetadataStore, run_context) -> tuple[dict[str, str], dict[str, list]]:
    """(component id -> execution state, "Component.key" -> output artifacts) for one run."""
    node_type = store.get_context_type("node")
    states, outputs = {}, {}
    for execution in store.get_executions_by_context(run_context.id):
        node = next(c for c in store.get_contexts_by_execution(execution.id) if c.type_id == node_type.id)
        component = node.name.split(".", 1)[1]
        states[component] = _STATE.Name(execution.last_known_state)
        events = [e for e in store.get_events_by_execution_ids([execution.id])
                  if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
        by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
        for e in events:
            key = f"{component}.{e.path.steps[0].key}"
            outputs.setdefault(key, []).append(by_id[e.artifact_id])
    return states, outputs


def _prop(artifact, name):
    if name not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[name]
    return value.string_value or value.int_value


def class_names(outputs) -> list[str]:
    """The label vocabulary Transform wrote, in class-id order ([] before Transform ran)."""
    import tensorflow_transform as tft

    graph = outputs.get("Transform.transform_graph")
    if not graph:
        return []
    return [v.decode() for v in tft.TFTransformOutput(graph[0].uri).vocabulary_by_name(features.LABEL_VOCAB)]


def _evaluation(uri: str, class_names: list[str]):
    import tensorflow_model_analysis as tfma

    metrics, per_class = {}, {}
    for slice_metrics in tfma.load_metrics(uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue  # overall slice only
        for kv in slice_metrics.metric_keys_and_values:
            key, value = kv.key, kv.value.double_value.value
            if key.is_diff or not kv.value.HasField("double_value"):
                continue
            if key.model_name == "baseline":
                if key.name == "sparse_categorical_accuracy":
                    metrics["baseline_accuracy"] = value
                continue
            if key.sub_key.HasField("class_id"):
                cid = key.sub_key.class_id.value
                name = class_names[cid] if cid < len(class_names) else str(cid)
                per_class.setdefault(name, {})[key.name] = value
            elif key.name in ("sparse_categorical_accuracy", "example_count"):
                metrics["accuracy" if key.name != "example_count" else "example_count"] = value
    f1 = [v["f1_score"] for v in per_class.values() if "f1_score" in v]
    if f1:
        metrics["macro_f1"] = sum(f1) / len(f1)
    failures = []
    validation = tfma.load_validation_result(uri)
    for per_slice in validation.metric_validations_per_slice:
        for f in per_slice.failures:
            name = "accuracy" if f.metric_key.name == "sparse_categorical_accuracy" else f.metric_key.name
            bound = f.metric_threshold.value_threshold
            required = (f", required >= {bound.lower_bound.value:.4f}" if bound.HasField("lower_bound")
                        else f", required <= {bound.upper_bound.value:.4f}" if bound.HasField("upper_bound") else "")
            what = f"{name} change vs the served model" if f.metric_key.is_diff else name
            failures.append(f"{what} is {f.metric_value.double_value.value:+.4f}{required}"
                            if f.metric_key.is_diff else f"{what} is {f.metric_value.double_value.value:.4f}{required}")
    return metrics, per_class, failures


def _warm_start(outputs) -> str:
    path = os.path.join(outputs["Trainer.model_run"][0].uri, WARM_START_FILE)
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        info = json.load(f)
    if not info.get("warm_start"):
        return info.get("reason", "fresh start")
    served = outputs.get("ServedModel.model")
    return f"from served version {_prop(served[0], BASELINE_VERSION)}" if served else "from the served model"


def summarize(metadata_path: str, pipeline_name: str, run_index: int = -1) -> RunSummary:
    """Summary of a run (default: the latest) of ``pipeline_name`` in the MLMD at ``metadata_path``."""
    store = connect(metadata_path)
    runs = run_contexts(store, pipeline_name)
    if not runs:
        raise LookupError(f"no run of pipeline '{pipeline_name}' in {metadata_path}")
    run = runs[run_index]
    states, outputs = run_outputs(store, run)
    return summarize_run(pipeline_name, run, states, outputs, class_names(outputs))


def summarize_run(pipeline_name: str, run, states: dict[str, str], outputs: dict[str, list],
                  classes: list[str]) -> RunSummary:
    """The summary of one run from what ``run_outputs`` read (``classes``: ``class_names(outputs)``)."""
    summary = RunSummary(run_id=run.name, pipeline_name=pipeline_name, executions=states, metrics={},
                         per_class={}, baseline="", blessed=None, gate_reason="", failures=[], pushed_path=None,
                         artifacts={k: v[0].uri for k, v in outputs.items() if v})
    if outputs.get("CsvExampleGen.examples"):
        chosen = _prop(outputs["CsvExampleGen.examples"][0], SPANS)
        summary.spans = [int(n) for n in str(chosen).split(",")] if chosen else []
        split_names = outputs["CsvExampleGen.examples"][0].properties["split_names"].string_value
        summary.held_out_test = TEST_SPLIT in json.loads(split_names or "[]")
    if outputs.get("Trainer.model_run"):
        summary.warm_start = _warm_start(outputs)
    if outputs.get("ServedModelBaseline.baseline"):
        b = outputs["ServedModelBaseline.baseline"][0]
        summary.baseline = (f"served version {_prop(b, BASELINE_VERSION)}"
                            if _prop(b, BASELINE_SOURCE) == "served" else "first model (absolute bound only)")
    if outputs.get("Evaluator.evaluation"):
        summary.metrics, summary.per_class, summary.failures = _evaluation(
            outputs["Evaluator.evaluation"][0].uri, classes)
    if outputs.get("Evaluator.blessing"):
        summary.blessed = bool(_prop(outputs["Evaluator.blessing"][0], "blessed"))
    if outputs.get("PushGate.gate"):
        summary.gate_reason = _prop(outputs["PushGate.gate"][0], REASON)
    if outputs.get("Pusher.pushed_model"):
        pushed = outputs["Pusher.pushed_model"][0]
        if _prop(pushed, "pushed"):
            summary.pushed_path = _prop(pushed, "pushed_destination")
    return summary


def format_summary(s: RunSummary, durations: dict[str, float] | None = None) -> str:
    lines = [f"Run {s.run_id} of '{s.pipeline_name}': {len(s.ran)} component(s) ran, {len(s.cached)} cached"]
    if durations and s.ran:
        lines.append("  " + ", ".join(f"{c} {durations[c]:.1f}s" for c in durations if c in s.ran))
    if s.spans:
        lines.append(f"  trained on span(s) {', '.join(map(str, s.spans))}; gate data: span {s.spans[-1]}'s eval "
                     f"split" + (" + the held-out test set" if s.held_out_test else ""))
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
    if s.gate_reason == STALE:
        lines.append("  held back: the served model changed since this candidate was compared with it")
    elif s.gate_reason == ALREADY_SERVED:
        lines.append("  held back: this very model is already the served one")
    elif s.gate_reason == SAME_TRAINING:
        lines.append("  held back: the served model was trained on the same data with the same config")
    elif s.gate_reason == ROLLED_BACK:
        lines.append("  held back: a model trained like this was rolled back (new data or config lifts it)")
    if s.pushed_path and s.executions.get("Pusher") == "CACHED":
        lines.append(f"  pushed: nothing new (cached: {s.pushed_path} was pushed by an earlier run)")
    else:
        lines.append(f"  pushed: {s.pushed_path}" if s.pushed_path else
                     "  pushed: nothing (the served model is unchanged)")
    return "\n".join(lines)


def write_summary(s: RunSummary, report_dir: str, durations: dict[str, float] | None = None) -> str:
    """Writes summary.json (the summary plus each component's wall time) into the run's report folder."""
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, "summary.json")
    with open(path, "w") as f:
        json.dump({**dataclasses.asdict(s), "durations_s": durations or {}}, f, indent=2, sort_keys=True)
    return path
