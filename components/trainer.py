"""The Trainer step: a small tf_keras head over sentence embeddings, exported for TF Serving.

Only the head trains; the encoder ran once, in Transform, and comes back at
serving time inside the transform graph. The exported SavedModel has:
  serving_default(text: string[batch])         raw text in (TF Serving REST `instances`)
  serving_examples(examples: string[batch])    serialized tf.Examples in
  transform_features(examples: string[batch])  the transform graph alone, for TFMA
Both serving signatures return probabilities, the aligned class names, and
the top class with its score.

Warm start: when the Trainer's base_model (the served model, see components/served_model.py) has a head of
the same shape over the same classes, the new head starts from its weights, class columns re-ordered
to this run's label vocabulary (ordered by frequency, so it can differ between runs); otherwise it
starts fresh. What happened is written to the model_run artifact (warm_start.json, initial_head.npz).
"""
from __future__ import annotations

import io
import json
import os

import numpy as np

import tensorflow as tf
import tf_keras
import tensorflow_transform as tft
from absl import logging
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components import names

TRAINER_CONFIG = "trainer"  # the custom_config key holding the whole [trainer] section (pipelines/config.py)


def build_head(embedding_dim: int, n_classes: int, hp: dict) -> tf_keras.Model:
    """``hp``: the [trainer] section as a dict (dataclasses.asdict of TrainerConfig)."""
    inputs = tf_keras.Input(shape=(embedding_dim,), name=names.EMBEDDING)
    x = tf_keras.layers.Dense(hp["hidden_units"], activation="relu", name="hidden")(inputs)
    x = tf_keras.layers.Dropout(hp["dropout"], name="dropout")(x)
    outputs = tf_keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    model = tf_keras.Model(inputs, outputs, name="head")
    model.compile(optimizer=tf_keras.optimizers.Adam(hp["learning_rate"]),
                  loss=tf_keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def served_head(model_dir: str) -> tuple[list[np.ndarray], list[str]]:
    """[hidden kernel, hidden bias, output kernel, output bias] and the class names of a pushed model."""
    reader = tf.train.load_checkpoint(os.path.join(model_dir, "variables", "variables"))
    weights = [reader.get_tensor(f"layer_with_weights-{i}/{w}/.ATTRIBUTES/VARIABLE_VALUE")
               for i in (0, 1) for w in ("kernel", "bias")]  # the head's two Dense layers, in order
    with tf.io.gfile.GFile(os.path.join(model_dir, "assets", names.LABEL_VOCAB)) as f:
        return weights, [line.rstrip("\n") for line in f if line.strip()]


def head_weights(model: tf_keras.Model) -> list[np.ndarray]:
    return [w for name in ("hidden", "probabilities") for w in model.get_layer(name).get_weights()]


def warm_start(model: tf_keras.Model, base_model: str | None, class_names: list[str]) -> dict:
    """Loads the served head into `model` when it fits; returns what happened, in words."""
    if not base_model or not tf.io.gfile.exists(os.path.join(base_model, "saved_model.pb")):
        return {"warm_start": False, "reason": "no served model: fresh start"}
    try:
        weights, served_classes = served_head(base_model)
    except (tf.errors.OpError, ValueError) as e:
        return {"warm_start": False, "reason": f"served model's head unreadable ({e}): fresh start"}
    if sorted(served_classes) != sorted(class_names):
        return {"warm_start": False, "reason": f"classes differ (served {sorted(served_classes)}, now "
                                               f"{sorted(class_names)}): fresh start"}
    current = head_weights(model)
    if [w.shape for w in weights[:2]] != [w.shape for w in current[:2]]:
        return {"warm_start": False, "reason": f"hidden layer {weights[0].shape} served vs {current[0].shape} "
                                               f"now: fresh start"}
    order = [served_classes.index(c) for c in class_names]  # served output column of each class id
    model.get_layer("hidden").set_weights(weights[:2])
    model.get_layer("probabilities").set_weights([weights[2][:, order], weights[3][order]])
    return {"warm_start": True, "reason": "head initialised from the served model", "from": base_model}


def _dataset(fn_args, files, tft_output, batch_size, shuffle, seed):
    return fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=names.LABEL_ID,
                                       num_epochs=1, shuffle=shuffle, shuffle_seed=seed),
        tft_output.transformed_metadata.schema)


