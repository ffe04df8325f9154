"""The Trainer's models (one family, by trainer.mode) and their export for TF Serving.

  head       embedding -> Dense(hidden, relu) -> Dropout -> Dense(classes) "logits" -> softmax
  wide_deep  the head's logits + a linear map of the TF-IDF n-grams (L2-regularised), then softmax
  fine_tune  raw text -> the encoder (hub.KerasLayer, trainable) -> the same head layers

Every mode's layers named "hidden" and "logits" have the same shapes, so a head warm-starts across modes.
The exported SavedModel has:
  serving_default(text: string[batch])         raw text in (TF Serving REST `instances`)
  serving_examples(examples: string[batch])    serialized tf.Examples in
  transform_features(examples: string[batch])  the transform graph alone, for TFMA
Both serving signatures return probabilities, the aligned class names, and the top class with its score.
In fine_tune mode they run the model's own (fine-tuned) encoder on the text and never the transform graph,
whose encoder is the frozen one; transform_features keeps it, for TFMA's labels.
"""
from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from components import names
from components.modes import FINE_TUNE, WIDE_DEEP

HEAD_LAYERS = ("hidden", "logits")
ENCODER_LAYER = "encoder"


class WideLinear(tf_keras.layers.Layer):
    """Logits from sparse TF-IDF n-grams: sum over a text's n-grams of weight x that n-gram's row."""

    def __init__(self, vocab_size: int, n_classes: int, l2: float, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.n_classes, self.l2 = vocab_size, n_classes, l2

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", shape=(self.vocab_size, self.n_classes), initializer="zeros",
                                      regularizer=tf_keras.regularizers.l2(self.l2) if self.l2 else None)

    def call(self, inputs):
        ids, weights = inputs
        # One SparseTensor [batch, vocab]: row = the text, column = the n-gram id, value = its TF-IDF weight.
        rows = tf.cast(ids.indices[:, 0], tf.int64)
        matrix = tf.sparse.SparseTensor(tf.stack([rows, tf.cast(ids.values, tf.int64)], axis=1),
                                        tf.cast(weights.values, self.kernel.dtype),
                                        tf.stack([tf.cast(ids.dense_shape[0], tf.int64), self.vocab_size]))
        return tf.sparse.sparse_dense_matmul(tf.sparse.reorder(matrix), self.kernel)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "n_classes": self.n_classes, "l2": self.l2}


def compile_model(model: tf_keras.Model, learning_rate, loss=None) -> tf_keras.Model:
    """Adam at `learning_rate` (a float or a schedule), `loss` (default: sparse cross-entropy), accuracy."""
    # Keras' own steps, not autograph-converted: under the default strategy (CPU) fit's first trace would
    # convert ~1,000 Keras functions (~10 s per Trainer; MirroredStrategy runs them unconverted too).
    for step in ("train_step", "test_step", "predict_step"):
        setattr(model, step, tf.autograph.experimental.do_not_convert(getattr(model, step)))
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate),
                  loss=loss or tf_keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def build_model(mode: str, embedding_dim: int, n_classes: int, ngram_vocab: int, hp: dict) -> tf_keras.Model:
    """The phase-1 model on the transformed features (fine_tune's phase 1 is the head).

    ``hp``: the [trainer] section as a dict (dataclasses.asdict of TrainerConfig).
    """
    embedding = tf_keras.Input(shape=(embedding_dim,), name=names.EMBEDDING)
    x = tf_keras.layers.Dense(hp["hidden_units"], activation="relu", name="hidden")(embedding)
    x = tf_keras.layers.Dropout(hp["dropout"], name="dropout")(x)
    logits = tf_keras.layers.Dense(n_classes, name="logits")(x)
    inputs = {names.EMBEDDING: embedding}
    if mode == WIDE_DEEP:
        ids = tf_keras.Input(shape=(None,), sparse=True, dtype=tf.int64, name=names.NGRAM_IDS)
        weights = tf_keras.Input(shape=(None,), sparse=True, dtype=tf.float32, name=names.NGRAM_WEIGHTS)
        inputs.update({names.NGRAM_IDS: ids, names.NGRAM_WEIGHTS: weights})
        logits = tf_keras.layers.Add(name="wide_plus_deep")(
            [logits, WideLinear(ngram_vocab, n_classes, hp["wide_l2"], name="wide")([ids, weights])])
    outputs = tf_keras.layers.Softmax(name="probabilities")(logits)
    return compile_model(tf_keras.Model(inputs, outputs, name=mode), hp["learning_rate"])


def input_keys(mode: str) -> list[str]:
    """The transformed features a phase-1 model of `mode` reads."""
    return [names.EMBEDDING, names.NGRAM_IDS, names.NGRAM_WEIGHTS] if mode == WIDE_DEEP else [names.EMBEDDING]


def build_fine_tune(head: tf_keras.Model, handle: str, hp: dict) -> tf_keras.Model:
    """Phase 2: raw text -> the encoder, trainable -> the head's own layers (shared, already trained)."""
    import tensorflow_text  # noqa: F401  (SentencePiece ops)

    text = tf_keras.Input(shape=(), dtype=tf.string, name=names.RAW_TEXT)
    x = hub.KerasLayer(handle, trainable=True, name=ENCODER_LAYER)(text)
    for name in ("hidden", "dropout", "logits", "probabilities"):
        x = head.get_layer(name)(x)
    return compile_model(tf_keras.Model(text, x, name=FINE_TUNE), hp["fine_tune_learning_rate"])


