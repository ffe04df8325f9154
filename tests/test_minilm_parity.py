"""The TF port of all-MiniLM-L6-v2 (embedded:minilm-l6) vs a reference computed from the same package files.

The reference (tests/minilm_reference.py) is plain Python + numpy: its own safetensors reader, HF
tokenizers' BERT normalisation and WordPiece, BERT's forward pass one text at a time (no padding),
mean pooling and L2 normalisation as sentence-transformers does.
"""
import numpy as np
import pytest
import tensorflow as tf

import minilm_reference as ref
from conftest import TRAIN_CSV, read_rows
from sentences import parity_corpus

pytestmark = pytest.mark.slow  # loads TF models


@pytest.fixture(scope="module")
def minilm_dir():
    from components.encoder import MINILM, resolve_handle

    return resolve_handle(MINILM, log=lambda m: None)


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401

    return hub.load(minilm_dir)


@pytest.fixture(scope="module")
def corpus():
    # ~360 texts: 320 TREC questions, other scripts, emoji, edge cases, two 2,000-char texts (truncated).
    return parity_corpus() + [r["text"] for r in read_rows(TRAIN_CSV)[20::40]]


@pytest.fixture(scope="module")
def reference():
    return ref.load()


@pytest.fixture(scope="module")
def ref_tokens(reference, corpus):
    tokenizer, _, max_len = reference
    return [tokenizer.encode(t, max_len) for t in corpus]


@pytest.fixture(scope="module")
def tf_tokens(minilm, corpus):
    return minilm.tokenize(tf.constant(corpus)).to_list()


def test_in_graph_wordpiece_matches_the_reference(corpus, ref_tokens, tf_tokens):
    assert len(corpus) >= 300
    assert max(len(t) for t in ref_tokens) == 256  # the long texts are truncated to max_seq_length
    differing = [corpus[i] for i in range(len(corpus)) if ref_tokens[i] != tf_tokens[i]]
    assert differing == []


def test_embeddings_match_the_reference_forward_pass(corpus, reference, ref_tokens, minilm):
    _, weights, _ = reference
    expected = np.stack([ref.forward(weights, ids) for ids in ref_tokens])
    # Batches of 64 as the pipeline sends them: each padded to its longest text, the padding masked.
    got = np.concatenate([minilm(tf.constant(corpus[i:i + 64])).numpy() for i in range(0, len(corpus), 64)])
    assert got.shape == (len(corpus), 384) and got.dtype == np.float32
    cosine = np.sum(got * expected, axis=1)
    assert cosine.min() >= 0.9999, corpus[int(cosine.argmin())]
    assert np.abs(got - expected).max() <= 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_a_text_embeds_the_same_alone_and_in_a_padded_batch(minilm, corpus):
    batch = minilm(tf.constant(corpus[:40])).numpy()
    alone = np.stack([minilm(tf.constant([t])).numpy()[0] for t in corpus[:40:8]])
    np.testing.assert_allclose(batch[::8], alone, atol=2e-6)
