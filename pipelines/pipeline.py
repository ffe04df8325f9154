"""create_pipeline: the one definition of transferline's TFX pipeline, for every runner.

    CsvExampleGen (chosen spans → train/eval, held-out test set → test) → StatisticsGen → ImportSchemaGen
      → ExampleValidator → DataGate → Transform (encoder)
    ServedModel (what TF Serving serves now) → Trainer (Keras head, warm-started from it)
      → ServedModelBaseline → Evaluator (newest span's eval + test) → PushGate → Pusher (atomic)
    Trainer → ServabilityCheck (loads it as TF Serving does, writes its warmup file) → Pusher (pushes the
      model the servability gate blessed, with its warmup file)
    References (majority class, TF-IDF + LR on the same splits) → PushGate

No Resolver nodes: open-source Kubeflow cannot run them. The spans are chosen by the ExampleGen's own
executor at run time (components/spans.py); the warm start and the Evaluator's baseline come from the
push destination (components/served_model.py), and PushGate (components/push_gate.py) guards the push.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil

import tensorflow_model_analysis as tfma
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.example_gen import utils as example_gen_utils
from tfx.dsl.components.base import executor_spec
from tfx.utils import io_utils

from components import model as model_module
from components import metrics, modes, names, spans
from components import train_data
from components import trainer as trainer_module
from components import transform as transform_module
from components.data_gate import DataGate
from components.push_gate import PushGate
from components.references import References
from components.pusher import MAX_TEXT_CHARS, MODEL_NAME, ROLLOUT_MODE, AtomicPusherExecutor
from components.served_model import ServedModel, ServedModelBaseline
from components.servability import ServabilityCheck
from components.span_folders import span_file_glob
from pipelines.config import Config

PREPROCESSING_FN = "components.transform.preprocessing_fn"
RUN_FN = "components.trainer.run_fn"


def code_fingerprint(*modules) -> str:
    """Hash of the given modules' source files.

    preprocessing_fn and run_fn are passed as dotted paths, which TFX caches by name only, so an
    edited trainer.py would otherwise reuse a stale cached model. Putting this hash in a
    component's custom_config re-runs exactly the steps whose code changed (module_file instead
    would hash every sibling file and re-run everything on any edit).
    """
    digest = hashlib.sha256()
    for module in modules:
        with open(module.__file__, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def label_names(schema_file: str) -> list[str]:
    """The class names: the label's string domain in the curated schema."""
    schema = io_utils.parse_pbtxt_file(schema_file, schema_pb2.Schema())
    feature = next(f for f in schema.feature if f.name == names.LABEL)
    domain = next(d for d in schema.string_domain if d.name == (feature.domain or names.LABEL))
    return list(domain.value)


def staged_schema_name(schema_file: str) -> str:
    """``schema-<sha256[:12]>.pbtxt``: the name the schema is staged under, local or in the image.

    ImportSchemaGen is cached on the schema's *path* (locally by TFX, on Kubeflow by KFP), so an edited
    schema.pbtxt would be ignored by a cached run; a path that changes with the content re-imports
    exactly when the contract changes.
    """
    with open(schema_file, "rb") as f:
        return f"schema-{hashlib.sha256(f.read()).hexdigest()[:12]}.pbtxt"


def stage_schema_file(schema_file: str, dest_dir: str) -> str:
    """Copies the schema to ``dest_dir/<staged_schema_name>`` (atomically, once) and returns that path."""
    staged = os.path.join(dest_dir, staged_schema_name(schema_file))
    if not os.path.exists(staged):
        os.makedirs(dest_dir, exist_ok=True)
        shutil.copyfile(schema_file, staged + ".tmp")
        os.replace(staged + ".tmp", staged)
    return staged


def _test_set_fingerprint(test_dir: str) -> str:
    """TFX's own input fingerprint of the test set's files, where they can be listed from here (locally);
    '' for a remote location (the compiled Kubeflow pipeline never caches the ExampleGen)."""
    if not test_dir or not os.path.isdir(test_dir):
        return ""
    fingerprint, _, _ = example_gen_utils.calculate_splits_fingerprint_span_and_version(
        test_dir, [tfx.proto.Input.Split(name=names.TEST_SPLIT, pattern="*.csv")])
    return fingerprint


