"""The report's data and lineage sections: labels per span and split, TFDV's views, and MLMD lineage."""
from __future__ import annotations

import csv
import os

from ml_metadata.proto import metadata_store_pb2

from components import names
from components.spans import span_dirs
from ops.report.html_parts import e as _e, table as _table
from ops.report.tfdv_views import splits, tfdv_sections
from pipelines.mlmd_store import prop


def _prop(artifact, name: str) -> str:
    return str(prop(artifact, name) or "")


_OUTPUT = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
_INPUT = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)


def _split_label_counts(statistics_uri: str) -> dict[str, dict[str, int]]:
    """split -> class -> count, from StatisticsGen's label feature (TFDV rank histogram)."""
    import tensorflow_data_validation as tfdv

    counts = {}
    for split, path in splits(statistics_uri, "FeatureStats.pb"):
        for feature in tfdv.load_stats_binary(path).datasets[0].features:
            if feature.path.step == [names.LABEL]:
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
                        label_counts[row[names.LABEL]] = label_counts.get(row[names.LABEL], 0) + 1
        counts[f"span-{n}"] = label_counts
    return counts


def _distribution_table(table_id: str, what: str, counts: dict[str, dict[str, int]]) -> str:
    classes = sorted({c for v in counts.values() for c in v})
    return _table(table_id, [what, *classes, "total"],
                  [[k, *(v.get(c, 0) for c in classes), sum(v.values())] for k, v in counts.items()])


def data_section(store, outputs) -> list[str]:
    out = ["<h2>Data</h2>"]
    examples = outputs.get(names.EXAMPLES)
    if examples:
        e = examples[0]
        data_dir = _input_base(store, e)
        out.append(f"<p>Examples artifact {e.id}: span(s) <b>{_e(_prop(e, names.SPANS))}</b>, data fingerprint "
                   f"<code>{_e(_prop(e, names.DATA_FINGERPRINT))}</code>, read from <code>{_e(data_dir)}</code>.</p>")
        spans = _span_label_counts([int(n) for n in _prop(e, names.SPANS).split(",") if n], data_dir)
        if spans:
            out += ["<h3>Labels per span</h3>", _distribution_table("span-labels", "span", spans)]
    if outputs.get(names.STATISTICS):
        out += ["<h3>Labels per split (StatisticsGen)</h3>",
                _distribution_table("label-distribution", "split",
                                    _split_label_counts(outputs[names.STATISTICS][0].uri))]
    if outputs.get(names.STATISTICS):
        out += ["<h3>Statistics per split (StatisticsGen)</h3>",
                _table("statistics", ["split", "examples", "mean text length (chars)", "distinct texts", "classes"],
                       _split_statistics(outputs[names.STATISTICS][0].uri))]
    out += tfdv_sections(outputs)
    return out


def _split_statistics(statistics_uri: str) -> list[list]:
    import tensorflow_data_validation as tfdv

    rows = []
    for split, path in splits(statistics_uri, "FeatureStats.pb"):
        stats = tfdv.load_stats_binary(path).datasets[0]
        by_name = {f.path.step[0]: f.string_stats for f in stats.features}
        rows.append([split, stats.num_examples, f"{by_name[names.TEXT].avg_length:.1f}",
                     by_name[names.TEXT].unique, by_name[names.LABEL].unique])
    return rows


def lineage_section(store, context, outputs) -> list[str]:
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
    if outputs.get(names.EXAMPLES):
        chain.append(f"span(s) {_prop(outputs[names.EXAMPLES][0], names.SPANS)} "
                     f"(Examples {outputs[names.EXAMPLES][0].id})")
    for component, key in ((names.TRANSFORM, names.TRANSFORM_GRAPH), (names.TRAINER, names.MODEL)):
        if outputs.get(key):
            chain.append(f"{component} execution {ids.get(component)} -> {key.split('.')[1]} {outputs[key][0].id}")
    if outputs.get(names.PUSHED_MODEL):
        pushed = outputs[names.PUSHED_MODEL][0]
        destination = _prop(pushed, names.PUSHED_DESTINATION)
        chain.append(f"Pusher execution {ids.get(names.PUSHER)} -> version {_prop(pushed, 'pushed_version')} "
                     f"({destination})" if destination else f"Pusher execution {ids.get(names.PUSHER)}: nothing pushed")
    return ["<h2>Lineage (MLMD)</h2>", f"<p id='chain'>{' &rarr; '.join(map(_e, chain))}</p>",
            _table("lineage", ["component", "state", "execution", "input artifacts", "output artifacts",
                               "outputs first produced by"], rows),
            f"<p>MLMD run context {context.id} (<code>{_e(context.name)}</code>). The run's output artifacts:</p>",
            _table("artifacts", ["output", "artifact", "uri"],
                   [[k, v[0].id, v[0].uri] for k, v in sorted(outputs.items(), key=lambda kv: kv[1][0].id) if v])]
