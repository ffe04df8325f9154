"""A run, read back from MLMD and the artifacts it points at (never from logs).

Which components ran or were cached, the Evaluator's metrics (TFMA), whether the model was blessed and
why (TFMA validation result), the baseline it was compared with, and where the Pusher put it. The run
summary (ops/pipeline/summary.py) and the report (ops/report/page.py) format what this reads.
"""
from __future__ import annotations

import dataclasses
import json
import os

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from components import names
from components.names import BASELINE_SOURCE, BASELINE_VERSION, REASON, SKIPPED_SPANS, SPANS, TEST_SPLIT
from pipelines.mlmd_store import connect, pick_run, prop, run_outputs
from pipelines.run_history import interrupted_component, rollbacks

@dataclasses.dataclass
class RunSummary:
    run_id: str
    pipeline_name: str
    executions: dict[str, str]               # component id -> COMPLETE / CACHED / FAILED / ...
    metrics: dict[str, float]                # accuracy, macro_f1, example_count, baseline_accuracy
    per_class: dict[str, dict[str, float]]   # class name -> precision / recall / f1_score
    baseline: str                            # "first model (nothing served: the references and the absolute floor decide)" or "served version N"
    blessed: bool | None                     # the Evaluator's verdict
    gate_reason: str                         # PushGate: ok / not_blessed / stale_baseline
    failures: list[str]                      # why not blessed, in words
    pushed_path: str | None
    artifacts: dict[str, str]                # "Component.output" -> uri
    spans: list[int] = dataclasses.field(default_factory=list)  # the spans this run trained on
    held_out_test: bool = False              # whether the gate also used the fixed held-out test set
    warm_start: str = ""                     # "from served version N" or "fresh start: why"
    skipped_spans: list[int] = dataclasses.field(default_factory=list)  # span folders with no data file yet
    gate_rows: int | None = None             # eval + test rows (DataGate)
    leaked_rows: int | None = None           # of those, texts also in the training data
    already_present: bool = False            # the Pusher found this model already pushed (a killed push)
    rolled_back: dict = dataclasses.field(default_factory=dict)  # the rollback that moved the pushed version aside
    interrupted: str = ""                    # the component whose process died while it ran, if any
    # The simple references on the same gate data (MLMD names -> accuracy; components/references.py),
    # and the margin the first model had to beat them by.
    references: dict[str, float] = dataclasses.field(default_factory=dict)
    reference_margin: float = 0.0
    trainer_mode: str = ""                   # the model family trained, why, and (fine_tune) the phase kept
    failed: str = ""                         # the component whose execution FAILED (nothing after it ran), if any
    eval_rows: int | None = None             # of the gate rows, the eval split's (DataGate)
    eval_spans: list[int] = dataclasses.field(default_factory=list)  # the spans the eval split was drawn from
    min_eval_rows: int = 0                   # data.min_eval_rows: the floor the eval split was drawn for
    servable: bool | None = None             # the servability gate's verdict (ServabilityCheck / InfraValidator)
    servability_reason: str = ""             # why it refused, in words
    warmup_records: int = 0                  # the warmup file it wrote (pushed with the model when servable)

    @property
    def ran(self) -> list[str]:
        return [c for c, s in self.executions.items() if s == "COMPLETE"]

    @property
    def cached(self) -> list[str]:
        return [c for c, s in self.executions.items() if s == "CACHED"]


def class_names(outputs) -> list[str]:
    """The label vocabulary Transform wrote, in class-id order ([] before Transform ran)."""
    import tensorflow_transform as tft

    graph = outputs.get(names.TRANSFORM_GRAPH)
    if not graph:
        return []
    return [v.decode() for v in tft.TFTransformOutput(graph[0].uri).vocabulary_by_name(names.LABEL_VOCAB)]


