"""components.trainer.run_fn (mode head) on the slice run's transformed examples, called directly.

The other modes: test_trainer_modes.py."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(slice_runs, encoder_dir, tmp_path_factory):
    from trainer_runs import train

    return train(slice_runs, tmp_path_factory.mktemp("trainer"), encoder_dir, mode="head", max_epochs=3,
                 hidden_units=32, seed=7)


def test_run_fn_exports_the_serving_signatures(trained):
    import tensorflow_text  # noqa: F401

    model = tf.saved_model.load(trained.serving_model_dir)
    assert {"serving_default", "serving_examples", "transform_features"} <= set(model.signatures)
    out = model.signatures["serving_default"](text=tf.constant(["Who is the president of Peru ?", "Why ?"]))
    assert out["probabilities"].shape == (2, 6) and out["classes"].shape == (2, 6)
    assert out["label"].shape == (2,) and out["score"].shape == (2,)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-5)
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:  # as TF Serving loads it
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], trained.serving_model_dir)
        sig = meta.signature_def["serving_examples"]
        assert sig.method_name == "tensorflow/serving/predict"
    with open(os.path.join(trained.model_run_dir, "training.json")) as f:
        record = json.load(f)
    assert record["mode"] == "head" and "phase2" not in record and 0 <= record["phase1"]["accuracy"] <= 1
    # Phase 1 parsed the embedding and the label alone (the slice's Transform also wrote the raw text), and
    # cached them in memory; the slice is smaller than trainer.eval_every_examples: an epoch is a whole pass.
    assert record["input"] == {"cache": "memory", "bytes_per_row": 512 * 4 + 8,
                               "examples_per_epoch": record["n_train"]}
    assert record["phase1"]["steps_per_epoch"] == -(-record["n_train"] // 64)


def test_run_fn_head_uses_the_hyperparameters_and_logs_to_tensorboard(trained):
    import tf_keras

    head = tf_keras.models.load_model(trained.serving_model_dir)
    assert head.get_layer("hidden").units == 32  # from custom_config
    assert head.input_shape == {"embedding": (None, 512)} and head.output_shape == (None, 6)
    logs = [f for _, _, files in os.walk(trained.model_run_dir) for f in files]
    assert any(f.startswith("events.out.tfevents") for f in logs)


def test_transform_features_signature_gives_label_ids(trained):
    import tensorflow_text  # noqa: F401

    model = tf.saved_model.load(trained.serving_model_dir)
    example = tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"Who wrote Hamlet ?"])),
        "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"HUM"]))}))
    out = model.signatures["transform_features"](examples=tf.constant([example.SerializeToString()]))
    assert out["embedding"].shape == (1, 512)
    classes = [c.decode() for c in model.signatures["serving_default"](
        text=tf.constant(["x"]))["classes"].numpy()[0]]
    assert classes[int(out["label_id"].numpy()[0])] == "HUM"


def test_mirrored_strategy_the_gpu_path_trains_the_same_model(trained, slice_runs, encoder_dir, tmp_path,
                                                              monkeypatch):
    """With GPUs the Trainer uses MirroredStrategy (CI has none): forced here on the CPU, it must train the
    very model the default strategy trained (same seed, same data), its input cached on disk or in memory."""
    import tensorflow_text  # noqa: F401

    from components import trainer
    from trainer_runs import train

    monkeypatch.setattr(trainer, "training_strategy", tf.distribute.MirroredStrategy)
    # ... and with phase 1's cache on disk (nothing fits in 0 MB): the same rows, read back from the cache file.
    mirrored = train(slice_runs, tmp_path, encoder_dir, mode="head", max_epochs=3, hidden_units=32, seed=7,
                     cache_in_memory_max_mb=0)
    with open(os.path.join(mirrored.model_run_dir, "training.json")) as f:
        assert json.load(f)["input"]["cache"] == "disk"
    assert os.listdir(os.path.join(str(tmp_path), "work")) == []  # the cache folder is gone
    texts = tf.constant(["Who is the president of Peru ?", "How far is the moon ?", "What is a golden parachute ?"])
    outputs = [tf.saved_model.load(t.serving_model_dir).signatures["serving_default"](text=texts)["probabilities"]
               for t in (trained, mirrored)]
    np.testing.assert_allclose(outputs[0].numpy(), outputs[1].numpy(), atol=1e-5)