def head_weights(model: tf_keras.Model) -> list[np.ndarray]:
    return [w for name in HEAD_LAYERS for w in model.get_layer(name).get_weights()]


# ----------------------------------------------------------------------------------------- warm start
def _layers_with_weights(model: tf_keras.Model) -> list[str]:
    """Layer names in the order Keras checkpoints them as layer_with_weights-N."""
    return [layer.name for layer in model.layers if layer.weights]


def read_model_info(model_dir: str) -> dict:
    """What export() recorded about a served model; models from before it: a head, its Dense layers first."""
    path = os.path.join(model_dir, names.MODEL_INFO)
    if not tf.io.gfile.exists(path):
        return {"mode": "head", "layers_with_weights": ["hidden", "logits"]}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def served_head(model_dir: str) -> tuple[list[np.ndarray], list[str]]:
    """[hidden kernel, hidden bias, logits kernel, logits bias] and the class names of a pushed model."""
    order = read_model_info(model_dir)["layers_with_weights"]
    reader = tf.train.load_checkpoint(os.path.join(model_dir, "variables", "variables"))
    weights = [reader.get_tensor(f"layer_with_weights-{order.index(name)}/{w}/.ATTRIBUTES/VARIABLE_VALUE")
               for name in HEAD_LAYERS for w in ("kernel", "bias")]
    with tf.io.gfile.GFile(os.path.join(model_dir, "assets", names.LABEL_VOCAB)) as f:
        return weights, [line.rstrip("\n") for line in f if line.strip()]


def restore_encoder(model: tf_keras.Model, model_dir: str) -> None:
    """Loads a served fine-tuned encoder's weights into `model`'s encoder layer (TF's object-graph matching)."""
    index = read_model_info(model_dir)["layers_with_weights"].index(ENCODER_LAYER)
    checkpoint = tf.train.Checkpoint(**{f"layer_with_weights-{index}": model.get_layer(ENCODER_LAYER)})
    checkpoint.read(os.path.join(model_dir, "variables", "variables")).assert_existing_objects_matched()


# ----------------------------------------------------------------------------------------- export
def _serving_outputs(probabilities, class_names):
    batch = tf.shape(probabilities)[0]
    top = tf.argmax(probabilities, axis=1)
    return {
        names.PROBABILITIES: probabilities,
        names.CLASSES: tf.tile(class_names[None, :], [batch, 1]),
        names.TOP_CLASS: tf.gather(class_names, top),
        names.TOP_SCORE: tf.reduce_max(probabilities, axis=1),
    }


def _signatures(model, mode, tft_output):
    # autograph=False: nothing here branches on a tensor, and converting the model's layers costs seconds.
    model.tft_layer = tft_output.transform_features_layer()
    class_names = tf.constant([v.decode() for v in tft_output.vocabulary_by_name(names.LABEL_VOCAB)])
    raw_spec = tft_output.raw_feature_spec()
    request_spec = {k: v for k, v in raw_spec.items() if k != names.LABEL}

    def predict(raw):
        if mode == FINE_TUNE:  # the model's own encoder on the text: the transform graph is not run
            return _serving_outputs(model(tf.reshape(raw[names.TEXT], [-1])), class_names)
        transformed = model.tft_layer(raw)
        return _serving_outputs(model({k: transformed[k] for k in input_keys(mode)}), class_names)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=names.TEXT)], autograph=False)
    def serve_text(text):
        return predict({names.TEXT: tf.reshape(text, [-1, 1])})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=names.EXAMPLES_INPUT)], autograph=False)
    def serve_examples(examples):
        return predict(tf.io.parse_example(examples, request_spec))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=names.EXAMPLES_INPUT)], autograph=False)
    def transform_features(examples):
        return model.tft_layer(tf.io.parse_example(examples, raw_spec))

    return {
        names.SERVING_DEFAULT: serve_text.get_concrete_function(),
        names.SERVING_EXAMPLES: serve_examples.get_concrete_function(),
        names.TRANSFORM_FEATURES: transform_features.get_concrete_function(),
    }


def export(model: tf_keras.Model, mode: str, tft_output, path: str, encoder_handle: str) -> None:
    """Saves `model` for TF Serving, with what the next run's warm start needs in assets.extra.

    save_traces=False: Keras reloads the model from its layers' configs; their call traces are for nobody
    (serving and TFMA use the signatures) and cost seconds to make.
    """
    model.save(path, save_format="tf", signatures=_signatures(model, mode, tft_output), save_traces=False)
    info = {"mode": mode, "encoder_handle": encoder_handle, "layers_with_weights": _layers_with_weights(model)}
    tf.io.gfile.makedirs(os.path.dirname(os.path.join(path, names.MODEL_INFO)))
    with tf.io.gfile.GFile(os.path.join(path, names.MODEL_INFO), "w") as f:
        f.write(json.dumps(info))
