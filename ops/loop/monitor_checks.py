"""What `monitor` compares: the served model, the data it was trained on (through MLMD), and the traffic.

The served version's provenance (assets.extra/transferline.json, written by the Pusher) names the Trainer's
model; MLMD knows which execution wrote it, in which run, and that run's Examples artifact: its train split
is the training data, eval + test the gate data (what the Evaluator scored). Nothing is guessed from paths.
Statistics and drift distances are TFDV's (generate_statistics_from_dataframe, drift comparators).
"""
from __future__ import annotations

import glob
import os

import numpy as np

from components import names
from components.errors import NotFound

LENGTH = "text_length"  # the feature TFDV compares for text length (characters)
CHECKS = {  # check -> (what it compares, the knob that bounds it)
    "text_length": ("Jensen-Shannon divergence of text length (characters), traffic vs training data",
                    "monitor.max_length_drift"),
    "label": ("L-infinity distance, predicted labels of the traffic vs labels of the gate data",
              "monitor.max_label_drift"),
    "oov_rate": ("out-of-vocabulary word rate, traffic minus gate data", "monitor.max_oov_increase"),
    "empty_share": ("share of empty texts in the traffic", "monitor.max_empty_share"),
    "long_share": ("share of texts longer than monitor.long_text_chars characters", "monitor.max_long_share"),
    "low_confidence": ("share of predictions below monitor.low_confidence, traffic minus gate data",
                       "monitor.max_low_confidence_increase"),
}


# ---------------------------------------------------------------------------------------- pure metrics
def oov_rate(texts, vocabulary: set) -> float:
    """Share of word tokens (scikit-learn's default word analyzer) not in the vocabulary."""
    analyzer = _analyzer()
    tokens = [t for text in texts for t in analyzer(text)]
    return sum(t not in vocabulary for t in tokens) / len(tokens) if tokens else 0.0


def vocabulary(texts) -> set:
    analyzer = _analyzer()
    return {t for text in texts for t in analyzer(text)}


def _analyzer():
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(lowercase=True).build_analyzer()


def drift_values(anomalies) -> dict[str, float]:
    """feature -> the drift distance TFDV measured (its drift_skew_info, present below the threshold too)."""
    return {"/".join(info.path.step): m.value for info in anomalies.drift_skew_info for m in info.drift_measurements}


def judge(values: dict[str, dict], monitor) -> dict[str, dict]:
    """Each check's {"value", "threshold", "moved"}; values: check -> {"value": float, ...more to show}."""
    bounds = {"text_length": monitor.max_length_drift, "label": monitor.max_label_drift,
              "oov_rate": monitor.max_oov_increase, "empty_share": monitor.max_empty_share,
              "long_share": monitor.max_long_share, "low_confidence": monitor.max_low_confidence_increase}
    return {check: {**values[check], "threshold": bounds[check], "moved": values[check]["value"] > bounds[check]}
            for check in CHECKS if check in values}


# ---------------------------------------------------------------------------------------- TFDV
def statistics(texts, labels):
    import pandas as pd
    import tensorflow_data_validation as tfdv

    frame = pd.DataFrame({LENGTH: np.array([len(t) for t in texts], dtype=np.int64), names.LABEL: list(labels)})
    return tfdv.generate_statistics_from_dataframe(frame)


def tfdv_distance(current, previous, feature: str) -> float:
    """TFDV's drift comparator on one feature: JSD for text_length, L-infinity for the label."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    schema.feature.add(name=LENGTH, type=schema_pb2.INT)
    schema.feature.add(name=names.LABEL, type=schema_pb2.BYTES)
    comparator = next(f for f in schema.feature if f.name == feature).drift_comparator
    if feature == LENGTH:
        comparator.jensen_shannon_divergence.threshold = 1.0
    else:
        comparator.infinity_norm.threshold = 1.0
    return drift_values(tfdv.validate_statistics(current, schema, previous_statistics=previous)).get(feature, 0.0)


# ---------------------------------------------------------------------------------------- the served model
def served_model(config) -> dict:
    """{"version", "path", "provenance"} of the version served now (the highest under the serving dir)."""
    from components.serving_dir import provenance, served_versions

    versions = served_versions(config.serving_dir)
    if not versions:
        raise NotFound(f"no model is served: no version under {config.serving_dir}; run `transferline run` first")
    path = os.path.join(config.serving_dir, str(versions[-1]))
    return {"version": versions[-1], "path": path, "provenance": provenance(path)}


def training_data(config, served: dict):
    """(model artifact, {split: (texts, labels)}) of the run that trained the served model, from MLMD."""
    from ml_metadata.proto import metadata_store_pb2

    from pipelines.mlmd_store import connect, run_outputs

    model_path = served["provenance"].get("model")
    if not model_path or not os.path.exists(config.metadata_path):
        raise NotFound(f"served version {served['version']} has no training provenance here (no "
                       f"{names.PROVENANCE} or no MLMD at {config.metadata_path}); monitor compares traffic with "
                       "the data the served model was trained on, so it needs the work dir of the run that pushed it")
    store = connect(config.metadata_path)
    artifacts = [a for uri in (model_path, os.path.dirname(model_path)) for a in store.get_artifacts_by_uri(uri)]
    events = store.get_events_by_artifact_ids([a.id for a in artifacts])
    writers = [e.execution_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    run_type = store.get_context_type("pipeline_run")
    runs = [c for x in writers for c in store.get_contexts_by_execution(x) if c.type_id == run_type.id]
    if not runs:
        raise NotFound(f"MLMD at {config.metadata_path} does not know the model of served version "
                       f"{served['version']} ({model_path})")
    _, outputs = run_outputs(store, runs[0])
    if not outputs.get(names.EXAMPLES):
        raise NotFound(f"the run {runs[0].name} that trained served version {served['version']} has no Examples")
    model = next(a for a in artifacts if a.id in {e.artifact_id for e in events if e.execution_id == writers[0]})
    return model, split_rows(outputs[names.EXAMPLES][0])


def split_rows(examples) -> dict[str, tuple[list[str], list[str]]]:
    """split -> (texts, labels) of an Examples artifact (ExampleGen's gzipped TFRecords of tf.Examples)."""
    import json

    import tensorflow as tf

    out = {}
    for split in json.loads(examples.properties["split_names"].string_value or "[]"):  # MLMD's own artifact
        files = glob.glob(os.path.join(examples.uri, f"Split-{split}", "*"))
        texts, labels = [], []
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            texts.append(b"".join(feature[names.TEXT].bytes_list.value[:1]).decode("utf-8", "replace"))
            labels.append(b"".join(feature[names.LABEL].bytes_list.value[:1]).decode("utf-8", "replace"))
        out[split] = (texts, labels)
    return out


def scores(model_path: str, texts: list[str], batch: int = 128) -> np.ndarray:
    """The served model's top score for each text (its serving_default signature)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the SentencePiece ops of the encoder)

    fn = tf.saved_model.load(model_path).signatures[names.SERVING_DEFAULT]
    out = [fn(**{names.TEXT: tf.constant(texts[i:i + batch])})[names.TOP_SCORE].numpy()
           for i in range(0, len(texts), batch)]
    return np.concatenate(out) if out else np.zeros(0)
