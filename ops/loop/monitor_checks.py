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
    "off_topic": ("share of requests less similar to the training texts (encoder) than monitor.topic_quantile "
                  "of held-out training texts, minus that quantile",
                  "monitor.max_off_topic_increase"),
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
              "long_share": monitor.max_long_share, "low_confidence": monitor.max_low_confidence_increase,
              "off_topic": monitor.max_off_topic_increase}
    return {check: {**values[check], "threshold": bounds[check], "moved": values[check]["value"] > bounds[check]}
            for check in CHECKS if check in values}


def nearest_similarity(queries: np.ndarray, bank: np.ndarray, neighbours: int, leave_one_out: bool = False,
                       batch: int = 512) -> np.ndarray:
    """Each query row's mean cosine similarity to its `neighbours` most similar rows of bank (rows need not be
    normalized). leave_one_out: queries *are* bank, and a row is not its own neighbour."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    b = bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)
    k = min(neighbours, len(b) - (1 if leave_one_out else 0))
    out = np.empty(len(q))
    for i in range(0, len(q), batch):
        sims = q[i:i + batch] @ b.T
        if leave_one_out:
            sims[np.arange(len(sims)), np.arange(i, i + len(sims))] = -np.inf
        out[i:i + batch] = np.mean(-np.partition(-sims, k - 1, axis=1)[:, :k], axis=1)
    return out


def topic_shift(training: np.ndarray, traffic: np.ndarray, quantile: float, neighbours: int) -> dict:
    """The off-topic check's figures from encoder embeddings of distinct training texts and of the requests.

    Each training text, held out in turn, gets its similarity to the rest (mean cosine similarity to its
    `neighbours` nearest); the `quantile` of those is the threshold, so by construction a share `quantile` of
    traffic like the training data falls below it. Returns {"value": share of requests below the threshold
    minus quantile, "share", "expected" (= quantile), "similarity_threshold", "median_similarity" (traffic)
    and "median_training_similarity"} and, under "similarities", each request's similarity (numpy)."""
    if len(training) < 2 or not len(traffic):
        raise ValueError(f"topic_shift needs at least 2 training and 1 traffic embeddings, got {len(training)} "
                         f"and {len(traffic)}")
    held_out = nearest_similarity(training, training, neighbours, leave_one_out=True)
    threshold = float(np.quantile(held_out, quantile))
    sims = nearest_similarity(traffic, training, neighbours)
    share = float(np.mean(sims < threshold))
    return {"value": share - quantile, "share": share, "expected": quantile, "similarity_threshold": threshold,
            "median_similarity": float(np.median(sims)), "median_training_similarity": float(np.median(held_out)),
            "similarities": sims}


def sample(texts, cap: int, seed: int = 0) -> list:
    """At most cap of texts, a seeded random sample in their order (all of them when there are few)."""
    texts = list(texts)
    if len(texts) <= cap:
        return texts
    keep = np.sort(np.random.default_rng(seed).choice(len(texts), cap, replace=False))
    return [texts[i] for i in keep]


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
    """{"version", "path", "provenance"} of the version served now (the stable one: components/rollout.py)."""
    from components.rollout import read as rollout_state
    from components.serving_dir import provenance

    stable = rollout_state(config.serving_dir).stable
    if stable is None:
        raise NotFound(f"no model is served: no version under {config.serving_dir}; run `transferline run` first")
    path = os.path.join(config.serving_dir, str(stable))
    return {"version": stable, "path": path, "provenance": provenance(path)}


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
    examples = outputs[names.EXAMPLES][0]
    splits = split_rows(examples)
    empty = [s for s in (names.TRAIN_SPLIT, *names.gate_splits()) if s in splits and not splits[s][0]]
    if empty or names.TRAIN_SPLIT not in splits:  # never compare traffic with an empty baseline
        raise NotFound(f"the training data of served version {served['version']} cannot be read: MLMD's Examples "
                       f"artifact {examples.uri} has no rows in split(s) {', '.join(empty or [names.TRAIN_SPLIT])} "
                       "(the work dir's pipeline root moved or was pruned?); monitor compares traffic with the "
                       "data the served model was trained on")
    return model, splits


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


def topic_figures(config, train_texts: list[str], texts: list[str], log=lambda m: None, examples: int = 10):
    """The off_topic check's figures (topic_shift) on encoder embeddings (encoder.handle) of at most
    monitor.topic_sample distinct training texts and requests; also the least similar requests and every
    embedded request's similarity, for the page. None when there are fewer than 2 distinct training texts."""
    from components.encoder import embed_texts

    m = config.monitor
    reference = sample(sorted(set(train_texts)), m.topic_sample)
    if len(reference) < 2:
        return None
    requests = sample(texts, m.topic_sample)
    vectors = embed_texts(config.encoder.handle, config.encoder.cache_dir, reference + requests, log=log)
    figures = topic_shift(vectors[:len(reference)], vectors[len(reference):], m.topic_quantile, m.topic_neighbours)
    sims = figures.pop("similarities")
    order = np.argsort(sims, kind="stable")[:examples]
    figures.update({"training_embedded": len(reference), "requests_embedded": len(requests),
                    "neighbours": min(m.topic_neighbours, len(reference) - 1),
                    "least_similar": [{"text": requests[i], "similarity": float(sims[i])} for i in order]})
    return figures, sims


def scores(model_path: str, texts: list[str], batch: int = 128) -> np.ndarray:
    """The served model's top score for each text (its serving_default signature)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the SentencePiece ops of the encoder)

    fn = tf.saved_model.load(model_path).signatures[names.SERVING_DEFAULT]
    out = [fn(**{names.TEXT: tf.constant(texts[i:i + batch])})[names.TOP_SCORE].numpy()
           for i in range(0, len(texts), batch)]
    return np.concatenate(out) if out else np.zeros(0)
