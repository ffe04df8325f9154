"""The Trainer step: one model family by trainer.mode (components/model.py), exported for TF Serving.

Phase 1 trains on the transform's output (the frozen encoder's embedding, the TF-IDF n-grams); in
fine_tune mode phase 2 then puts the encoder inside the model and trains it with the head on the raw
text at a low rate, early-stopped on the eval split (best weights restored), and keeps it only when it
beats phase 1 on eval (components/modes.py). `auto` picks the mode by the number of training examples.

Warm start: when the Trainer's base_model (the served model, see components/served_model.py) has a head of
the same shape over the same classes, the new head starts from its weights, class columns re-ordered
to this run's label vocabulary (ordered by frequency, so it can differ between runs); otherwise it
starts fresh. In fine_tune mode the encoder also starts from the served one when that was fine-tuned from
the same encoder handle. What happened is written to the model_run artifact (warm_start.json,
initial_head.npz; training.json: the mode, why, each phase's eval figures and per-epoch history, the knobs,
the warm start; a copy of it in the exported model's assets.extra/ for the model card).
"""
from __future__ import annotations

import io
import json
import os
import tempfile

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from absl import logging
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components import model as models
from components import names
from components import train_data
from components.epoch_progress import EpochProgress
from components.modes import FINE_TUNE, WIDE_DEEP, choose_mode, keep_phase2, skip_phase2

TRAINER_CONFIG = "trainer"  # the custom_config key holding the whole [trainer] section (pipelines/config.py)
ENCODER_HANDLE = "encoder_handle"  # the custom_config key of the resolved encoder handle
MIN_EVAL_ROWS = "min_eval_rows"  # the custom_config key of data.min_eval_rows (phase 2 needs that many eval rows)


def warm_start(model: tf_keras.Model, base_model: str | None, class_names: list[str]) -> dict:
    """Loads the served head into `model` when it fits; returns what happened, in words."""
    if not base_model or not tf.io.gfile.exists(os.path.join(base_model, "saved_model.pb")):
        return {"warm_start": False, "reason": "no served model: fresh start"}
    try:
        weights, served_classes = models.served_head(base_model)
    except (tf.errors.OpError, ValueError, KeyError) as e:
        return {"warm_start": False, "reason": f"served model's head unreadable ({e}): fresh start"}
    if sorted(served_classes) != sorted(class_names):
        return {"warm_start": False, "reason": f"classes differ (served {sorted(served_classes)}, now "
                                               f"{sorted(class_names)}): fresh start"}
    current = models.head_weights(model)
    if [w.shape for w in weights[:2]] != [w.shape for w in current[:2]]:
        return {"warm_start": False, "reason": f"hidden layer {weights[0].shape} served vs {current[0].shape} "
                                               f"now: fresh start"}
    order = [served_classes.index(c) for c in class_names]  # served output column of each class id
    model.get_layer("hidden").set_weights(weights[:2])
    model.get_layer("logits").set_weights([weights[2][:, order], weights[3][order]])
    return {"warm_start": True, "reason": "head initialised from the served model", "from": base_model}


def warm_start_encoder(model: tf_keras.Model, base_model: str | None, handle: str) -> str:
    """Starts phase 2's encoder from the served model's when that was fine-tuned from `handle`."""
    if not base_model or not tf.io.gfile.exists(os.path.join(base_model, "saved_model.pb")):
        return "encoder: from its handle (nothing served)"
    info = models.read_model_info(base_model)
    if info.get("mode") != FINE_TUNE or info.get("encoder_handle") != handle:
        return f"encoder: from its handle (the served model is {info.get('mode')}, handle {info.get('encoder_handle')})"
    try:
        models.restore_encoder(model, base_model)
    except (tf.errors.OpError, ValueError, AssertionError) as e:
        return f"encoder: from its handle (served encoder unreadable: {e})"
    return "encoder: from the served fine-tuned encoder"


def training_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over every local GPU; without one, the default strategy: MirroredStrategy on the CPU
    makes a multi-device iterator per pass over the data (~0.13 s each: 2 per epoch, most of a small fit)."""
    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _text_dataset(fn_args, files, tft_output, batch_size, shuffle, seed, keys):
    """Phase 2's input: TFX's reader (phase 1's: components/train_data.py)."""
    dataset = fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=names.LABEL_ID,
                                       num_epochs=1, shuffle=shuffle, shuffle_seed=seed),
        tft_output.transformed_metadata.schema)
    if keys == [names.RAW_TEXT]:
        return dataset.map(lambda features, label: (tf.reshape(features[names.RAW_TEXT], [-1]), label))
    return dataset.map(lambda features, label: ({k: features[k] for k in keys}, label))