def eval_config(config: Config, n_classes: int) -> tfma.EvalConfig:
    """TFMA: accuracy with an absolute bound and a no-regression bound vs the baseline, per-class
    precision/recall/F1, a confusion matrix, and the example count.

    (TFMA 0.47's macro average fails on top_k sub-keys, so the summary averages the per-class F1.)"""
    accuracy_threshold = tfma.MetricThreshold(
        # The absolute floor; gate.min_accuracy 0 = off (the first model answers to the references instead).
        value_threshold=(tfma.GenericValueThreshold(lower_bound={"value": config.gate.min_accuracy})
                         if config.gate.min_accuracy else None),
        # Against the served model; on the first run the baseline is the candidate itself (diff 0).
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -config.gate.max_accuracy_drop - 1e-10}))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            # Named, so TFMA loads each model once through its signatures. Left unset, TFMA's get_model_type
            # (tensorflow_model_analysis/utils/model_util.py, 0.47) first revives the model as a whole Keras
            # model (encoder included) only to learn its type, then loads it again as Keras for the evaluation.
            model_type=tfma.TF_GENERIC,
            signature_name=names.SERVING_EXAMPLES,
            preprocessing_function_names=[names.TRANSFORM_FEATURES],
            label_key=names.LABEL_ID,
            prediction_key=names.PROBABILITIES)],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(metrics=[
                tfma.MetricConfig(class_name="ExampleCount"),
                # Keras' metric, run without autograph (components/metrics.py): same name, values and keys.
                tfma.MetricConfig(class_name="SparseCategoricalAccuracy", module=metrics.__name__,
                                  threshold=accuracy_threshold),
                tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
            ]),
            tfma.MetricsSpec(
                binarize=tfma.BinarizationOptions(class_ids={"values": list(range(n_classes))}),
                # top_k 1: a class counts as predicted when it is the argmax, not when its probability > 0.5.
                metrics=[tfma.MetricConfig(class_name=name, config='"top_k": 1')
                         for name in ("Precision", "Recall", "F1Score")]),
        ])


