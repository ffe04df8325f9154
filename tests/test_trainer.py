"""components.trainer.run_fn on the slice run's transformed examples, called directly."""
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow


def _tfx_artifact(store, mlmd_artifact):
    from tfx.types import artifact_utils

    artifact_type = store.get_artifact_types_by_id([mlmd_artifact.type_id])[0]
    return artifact_utils.deserialize_artifact(artifact_type, mlmd_artifact)


@pytest.fixture(scope="module")
def trained(slice_runs, tmp_path_factory):
    from tfx import v1 as tfx
    from tfx.components.trainer import fn_args_utils
    from tfx.utils import proto_utils

    from components.trainer import run_fn
    from pipelines.config import TrainerConfig
    from pipelines.runs import connect, run_contexts, run_outputs

    store = connect(slice_runs.metadata_path)
    _, outputs = run_outputs(store, run_contexts(store, "transferline")[0])
    input_dict = {"examples": [_tfx_artifact(store, outputs["Transform.transformed_examples"][0])],
                  "transform_graph": [_tfx_artifact(store, outputs["Transform.transform_graph"][0])]}
    hp = {"trainer": dataclasses.asdict(TrainerConfig(max_epochs=3, hidden_units=32, seed=7))}
    exec_properties = {
        "train_args": proto_utils.proto_to_json(tfx.proto.TrainArgs(splits=["train"])),
        "eval_args": proto_utils.proto_to_json(tfx.proto.EvalArgs(splits=["eval"])),
        "custom_config": json.dumps(hp)}
    tmp = tmp_path_factory.mktemp("trainer")
    fn_args = fn_args_utils.get_common_fn_args(input_dict, exec_properties, str(tmp / "work"))
    fn_args.serving_model_dir = str(tmp / "serving_model")
    fn_args.model_run_dir = str(tmp / "model_run")
    fn_args.custom_config = hp
    run_fn(fn_args)
    return fn_args


def test_run_fn_exports_the_serving_signatures(trained):
    import tensorflow_text  # noqa: F401

    model = tf.saved_model.load(trained.serving_model_dir)
    assert {"serving_default", "serving_examples", "transform_features"} <= set(model.signatures)
    out = model.signatures["serving_default"](text=tf.constant(["Who is the president of Peru ?", "Why ?"]))
    assert out["probabilities"].shape == (2, 6) and out["classes"].shape == (2, 6)
    assert out["label"].shape == (2,) and out["score"].shape == (2,)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(axis=1), 1.0, atol=1e-5)


def test_run_fn_head_uses_the_hyperparameters_and_logs_to_tensorboard(trained):
    import tf_keras

    head = tf_keras.models.load_model(trained.serving_model_dir)
    assert head.get_layer("hidden").units == 32  # from custom_config
    assert head.input_shape == (None, 512) and head.output_shape == (None, 6)
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