def _evaluation(uri: str, class_names: list[str]):
    import tensorflow_model_analysis as tfma

    from components.model_card import gate_metrics

    metrics, per_class = gate_metrics(uri, class_names)
    failures = []
    validation = tfma.load_validation_result(uri)
    for per_slice in validation.metric_validations_per_slice:
        for f in per_slice.failures:
            name = "accuracy" if f.metric_key.name == names.ACCURACY_METRIC else f.metric_key.name
            bound = f.metric_threshold.value_threshold
            required = (f", required >= {bound.lower_bound.value:.4f}" if bound.HasField("lower_bound")
                        else f", required <= {bound.upper_bound.value:.4f}" if bound.HasField("upper_bound") else "")
            what = f"{name} change vs the served model" if f.metric_key.is_diff else name
            failures.append(f"{what} is {f.metric_value.double_value.value:+.4f}{required}"
                            if f.metric_key.is_diff else f"{what} is {f.metric_value.double_value.value:.4f}{required}")
    return metrics, per_class, failures


def _model_run_json(outputs, file_name: str) -> dict | None:
    """A JSON file the Trainer wrote into its model_run artifact (None if it wrote none)."""
    path = os.path.join(outputs[names.MODEL_RUN][0].uri, file_name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _warm_start(outputs) -> str:
    info = _model_run_json(outputs, names.WARM_START_FILE)
    if info is None:
        return ""
    if not info.get("warm_start"):
        return info.get("reason", "fresh start")
    served = outputs.get(names.SERVED_MODEL_OUT)
    return f"from served version {prop(served[0], BASELINE_VERSION)}" if served else "from the served model"


def _trainer_mode(outputs) -> str:
    info = _model_run_json(outputs, names.TRAINING_FILE)
    if info is None:
        return ""
    line = f"{info['mode']} ({info['why']})"
    return f"{line}; {info['decision']}" if info.get("decision") else line


@dataclasses.dataclass
class RecordedRun:
    """One run as MLMD holds it, read once: what the summary and the report are made from."""
    store: mlmd.MetadataStore
    context: metadata_store_pb2.Context
    states: dict[str, str]
    outputs: dict[str, list]
    classes: list[str]
    summary: RunSummary


def read_run(metadata_path: str, pipeline_name: str, run: str | int | None = None, *,
             lock_held: bool = True) -> RecordedRun:
    """A run (default: the latest) of ``pipeline_name`` in the MLMD at ``metadata_path``.
    ``lock_held``: whether a process holds the work dir's lock now (False: a RUNNING execution is dead)."""
    store = connect(metadata_path)
    context = pick_run(store, pipeline_name, run)
    states, outputs = run_outputs(store, context)
    classes = class_names(outputs)
    return RecordedRun(store, context, states, outputs, classes,
                       summarize_run(pipeline_name, context, states, outputs, classes, rollbacks(store),
                                     interrupted_component(store, context, lock_held)))


def summarize(metadata_path: str, pipeline_name: str, run: str | int | None = None, *,
              lock_held: bool = True) -> RunSummary:
    """The summary of a run (default: the latest)."""
    return read_run(metadata_path, pipeline_name, run, lock_held=lock_held).summary


def baseline_words(source: str, version: int, change: str | None) -> str:
    """What the candidate was compared with, in words (the summary's and the report's "compared with")."""
    if source == "served":
        return f"served version {version}"
    if source == "classes_changed":
        return (f"nothing comparable: the classes changed since served version {version} ({change}); "
                "the references and the absolute floor decide")
    return "first model (nothing served: the references and the absolute floor decide)"


def summarize_run(pipeline_name: str, run, states: dict[str, str], outputs: dict[str, list],
                  classes: list[str], rollbacks_: list[dict] = (), interrupted: str = "", *,
                  evaluate: bool = True) -> RunSummary:
    """The summary of one run from what ``run_outputs`` read (``classes``: ``class_names(outputs)``;
    ``rollbacks_``: ``rollbacks(store)``; ``interrupted``: ``interrupted_component(...)``; ``evaluate``: False
    leaves the Evaluator's TFMA results unread, metrics then holding only the accuracy PushGate recorded)."""
    summary = RunSummary(run_id=run.name, pipeline_name=pipeline_name, executions=states, metrics={},
                         per_class={}, baseline="", blessed=None, gate_reason="", failures=[], pushed_path=None,
                         artifacts={k: v[0].uri for k, v in outputs.items() if v}, interrupted=interrupted,
                         failed=next((c for c, s in states.items() if s == "FAILED"), ""))
    if outputs.get(names.EXAMPLES):
        chosen = prop(outputs[names.EXAMPLES][0], SPANS)
        summary.spans = [int(n) for n in str(chosen).split(",")] if chosen else []
        split_names = outputs[names.EXAMPLES][0].properties["split_names"].string_value
        summary.held_out_test = TEST_SPLIT in json.loads(split_names or "[]")
        eval_spans = prop(outputs[names.EXAMPLES][0], names.EVAL_SPANS)
        summary.eval_spans = [int(n) for n in str(eval_spans).split(",")] if eval_spans else summary.spans[-1:]
        summary.min_eval_rows = int(prop(outputs[names.EXAMPLES][0], names.MIN_EVAL_ROWS) or 0)
        skipped = prop(outputs[names.EXAMPLES][0], SKIPPED_SPANS)
        summary.skipped_spans = [int(n) for n in str(skipped).split(",")] if skipped else []
    for key, field in ((names.GATE_ROWS, "gate_rows"), (names.LEAKED_ROWS, "leaked_rows"),
                       (names.EVAL_ROWS, "eval_rows")):
        if outputs.get(key):
            setattr(summary, field, _int_value(outputs[key][0].uri))
    if outputs.get(names.MODEL_RUN):
        summary.warm_start = _warm_start(outputs)
        summary.trainer_mode = _trainer_mode(outputs)
    if outputs.get(names.BASELINE_OUT):
        b = outputs[names.BASELINE_OUT][0]
        summary.baseline = baseline_words(prop(b, BASELINE_SOURCE), prop(b, BASELINE_VERSION), prop(b, names.CLASS_CHANGE))
    if outputs.get(names.EVALUATION) and evaluate:
        summary.metrics, summary.per_class, summary.failures = _evaluation(
            outputs[names.EVALUATION][0].uri, classes)
    if outputs.get(names.BLESSING):
        summary.blessed = bool(prop(outputs[names.BLESSING][0], names.BLESSED))
    if outputs.get(names.REFERENCES_OUT):
        r = outputs[names.REFERENCES_OUT][0]
        summary.references = {n: prop(r, n) for n in names.REFERENCE_NAMES if prop(r, n) is not None}
    if outputs.get(names.GATE):
        summary.gate_reason = prop(outputs[names.GATE][0], REASON)
        summary.reference_margin = prop(outputs[names.GATE][0], names.REFERENCE_MARGIN) or 0.0
        if not evaluate and prop(outputs[names.GATE][0], names.CANDIDATE_ACCURACY) is not None:
            summary.metrics["accuracy"] = prop(outputs[names.GATE][0], names.CANDIDATE_ACCURACY)
    if outputs.get(names.INFRA_BLESSING):
        infra = outputs[names.INFRA_BLESSING][0]
        summary.servable = bool(prop(infra, names.BLESSED))
        summary.servability_reason = prop(infra, REASON) or ""
        summary.warmup_records = int(prop(infra, names.WARMUP_RECORDS) or 0)
    if outputs.get(names.PUSHED_MODEL):
        pushed = outputs[names.PUSHED_MODEL][0]
        if prop(pushed, names.PUSHED):
            summary.pushed_path = prop(pushed, names.PUSHED_DESTINATION)
            summary.already_present = bool(prop(pushed, names.ALREADY_PRESENT))
            summary.rolled_back = rolled_back(str(prop(pushed, names.PUSHED_VERSION)), rollbacks_)
    return summary


def _int_value(uri: str) -> int | None:
    """A TFX Integer value artifact's value (the file at its uri)."""
    try:
        with open(uri) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def rolled_back(version: str, rollbacks_: list[dict]) -> dict:
    """The latest rollback that moved `version` aside ({} if none did)."""
    hits = [r for r in rollbacks_ if version and version in str(r.get("moved", "")).split(",")]
    return hits[-1] if hits else {}
