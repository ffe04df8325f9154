"""The Trainer's modes (wide_deep, fine_tune; head: test_trainer.py), run_fn called directly on the slice
run's transformed examples: each exports a model that serves raw text and tf.Examples and loads the way
TF Serving loads it (a TF1 session); fine_tune trains the encoder, serves it alone, drops a worse phase 2,
and warm-starts from a fine-tuned served model."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from trainer_runs import reachable_ops, train, transform

pytestmark = pytest.mark.slow

QUESTIONS = ["How far is Denver from Aspen ?", "Who wrote Hamlet ?", "What does NASA stand for ?"]
SMALL = dict(max_epochs=3, hidden_units=32, seed=7, fine_tune_max_epochs=2, fine_tune_patience=1)
TOKENIZE = "SentencepieceTokenizeOp"  # TF Text's op: one per encoder run on the text


@pytest.fixture(scope="module")
def models(slice_runs, encoder_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("modes")
    # The slice runs' config (auto, shipped thresholds) cannot choose wide_deep, so their Transform made no
    # n-grams: a Transform of a config that can (components/modes.py transform_features).
    wide = transform(slice_runs, tmp / "wide_transform", encoder_dir, wide_features=True, raw_text=False)
    out = {"wide_deep": train(slice_runs, tmp / "wide", encoder_dir, transformed=wide, mode="wide_deep", **SMALL),
           "fine_tune": train(slice_runs, tmp / "fine", encoder_dir, mode="fine_tune", **SMALL)}
    # Warm-started from the fine-tuned served model, at an absurd rate that wrecks the encoder: the warm
    # start must take the served encoder, and phase 2 must then be dropped (one run, two behaviours).
    out["absurd"] = train(slice_runs, tmp / "absurd", encoder_dir, base_model=out["fine_tune"].serving_model_dir,
                          mode="fine_tune", **{**SMALL, "fine_tune_learning_rate": 50.0, "fine_tune_max_epochs": 1})
    return out


def _record(fn_args, name):
    with open(os.path.join(fn_args.model_run_dir, name)) as f:
        return json.load(f)


def _examples(texts):
    return [tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[t.encode()]))})).SerializeToString()
        for t in texts]


def _served_encoder(model_dir, encoder_dir):
    """The encoder weights a served fine_tune model holds (read back by the warm start's own restore)."""
    import tf_keras

    import components.model as models

    fresh = models.build_fine_tune(models.build_model("head", 512, 6, 1, {**SMALL, "dropout": 0.0,
                                                                           "learning_rate": 1e-3,
                                                                           "fine_tune_learning_rate": 1e-4}),
                                   encoder_dir, {"fine_tune_learning_rate": 1e-4})
    before = [w.copy() for w in fresh.get_layer("encoder").get_weights()]
    models.restore_encoder(fresh, model_dir)
    tf_keras.backend.clear_session()
    return before, fresh.get_layer("encoder").get_weights()


@pytest.mark.parametrize("mode", ["wide_deep", "fine_tune"])
def test_each_mode_serves_text_and_examples_and_loads_in_a_tf1_session(models, mode):
    import tensorflow_text  # noqa: F401

    path = models[mode].serving_model_dir
    assert _record(models[mode], "training.json")["mode"] == mode
    loaded = tf.saved_model.load(path)
    by_text = loaded.signatures["serving_default"](text=tf.constant(QUESTIONS))
    by_example = loaded.signatures["serving_examples"](examples=tf.constant(_examples(QUESTIONS)))
    probs = by_text["probabilities"].numpy()
    assert probs.shape == (3, 6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(by_example["probabilities"].numpy(), probs, atol=1e-5)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        assert {"serving_default", "serving_examples", "transform_features"} <= set(meta.signature_def)
        sig = meta.signature_def["serving_default"]
        out = sess.run({k: v.name for k, v in sig.outputs.items()}, {sig.inputs["text"].name: QUESTIONS})
    np.testing.assert_allclose(out["probabilities"], probs, atol=1e-5)


def test_wide_deep_has_a_regularised_linear_path_over_the_ngram_vocabulary(models):
    import tensorflow_transform as tft

    path = models["wide_deep"].serving_model_dir
    vocab = tft.TFTransformOutput(models["wide_deep"].transform_graph_path).vocabulary_size_by_name("ngrams")
    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    order = json.load(open(os.path.join(path, "assets.extra", "model.json")))["layers_with_weights"]
    wide = reader.get_tensor(f"layer_with_weights-{order.index('wide')}/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    assert wide.shape == (vocab + 1, 6) and np.abs(wide).max() > 0  # trained from zeros


def test_wide_deep_on_a_transform_without_ngrams_says_why(slice_runs, encoder_dir, tmp_path):
    with pytest.raises(ValueError, match=r"no \['ngram_ids', 'ngram_weights'\].*another trainer.mode"):
        train(slice_runs, tmp_path, encoder_dir, mode="wide_deep", **SMALL)


def test_fine_tune_trains_the_encoder_and_records_both_phases(models, encoder_dir):
    record = _record(models["fine_tune"], "training.json")
    assert {"accuracy", "loss"} <= set(record["phase1"]) and {"accuracy", "loss"} <= set(record["phase2"])
    assert record["phase_kept"] == 2, record  # on this slice phase 2 lowers eval loss
    before, served = _served_encoder(models["fine_tune"].serving_model_dir, encoder_dir)
    changed = [not np.array_equal(a, b) for a, b in zip(before, served)]
    assert len(before) > 10 and sum(changed) >= len(changed) // 2, changed


def test_fine_tune_serves_one_encoder_not_the_transform_graphs_too(models):
    import tensorflow_text  # noqa: F401

    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], models["fine_tune"].serving_model_dir)
        graph_def = sess.graph.as_graph_def()
    for signature in ("serving_default", "serving_examples"):
        outputs = [t.name for t in meta.signature_def[signature].outputs.values()]
        assert reachable_ops(graph_def, outputs)[TOKENIZE] == 1, signature
    # Negative control: the counter does see the transform graph's (frozen) encoder where it runs.
    tfma = [t.name for t in meta.signature_def["transform_features"].outputs.values()]
    assert reachable_ops(graph_def, tfma)[TOKENIZE] == 1
    everything = [n.name for n in graph_def.node]
    assert reachable_ops(graph_def, everything)[TOKENIZE] >= 2


def test_phase2_is_dropped_when_worse_on_eval(models, encoder_dir):
    record = _record(models["absurd"], "training.json")
    assert record["phase_kept"] == 1 and "dropped" in record["decision"], record
    assert record["phase2"]["accuracy"] < record["phase1"]["accuracy"] or record["phase2"]["loss"] != record[
        "phase2"]["loss"]
    before, served = _served_encoder(models["absurd"].serving_model_dir, encoder_dir)
    # Phase 1's model is served: the head on the handle's encoder (the one its embeddings came from).
    assert all(np.array_equal(a, b) for a, b in zip(before, served))


def test_warm_start_from_a_fine_tuned_served_model(models):
    started = _record(models["absurd"], "warm_start.json")
    assert started["warm_start"] and started["encoder"] == "encoder: from the served fine-tuned encoder"
    from components.model import served_head

    served, _ = served_head(models["fine_tune"].serving_model_dir)
    with open(os.path.join(models["absurd"].model_run_dir, "initial_head.npz"), "rb") as f:
        initial = np.load(f)
        np.testing.assert_array_equal(initial["arr_0"], served[0])  # hidden kernel: class order free
