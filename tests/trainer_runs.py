"""Helpers for tests that call components.trainer.run_fn directly on a pipeline run's transformed examples."""
import collections
import dataclasses
import json


def _tfx_artifact(store, mlmd_artifact):
    from tfx.types import artifact_utils

    artifact_type = store.get_artifact_types_by_id([mlmd_artifact.type_id])[0]
    return artifact_utils.deserialize_artifact(artifact_type, mlmd_artifact)


def _first_run_outputs(runs):
    from pipelines.mlmd_store import connect, run_contexts, run_outputs

    store = connect(runs.metadata_path)
    _, outputs = run_outputs(store, run_contexts(store, "transferline")[0])
    return {k: _tfx_artifact(store, v[0]) for k, v in outputs.items() if len(v) == 1}


def transform(runs, out_dir, encoder_dir, **features):
    """TFX's Transform executor on the first run's examples, making `features` (components/modes.py
    transform_features keys, e.g. wide_features=True): the transform outputs of a config whose trainer.mode
    the runs did not use. Returns {"transformed_examples": ..., "transform_graph": ...} (TFX artifacts)."""
    from tfx import v1 as tfx
    from tfx.components.transform.executor import Executor
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from pipelines.config import TransformConfig
    from pipelines.pipeline import PREPROCESSING_FN

    outputs = _first_run_outputs(runs)
    graph = standard_artifacts.TransformGraph()
    graph.uri = str(out_dir / "transform_graph")
    examples = standard_artifacts.Examples()
    examples.uri = str(out_dir / "transformed_examples")
    labels = sorted(line.strip() for line in open(
        f"{outputs['Transform.transform_graph'].uri}/transform_fn/assets/label") if line.strip())
    config = {"encoder_handle": encoder_dir, "label_names": labels, "ngram_max": TransformConfig.ngram_max,
              "ngram_vocab_size": TransformConfig.ngram_vocab_size, **features}
    Executor().Do(
        {"examples": [outputs["CsvExampleGen.examples"]], "schema": [outputs["ImportSchemaGen.schema"]]},
        {"transform_graph": [graph], "transformed_examples": [examples]},
        {"preprocessing_fn": PREPROCESSING_FN, "custom_config": json.dumps(config), "force_tf_compat_v1": 0,
         "disable_statistics": 1, "splits_config": proto_utils.proto_to_json(
             tfx.proto.SplitsConfig(analyze=["train"], transform=["train", "eval"]))})
    return {"transformed_examples": examples, "transform_graph": graph}


def train(runs, out_dir, encoder_dir, base_model=None, transformed=None, **knobs):
    """run_fn on the first run's Transform outputs in `runs` (a conftest.PipelineRuns), or on `transformed`
    (transform() above); returns its fn_args."""
    from tfx import v1 as tfx
    from tfx.components.trainer import fn_args_utils
    from tfx.utils import proto_utils

    from components.trainer import ENCODER_HANDLE, TRAINER_CONFIG, run_fn
    from pipelines.config import TrainerConfig

    if transformed is None:
        outputs = _first_run_outputs(runs)
        transformed = {k: outputs[f"Transform.{k}"] for k in ("transformed_examples", "transform_graph")}
    input_dict = {"examples": [transformed["transformed_examples"]],
                  "transform_graph": [transformed["transform_graph"]]}
    config = {TRAINER_CONFIG: dataclasses.asdict(TrainerConfig(**knobs)), ENCODER_HANDLE: encoder_dir}
    exec_properties = {
        "train_args": proto_utils.proto_to_json(tfx.proto.TrainArgs(splits=["train"])),
        "eval_args": proto_utils.proto_to_json(tfx.proto.EvalArgs(splits=["eval"])),
        "custom_config": json.dumps(config)}
    fn_args = fn_args_utils.get_common_fn_args(input_dict, exec_properties, str(out_dir / "work"))
    fn_args.serving_model_dir = str(out_dir / "serving_model")
    fn_args.model_run_dir = str(out_dir / "model_run")
    fn_args.custom_config = config
    fn_args.base_model = base_model
    run_fn(fn_args)
    return fn_args


def reachable_ops(graph_def, tensor_names):
    """Op types (with counts) that computing `tensor_names` runs: the graph's nodes they depend on, and
    the bodies of every function those nodes call, recursively (how a TF1 session executes a signature)."""
    functions = {f.signature.name: f for f in graph_def.library.function}
    nodes = {n.name: n for n in graph_def.node}
    counts, seen_nodes, seen_functions = collections.Counter(), set(), set()

    def called(node):
        for value in node.attr.values():
            if value.HasField("func"):
                yield value.func.name
            for f in value.list.func:
                yield f.name

    def visit_function(name):
        if name in seen_functions or name not in functions:
            return
        seen_functions.add(name)
        for node in functions[name].node_def:  # a function body runs whole once called
            counts[node.op] += 1
            for f in called(node):
                visit_function(f)

    stack = [t.split(":")[0].lstrip("^") for t in tensor_names]
    while stack:
        name = stack.pop()
        if name in seen_nodes or name not in nodes:
            continue
        seen_nodes.add(name)
        node = nodes[name]
        counts[node.op] += 1
        for f in called(node):
            visit_function(f)
        stack.extend(i.split(":")[0].lstrip("^") for i in node.input)
    return counts
