"""The TF port of USE-multilingual-v3 vs the package's own numpy embedder."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from sentences import EDGE, parity_corpus, unknown_runs

pytestmark = pytest.mark.slow  # loads TF models, compiles or runs pipelines

UNK, BOS, EOS = 0, 1, 2


@pytest.fixture(scope="module")
def corpus():
    return parity_corpus()


@pytest.fixture(scope="module")
def tf_tokens(hub_encoder, corpus):
    return hub_encoder.tokenize(tf.constant(corpus)).to_list()


@pytest.fixture(scope="module")
def pkg_tokens(numpy_use, corpus):
    return [numpy_use._tokenizer.encode(t) for t in corpus]


@pytest.fixture(scope="module")
def tf_embeddings(hub_encoder, corpus):
    return hub_encoder(tf.constant(corpus)).numpy()


def numpy_forward(numpy_use, token_ids):
    """The package's numpy network on given token ids (bypassing its tokenizer)."""
    out = np.empty((1, 512), np.float32)
    numpy_use._model._encode_batch([token_ids], len(token_ids), out)
    return out[0]


def test_corpus_is_varied_and_large(corpus):
    assert len(corpus) >= 200
    assert "" in corpus and max(len(t) for t in corpus) >= 2000
    assert any(ord(c) > 0x1F000 for t in corpus for c in t)  # emoji
    assert any("\u4e00" <= c <= "\u9fff" for t in corpus for c in t)  # CJK


def test_embeddings_match_package_where_tokenisation_agrees(corpus, tf_tokens, pkg_tokens,
                                                            tf_embeddings, numpy_use):
    agree = [i for i in range(len(corpus)) if tf_tokens[i] == pkg_tokens[i]]
    assert len(agree) >= 200
    reference = numpy_use.encode([corpus[i] for i in agree])
    cosine = np.sum(tf_embeddings[agree] * reference, axis=1)
    assert cosine.min() >= 0.9999, corpus[agree[int(cosine.argmin())]]
    np.testing.assert_allclose(np.linalg.norm(tf_embeddings, axis=1), 1.0, atol=1e-5)
    assert tf_embeddings.shape == (len(corpus), 512) and tf_embeddings.dtype == np.float32


def test_network_matches_package_on_every_text(corpus, tf_tokens, tf_embeddings, numpy_use):
    """Same token ids in -> same vector out, for all texts (the tokenizer cases included)."""
    reference = np.stack([numpy_forward(numpy_use, ids) for ids in tf_tokens])
    assert np.sum(tf_embeddings * reference, axis=1).min() >= 0.9999
    assert np.abs(tf_embeddings - reference).max() <= 1e-5


def collapse_unknown_runs(ids):
    return [k for k, group in itertools.groupby(ids) for _ in ([0] if k == UNK else group)]


def test_tokenizer_differences_are_the_documented_ones(corpus, tf_tokens, pkg_tokens):
    """The in-graph tokenizer is SentencePiece's C++ library (as in TF-Hub's USE); the package's
    pure-Python port differs from it in exactly two documented ways (README, "Embedded encoder")."""
    differing = [i for i in range(len(corpus)) if tf_tokens[i] != pkg_tokens[i]]
    empty_like = [t for t in EDGE if not t.strip()]
    assert set(empty_like) | set(unknown_runs()) <= {corpus[i] for i in differing}
    assert len(differing) <= 12  # rare: the questions and most scripts tokenize identically
    for i in differing:
        if corpus[i] in empty_like:
            # Nothing left after normalisation: the package emits one <unk>, SentencePiece none.
            assert (pkg_tokens[i], tf_tokens[i]) == ([BOS, UNK, EOS], [BOS, EOS])
        else:
            # A run of out-of-vocabulary characters: one <unk> per character vs one per run.
            assert tf_tokens[i] == collapse_unknown_runs(pkg_tokens[i]) != pkg_tokens[i]
