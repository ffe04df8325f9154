"""Test-only reference for the MiniLM port: sentence-transformers' all-MiniLM-L6-v2 in plain Python + numpy.

Written from the package's own files and the published algorithms, sharing no code with
components/minilm_graph.py: its own safetensors reader, HF `tokenizers`' BertNormalizer +
BertPreTokenizer + WordPiece (tokenizer.json: lowercase, strip accents, clean text, CJK chars split,
greedy longest-match-first, a word over 100 chars -> [UNK]), BERT's forward pass (torch Linear
layout, erf GELU, -10000 mask bias) and sentence-transformers' Transformer(256) -> mean pooling ->
Normalize modules.
"""
import json
import math
import struct
import unicodedata
import zipfile

import numpy as np


def package_zip():
    import importlib.util
    import os

    spec = importlib.util.find_spec("all_minilm_l6_v2")
    return os.path.join(list(spec.submodule_search_locations)[0], "model.zip")


def load(zip_path=None):
    with zipfile.ZipFile(zip_path or package_zip()) as z:
        raw = z.read("model.safetensors")
        tok = json.loads(z.read("tokenizer.json"))
        max_len = json.loads(z.read("sentence_bert_config.json"))["max_seq_length"]
    header_len = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + header_len].decode())
    weights = {}
    for name, info in header.items():
        if name != "__metadata__" and info["dtype"] == "F32":
            a, b = info["data_offsets"]
            weights[name] = np.frombuffer(raw, "<f4", (b - a) // 4, 8 + header_len + a).reshape(
                info["shape"]).astype(np.float64)
    return WordPiece(tok["model"]["vocab"], tok["model"]["max_input_chars_per_word"]), weights, max_len


# ------------------------------------------------------------------------------------- tokenizer
def _is_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def _is_control(c):
    return c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf", "Cn", "Co", "Cs")


def _is_punctuation(c):
    cp = ord(c)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or \
        unicodedata.category(c).startswith("P")


def _is_cjk(cp):
    return any(a <= cp <= b for a, b in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
                                         (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


class WordPiece:
    def __init__(self, vocab, max_chars):
        self.vocab, self.max_chars = vocab, max_chars
        self.cls, self.sep, self.unk = vocab["[CLS]"], vocab["[SEP]"], vocab["[UNK]"]

    def normalize(self, text):
        out = []
        for c in text:  # BertNormalizer: clean_text, handle_chinese_chars
            if ord(c) == 0 or ord(c) == 0xFFFD or _is_control(c):
                continue
            out.append(" " if _is_whitespace(c) else f" {c} " if _is_cjk(ord(c)) else c)
        text = unicodedata.normalize("NFD", "".join(out))  # strip_accents (follows lowercase)
        return "".join(c for c in text if unicodedata.category(c) != "Mn").lower()

    def words(self, text):  # BertPreTokenizer: split on whitespace, punctuation isolated
        words, cur = [], ""
        for c in self.normalize(text):
            if _is_whitespace(c) or _is_punctuation(c):
                if cur:
                    words.append(cur)
                cur = ""
                if _is_punctuation(c):
                    words.append(c)
            else:
                cur += c
        return words + ([cur] if cur else [])

    def pieces(self, word):
        if len(word) > self.max_chars:
            return [self.unk]
        out, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    out.append(self.vocab[piece])
                    break
                end -= 1
            if end == start:
                return [self.unk]
            start = end
        return out

    def encode(self, text, max_len):
        ids = [i for w in self.words(text) for i in self.pieces(w)]
        return [self.cls] + ids[:max_len - 2] + [self.sep]


# ------------------------------------------------------------------------------------- network
def _ln(x, g, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def forward(w, ids):
    """One text's token ids -> its sentence embedding, unpadded (``w``: load()'s weights, float64 for a tight
    reference)."""
    from scipy.special import erf

    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] \
        + w["embeddings.token_type_embeddings.weight"][0]
    x = _ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    heads, d = 12, x.shape[1] // 12
    for i in range(6):
        p = f"encoder.layer.{i}."

        def lin(name, h):
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (lin(f"attention.self.{m}", x).reshape(n, heads, d).transpose(1, 0, 2)
                   for m in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        s = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((s / s.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, -1)
        x = _ln(lin("attention.output.dense", ctx) + x, w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"])
        h = lin("intermediate.dense", x)
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = _ln(lin("output.dense", h) + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    mean = x.mean(0)
    return mean / max(np.linalg.norm(mean), 1e-12)