def create_pipeline(
        config: Config,
        encoder_handle: str,
        *,
        metadata_connection_config=None,
        beam_pipeline_args: list[str] | None = None,
        enable_cache: bool = True,
        baseline_refresh: int = 0,
        schema_uri: str | None = None,
) -> tfx.dsl.Pipeline:
    """Builds the pipeline.

    Args:
      config: every knob (pipelines/config.py).
      encoder_handle: a *resolved* encoder handle that every Transform worker can load: a SavedModel
        directory or a TF-Hub URL (resolve 'embedded' with components.encoder.resolve_handle first).
      metadata_connection_config: MLMD connection (local SQLite); None on Kubeflow, which brings its own.
      beam_pipeline_args: for Beam-powered components (DirectRunner locally, Flink/Spark/Dataflow at scale).
      enable_cache: reuse a component's earlier outputs when its inputs and parameters are unchanged.
      baseline_refresh: 0, or the served version to take a fresh baseline copy of when a cached one
        is stale (the local runner does this by itself; see components/served_model.py).
      schema_uri: where ImportSchemaGen reads the schema when it runs, if not config.paths.schema_file
        (on Kubeflow: the copy baked into the image). config.paths.schema_file is still read here,
        for the class names.
    """
    test_dir = config.paths.test_data_dir
    class_names = label_names(config.paths.schema_file)
    example_gen = FileBasedExampleGen(
        input_base=config.paths.data_dir,
        # Every span's files: what TFX's driver fingerprints for the local cache key and DataGate checks;
        # the executor then reads only the chosen spans.
        input_config=tfx.proto.Input(splits=[
            tfx.proto.Input.Split(name=names.TRAIN_SPLIT, pattern=config.data.file_pattern)]),
        output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
            tfx.proto.SplitConfig.Split(name=names.TRAIN_SPLIT, hash_buckets=config.data.train_buckets),
            tfx.proto.SplitConfig.Split(name=names.EVAL_SPLIT, hash_buckets=config.data.eval_buckets)])),
        custom_config=spans.custom_config(config.data.train_spans, span_file_glob(config.data.file_pattern),
                                          test_dir, _test_set_fingerprint(test_dir), config.data.min_eval_rows),
        custom_executor_spec=spans.example_gen_executor(),
    ).with_id(names.EXAMPLE_GEN)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"]).with_id(
        names.STATISTICS_GEN)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_uri or config.paths.schema_file).with_id(
        names.SCHEMA_GEN)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    ).with_id(names.EXAMPLE_VALIDATOR)

    # Bad data stops here, before anything is trained (DataRejected; see components/data_gate.py).
    data_gate = DataGate(
        statistics=statistics_gen.outputs["statistics"],
        anomalies=example_validator.outputs["anomalies"],
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        data_dir=config.paths.data_dir,
        file_pattern=config.data.file_pattern,
        test_data_dir=test_dir,
        max_text_chars=config.contract.max_text_chars,
        max_duplicate_fraction=config.contract.max_duplicate_fraction,
        max_label_drift=config.contract.max_label_drift,
        max_length_drift=config.contract.max_length_drift,
        max_leakage_fraction=config.contract.max_leakage_fraction,
        train_spans=config.data.train_spans).with_id(names.DATA_GATE)

    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        # The Evaluator reads the raw test split through the model's own transform; no need to embed it here.
        splits_config=tfx.proto.SplitsConfig(analyze=[names.TRAIN_SPLIT], transform=[names.TRAIN_SPLIT, names.EVAL_SPLIT]),
        # No TFDV passes inside Transform: StatisticsGen already has the raw data's statistics, and
        # statistics of 512-float embeddings gate nothing (this was a third of Transform's CPU time).
        disable_statistics=True,
        custom_config={"encoder_handle": encoder_handle, "label_names": class_names,
                       "ngram_max": config.transform.ngram_max,
                       "ngram_vocab_size": config.transform.ngram_vocab_size,
                       # The n-grams and the raw text only when a trainer.mode that reads them can run.
                       **modes.transform_features(config.trainer.mode, dataclasses.asdict(config.trainer)),
                       "code_fingerprint": code_fingerprint(transform_module, names)}).with_id(names.TRANSFORM)
    transform.add_upstream_node(data_gate)
    served = ServedModel(examples=example_gen.outputs["examples"], serving_dir=config.serving_dir).with_id(
        names.SERVED_MODEL)
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        base_model=served.outputs["model"],  # warm start (components/trainer.py)
        train_args=tfx.proto.TrainArgs(splits=[names.TRAIN_SPLIT]),
        eval_args=tfx.proto.EvalArgs(splits=[names.EVAL_SPLIT]),
        custom_config={trainer_module.TRAINER_CONFIG: dataclasses.asdict(config.trainer),
                       trainer_module.ENCODER_HANDLE: encoder_handle,
                       trainer_module.MIN_EVAL_ROWS: config.data.min_eval_rows,
                       "code_fingerprint": code_fingerprint(trainer_module, model_module, modes, names, train_data)}).with_id(names.TRAINER)
    baseline = ServedModelBaseline(candidate=trainer.outputs["model"], served=served.outputs["model"],
                                   serving_dir=config.serving_dir, refresh=baseline_refresh).with_id(names.BASELINE)
    # The reference models a first model must beat, measured on the gate data (names.gate_splits()).
    references = References(examples=example_gen.outputs["examples"], seed=config.trainer.seed).with_id(
        names.REFERENCES)
    references.add_upstream_node(data_gate)  # it trains too: only on data the contract let through
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        # The newest span's eval split, plus the fixed held-out test set where there is one.
        example_splits=names.gate_splits(bool(test_dir)),
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["baseline"],
        eval_config=eval_config(config, len(class_names))).with_id(names.EVALUATOR)
    push_gate = PushGate(model=trainer.outputs["model"], blessing=evaluator.outputs["blessing"],
                         baseline=baseline.outputs["baseline"], examples=example_gen.outputs["examples"],
                         evaluation=evaluator.outputs["evaluation"], references=references.outputs["references"],
                         serving_dir=config.serving_dir, beat_references=config.gate.beat_references,
                         reference_margin=config.gate.reference_margin,
                         # What besides the data decides the model: a retrain with neither changed pushes nothing.
                         config_fingerprint=hashlib.sha256(json.dumps(
                             [trainer.exec_properties["custom_config"], transform.exec_properties["custom_config"],
                              os.path.basename(schema_uri or config.paths.schema_file), config.data.train_spans],
                             sort_keys=True, default=str).encode()).hexdigest()[:16]).with_id(names.PUSH_GATE)
    # Whether TF Serving can load it and answer its warmup requests; the blessing carries the model with its
    # warmup file, and that is what the Pusher pushes (TFX's InfraValidator contract, make_warmup).
    # TFX's own InfraValidator cannot run here (it needs Docker or, on Kubeflow, a KFP v1 pod; TFX 1.16's
    # KubeflowV2DagRunner refuses to compile it): ServabilityCheck keeps its contract (components/servability.py).
    infra_validator = ServabilityCheck(model=trainer.outputs["model"], examples=example_gen.outputs["examples"],
                                       model_name=config.serve.model_name).with_id(names.INFRA_VALIDATOR)
    # The Pusher itself refuses a model either gate did not bless; a version appears whole or not at all.
    pusher = tfx.components.Pusher(
        model_blessing=push_gate.outputs["gate"],
        infra_blessing=infra_validator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_dir)),
        # The model card's words; how the pushed version reaches traffic (the serving dir's model config).
        custom_config={MAX_TEXT_CHARS: config.contract.max_text_chars, ROLLOUT_MODE: config.rollout.mode,
                       MODEL_NAME: config.serve.model_name},
        custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPusherExecutor)).with_id(names.PUSHER)
    components = [example_gen, statistics_gen, schema_gen, example_validator, data_gate, transform, served,
                  trainer, baseline, references, evaluator, infra_validator, push_gate, pusher]

    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or [])