def _epoch_log(phase):
    # Per-epoch progress to the log (`transferline run --verbose`), not stdout, which holds the summary.
    return tf_keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: logging.info(
        "%s epoch %d: %s", phase, epoch + 1, ", ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items())))


def _fit(model, train, evaluation, epochs, patience, callbacks, phase, title, steps_per_epoch=None):
    # `title` names the phase in the progress lines the terminal shows (components/epoch_progress.py).
    # steps_per_epoch: an "epoch" of that many batches of an endless `train` (phase 1: eval_every_examples).
    stop = tf_keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    history = model.fit(train, validation_data=evaluation, epochs=epochs, verbose=0, steps_per_epoch=steps_per_epoch,
                        callbacks=[stop, _epoch_log(phase), EpochProgress(title, epochs), *callbacks]).history
    best = int(np.argmin(history["val_loss"]))
    return {"epochs": len(history["val_loss"]), "best_epoch": best + 1, "steps_per_epoch": steps_per_epoch,
            "eval_accuracy_best_epoch": float(history["val_accuracy"][best]),
            # Keras' per-epoch figures (loss, accuracy, val_loss, val_accuracy): the report's training curves.
            "history": {k: [float(v) for v in values] for k, values in history.items()}}


def _evaluate(model, dataset) -> dict:
    loss, accuracy = model.evaluate(dataset, verbose=0)
    return {"loss": float(loss), "accuracy": float(accuracy)}


def _write(fn_args, filename, data: bytes) -> None:
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, filename), "wb") as f:
        f.write(data)