def _serving_outputs(probabilities, class_names):
    batch = tf.shape(probabilities)[0]
    top = tf.argmax(probabilities, axis=1)
    return {
        names.PROBABILITIES: probabilities,
        names.CLASSES: tf.tile(class_names[None, :], [batch, 1]),
        names.TOP_CLASS: tf.gather(class_names, top),
        names.TOP_SCORE: tf.reduce_max(probabilities, axis=1),
    }


def _signatures(model, tft_output):
    """The serving signatures: raw text, serialized tf.Examples, and transform_features for TFMA."""
    model.tft_layer = tft_output.transform_features_layer()
    class_names = tf.constant([v.decode() for v in tft_output.vocabulary_by_name(names.LABEL_VOCAB)])
    raw_spec = tft_output.raw_feature_spec()
    request_spec = {k: v for k, v in raw_spec.items() if k != names.LABEL}

    def predict(raw):
        transformed = model.tft_layer(raw)
        return _serving_outputs(model(transformed[names.EMBEDDING]), class_names)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=names.TEXT)])
    def serve_text(text):
        return predict({names.TEXT: tf.reshape(text, [-1, 1])})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=names.EXAMPLES_INPUT)])
    def serve_examples(examples):
        return predict(tf.io.parse_example(examples, request_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=names.EXAMPLES_INPUT)])
    def transform_features(examples):
        return model.tft_layer(tf.io.parse_example(examples, raw_spec))

    return {
        names.SERVING_DEFAULT: serve_text.get_concrete_function(),
        names.SERVING_EXAMPLES: serve_examples.get_concrete_function(),
        names.TRANSFORM_FEATURES: transform_features.get_concrete_function(),
    }


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """TFX Trainer entry point (passed to Trainer as a dotted path)."""
    hp = fn_args.custom_config[TRAINER_CONFIG]  # every knob, always: one source, pipelines/config.py
    tf_keras.utils.set_random_seed(hp["seed"])
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    n_classes = tft_output.vocabulary_size_by_name(names.LABEL_VOCAB)
    embedding_dim = tft_output.transformed_feature_spec()[names.EMBEDDING].shape[-1]

    # MirroredStrategy uses every local GPU when there are any, else the CPU.
    strategy = tf.distribute.MirroredStrategy()
    batch_size = hp["batch_size"] * strategy.num_replicas_in_sync
    train = _dataset(fn_args, fn_args.train_files, tft_output, batch_size, True, hp["seed"])
    evaluation = _dataset(fn_args, fn_args.eval_files, tft_output, batch_size, False, hp["seed"])
    with strategy.scope():
        model = build_head(embedding_dim, n_classes, hp)
        class_names = [v.decode() for v in tft_output.vocabulary_by_name(names.LABEL_VOCAB)]
        started = warm_start(model, fn_args.base_model, class_names)
    logging.info("Training a %d-class head on %d-d embeddings with %d replica(s); %s",
                 n_classes, embedding_dim, strategy.num_replicas_in_sync, started["reason"])
    tf.io.gfile.makedirs(fn_args.model_run_dir)  # os.makedirs would make a local folder for a gs:// URI
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, names.WARM_START_FILE), "w") as f:
        f.write(json.dumps({**started, "classes": class_names}))
    buffer = io.BytesIO()  # np.savez seeks; a gs:// file cannot
    np.savez(buffer, *head_weights(model))
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, names.INITIAL_HEAD_FILE), "wb") as f:
        f.write(buffer.getvalue())

    callbacks = [
        tf_keras.callbacks.EarlyStopping(monitor="val_loss", patience=hp["early_stopping_patience"],
                                         restore_best_weights=True),
        tf_keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
        # Per-epoch progress to the log (`transferline run --verbose`), not stdout, which holds the summary.
        tf_keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: logging.info(
            "epoch %d: %s", epoch + 1, ", ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items()))),
    ]
    history = model.fit(train, validation_data=evaluation, epochs=hp["max_epochs"],
                        callbacks=callbacks, verbose=0)
    best = min(range(len(history.history["val_loss"])), key=history.history["val_loss"].__getitem__)
    logging.info("Best epoch %d of %d: val_accuracy %.4f", best + 1, len(history.history["val_loss"]),
                 history.history["val_accuracy"][best])

    model.save(fn_args.serving_model_dir, save_format="tf", signatures=_signatures(model, tft_output))
