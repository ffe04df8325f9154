"""components.transform.preprocessing_fn, on real rows, with the checked-in schema."""
import collections
import re
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, TRAIN_CSV, read_rows

pytestmark = pytest.mark.slow  # loads TF models, compiles or runs pipelines

NAMES = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
VOCAB = 50  # n-gram vocabulary cap: far fewer than the slice's distinct n-grams


def _transform(tmp, encoder_dir, **features):
    import tensorflow_transform.beam as tft_beam
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import dataset_metadata
    from tfx.utils import io_utils

    from components.transform import preprocessing_fn

    schema = io_utils.parse_pbtxt_file(os.path.join(REPO, "pipelines", "schema", "schema.pbtxt"),
                                       schema_pb2.Schema())
    rows = [r for r in read_rows(TRAIN_CSV)[:80] if r["label"] != "ABBR"]  # a span without a rare class
    with tft_beam.Context(temp_dir=str(tmp / "tmp"), force_tf_compat_v1=False):
        (data, _), transform_fn = (
            [{"text": [r["text"]], "label": [r["label"]]} for r in rows],
            dataset_metadata.DatasetMetadata(schema),
        ) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, {"encoder_handle": encoder_dir, "label_names": NAMES,
                                                     "ngram_max": 2, "ngram_vocab_size": VOCAB,
                                                     **features}),
            output_record_batches=False)
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp / "transform_fn"))
    return rows, data, str(tmp / "transform_fn")


@pytest.fixture(scope="module")
def transformed(tmp_path_factory, encoder_dir):
    """Every feature (the default without the flags: a wide_deep and fine_tune config's Transform)."""
    return _transform(tmp_path_factory.mktemp("tft"), encoder_dir)


def test_a_head_only_transform_makes_no_ngrams_and_no_raw_text(tmp_path, encoder_dir, transformed):
    """trainer.mode=head: no n-gram vocabulary (its two analysis passes) and no text written per row."""
    import tensorflow_transform as tft

    from components.modes import transform_features

    rows, data, transform_dir = _transform(tmp_path, encoder_dir, **transform_features("head", {}))
    output = tft.TFTransformOutput(transform_dir)
    assert set(output.transformed_feature_spec()) == {"embedding", "label_id"}
    assert set(data[0]) == {"embedding", "label_id"} and len(data) == len(rows)
    assert not os.path.exists(os.path.join(transform_dir, "transform_fn", "assets", "ngrams"))
    # The same rows, the same embeddings and labels as the transform with every feature.
    np.testing.assert_allclose(np.stack([d["embedding"] for d in data]),
                               np.stack([d["embedding"] for d in transformed[1]]), atol=1e-6)
    assert [int(d["label_id"]) for d in data] == [int(d["label_id"]) for d in transformed[1]]
    wide = tft.TFTransformOutput(transformed[2])
    assert {"ngram_ids", "ngram_weights", "raw_text"} <= set(wide.transformed_feature_spec())  # control
    out = output.transform_features_layer()({"text": tf.constant([["Where is Lake Titicaca ?"]])})
    assert set(out) == {"embedding"}  # serving: the embedding alone


def test_the_pipelines_transform_makes_the_features_its_config_can_train_on(slice_runs):
    """The slice runs' config (auto, shipped thresholds: fine_tune reachable, wide_deep not) through the real
    pipeline: Transform wrote the raw text and no n-grams."""
    import tensorflow_transform as tft

    from pipelines.mlmd_store import connect, run_contexts, run_outputs

    store = connect(slice_runs.metadata_path)
    _, outputs = run_outputs(store, run_contexts(store, "transferline")[0])
    spec = tft.TFTransformOutput(outputs["Transform.transform_graph"][0].uri).transformed_feature_spec()
    assert set(spec) == {"embedding", "label_id", "raw_text"}


def test_embeddings_equal_the_direct_encoder(transformed, hub_encoder):
    rows, data, _ = transformed
    embeddings = np.stack([d["embedding"] for d in data])
    assert embeddings.shape == (len(rows), 512)
    direct = hub_encoder(tf.constant([r["text"] for r in rows])).numpy()
    assert np.abs(embeddings - direct).max() <= 1e-5


def test_labels_map_to_a_frequency_ordered_vocabulary_of_every_class(transformed):
    import tensorflow_transform as tft

    rows, data, transform_dir = transformed
    vocab = [v.decode() for v in tft.TFTransformOutput(transform_dir).vocabulary_by_name("label")]
    counts = collections.Counter(r["label"] for r in rows)
    assert "ABBR" not in counts and sorted(vocab) == NAMES  # the schema's classes, seen or not
    assert [counts[v] for v in vocab] == sorted((counts[v] for v in vocab), reverse=True)
    assert [vocab[int(d["label_id"])] for d in data] == [r["label"] for r in rows]


def test_serving_graph_needs_no_label(transformed, hub_encoder):
    """At serving time only text arrives: the exported graph embeds it and drops label_id."""
    import tensorflow_text  # noqa: F401
    import tensorflow_transform as tft

    _, _, transform_dir = transformed
    layer = tft.TFTransformOutput(transform_dir).transform_features_layer()
    out = layer({"text": tf.constant([["Where is Lake Titicaca ?"]])})
    assert set(out) == {"embedding", "ngram_ids", "ngram_weights", "raw_text"}
    np.testing.assert_allclose(out["embedding"].numpy(),
                               hub_encoder(tf.constant(["Where is Lake Titicaca ?"])).numpy(), atol=1e-5)


def test_wide_features_are_tfidf_over_a_capped_ngram_vocabulary(transformed):
    """Lower-cased word 1-2-grams, the VOCAB most frequent kept (one OOV bucket for the rest), TF-IDF weights."""
    import tensorflow_transform as tft

    rows, data, transform_dir = transformed
    vocab = [v.decode() for v in tft.TFTransformOutput(transform_dir).vocabulary_by_name("ngrams")]
    assert len(vocab) == VOCAB and "what" in vocab and "what is" in vocab and "?" in vocab
    assert all(v == v.lower() for v in vocab)
    for row, d in zip(rows, data):
        ids, weights = list(d["ngram_ids"]), list(d["ngram_weights"])
        assert len(ids) == len(set(ids)) == len(weights) > 0 and min(weights) > 0
        assert all(0 <= i <= VOCAB for i in ids)  # VOCAB: the out-of-vocabulary bucket
        assert d["raw_text"].decode() == row["text"]
        grams = {vocab[i] for i in ids if i < VOCAB}
        words = re.sub(r"([^\w\s'])", r" \1 ", row["text"].lower()).split()  # punctuation is a token
        assert grams <= set(words) | {" ".join(p) for p in zip(words, words[1:])}
    # IDF: a rarer n-gram weighs more than "?" (in nearly every question) at the same count in a question.
    q = vocab.index("?")
    d = next(d for d in data if q in list(d["ngram_ids"]))
    ids, weights = list(d["ngram_ids"]), list(d["ngram_weights"])
    assert weights[ids.index(q)] == min(weights)