def phase1_data(fn_args, spec, keys, hp, batch_size, n_train, n_eval, train_bytes, cache_dir):
    """(train, eval, steps per epoch, where each is cached) for phase 1 (components/train_data.py): `keys`
    and the label, parsed with `spec` (train_data.feature_spec).

    An epoch is a pass over the training data, or eval_every_examples rows of it when there are more: early
    stopping then counts evaluations, and a large dataset needs a fraction of a pass per evaluation, not
    20+ whole passes. Both splits are cached (eval is read at every evaluation)."""
    per_row = train_data.row_bytes(spec, train_bytes / max(n_train, 1))
    max_mb = hp["cache_in_memory_max_mb"]
    caches = [train_data.cache_target(n_train + n_eval, per_row, max_mb, cache_dir, name) for name in ("train", "eval")]
    per_epoch = min(n_train, hp["eval_every_examples"]) if hp["eval_every_examples"] else n_train
    steps = max(1, -(-per_epoch // batch_size))
    train = train_data.dataset(fn_args.train_files, spec, keys, batch_size, caches[0], shuffle=True,
                               seed=hp["seed"], repeat=True)
    # Evaluation: a larger batch (the figures do not depend on it; Keras weighs each batch by its size).
    evaluation = train_data.dataset(fn_args.eval_files, spec, keys, max(batch_size, train_data.PARSE_BATCH),
                                    caches[1])
    return train, evaluation, steps, {"cache": "disk" if caches[0] else "memory", "bytes_per_row": per_row,
                                      "examples_per_epoch": per_epoch}


def _cache_dir(fn_args) -> tempfile.TemporaryDirectory:
    """A local folder for the disk cache: under fn_args.working_dir when that is local, else (TFX's Trainer
    leaves it unset; a gs:// one would put every cached read on the network) the system's temporary folder."""
    working = getattr(fn_args, "working_dir", None)
    parent = working if working and "://" not in working else None
    if parent:
        os.makedirs(parent, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="trainer-cache-", dir=parent)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """TFX Trainer entry point (passed to Trainer as a dotted path)."""
    hp = fn_args.custom_config[TRAINER_CONFIG]  # every knob, always: one source, pipelines/config.py
    handle = fn_args.custom_config[ENCODER_HANDLE]
    tf_keras.utils.set_random_seed(hp["seed"])
    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    class_names = [v.decode() for v in tft_output.vocabulary_by_name(names.LABEL_VOCAB)]
    embedding_dim = tft_output.transformed_feature_spec()[names.EMBEDDING].shape[-1]
    n_train, train_bytes = train_data.count_records(fn_args.train_files)
    n_eval, _ = train_data.count_records(fn_args.eval_files)
    mode, why = skip_phase2(*choose_mode(hp["mode"], n_train, hp), n_eval, fn_args.custom_config.get(MIN_EVAL_ROWS, 0))
    record = {"mode": mode, "why": why, "n_train": n_train, "n_eval": n_eval}
    logging.info("Trainer mode %s (%s)", mode, why)
    keys = models.input_keys("head" if mode == FINE_TUNE else mode)
    # Raises, saying why, when Transform made no features for this mode (components/modes.py transform_features);
    # the n-gram vocabulary exists only where it made the wide features.
    spec = train_data.feature_spec(tft_output.transformed_feature_spec(), keys)
    if mode == FINE_TUNE:  # phase 2 reads the raw text
        train_data.feature_spec(tft_output.transformed_feature_spec(), [names.RAW_TEXT])
    ngram_vocab = tft_output.vocabulary_size_by_name(names.NGRAM_VOCAB) + 1 if mode == WIDE_DEEP else 1  # + OOV

    strategy = training_strategy()
    replicas = strategy.num_replicas_in_sync
    # Phase 1's parsed rows, when they do not fit in memory; deleted at the end (or, on an error, when
    # the object is collected: TemporaryDirectory's finalizer).
    cache_dir = _cache_dir(fn_args)
    train, evaluation, steps, record["input"] = phase1_data(fn_args, spec, keys, hp, hp["batch_size"] * replicas,
                                                            n_train, n_eval, train_bytes, cache_dir.name)
    with strategy.scope():
        model = models.build_model("head" if mode == FINE_TUNE else mode, embedding_dim, len(class_names),
                                   ngram_vocab, hp)
        started = warm_start(model, fn_args.base_model, class_names)
    logging.info("Training a %d-class %s model with %d replica(s); %s", len(class_names), mode, replicas,
                 started["reason"])
    tf.io.gfile.makedirs(fn_args.model_run_dir)  # os.makedirs would make a local folder for a gs:// URI
    buffer = io.BytesIO()  # np.savez seeks; a gs:// file cannot
    np.savez(buffer, *models.head_weights(model))
    _write(fn_args, names.INITIAL_HEAD_FILE, buffer.getvalue())

    board = tf_keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir)
    record["phase1"] = _fit(model, train, evaluation, hp["max_epochs"], hp["early_stopping_patience"], [board],
                            "phase 1", f"phase 1 ({'head' if mode == FINE_TUNE else mode})", steps)
    if mode == FINE_TUNE:
        text_batch = hp["fine_tune_batch_size"] * replicas
        del train, evaluation  # phase 1's cache: not held through phase 2
        train_text = _text_dataset(fn_args, fn_args.train_files, tft_output, text_batch, True, hp["seed"],
                                   [names.RAW_TEXT])
        eval_text = _text_dataset(fn_args, fn_args.eval_files, tft_output, text_batch, False, hp["seed"],
                                  [names.RAW_TEXT])
        with strategy.scope():
            model = models.build_fine_tune(model, handle, hp)
        # Phase 1 measured as phase 2 will be: the same model, its encoder as phase 1 saw it (the handle's).
        record["phase1"].update(_evaluate(model, eval_text))
        phase1_weights = model.get_weights()
        with strategy.scope():
            started["encoder"] = warm_start_encoder(model, fn_args.base_model, handle)
        record["phase2"] = _fit(model, train_text, eval_text, hp["fine_tune_max_epochs"], hp["fine_tune_patience"],
                                [], "phase 2", "phase 2 (fine-tune)")
        record["phase2"].update(_evaluate(model, eval_text))
        kept, record["decision"] = keep_phase2(record["phase1"], record["phase2"])
        record["phase_kept"] = 2 if kept else 1
        if not kept:
            model.set_weights(phase1_weights)
        logging.info("Fine-tuning: %s", record["decision"])
    else:
        record["phase1"].update(_evaluate(model, evaluation))
    _write(fn_args, names.WARM_START_FILE, json.dumps({**started, "classes": class_names}).encode())
    record.update(warm_start=started, knobs=hp)
    _write(fn_args, names.TRAINING_FILE, json.dumps(record, indent=1).encode())
    models.export(model, mode, tft_output, fn_args.serving_model_dir, handle)
    # A copy in the model itself: the Pusher's model card reads it (the model_run is not the Pusher's input).
    with tf.io.gfile.GFile(os.path.join(fn_args.serving_model_dir, names.MODEL_TRAINING), "w") as f:
        f.write(json.dumps(record, indent=1))
    cache_dir.cleanup()
