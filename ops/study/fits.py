"""The study's arms, each trained on one subset: the pipeline's own models (components/model.py) and the baseline.

  use_head   the head on frozen embeddings, early-stopped on a stratified 20 % holdout
  wide_deep  the same plus the linear n-gram path; its TF-IDF is computed here with scikit-learn to match
             the transform's (lower-cased words and punctuation, 1..ngram_max-grams, the ngram_vocab_size
             most frequent, tf = count / n-grams in the text, idf = 1 + ln((1 + N) / (1 + df))), on the
             subset only, as Transform analyses the training split only
  fine_tune  use_head's trained head, then phase 2 (the encoder inside, trainable) on the texts, early-stopped
             on the same holdout, kept only when better on it (components.modes.keep_phase2)
  tfidf_lr   TF-IDF uni+bigrams (sublinear tf) + logistic regression on the whole subset (no holdout needed)
"""
from __future__ import annotations

import time

import numpy as np

from ops.study.data import split_holdout

MODELS = {  # arm -> its name in tables and plots
    "use_head": "frozen USE + head", "wide_deep": "wide_deep", "fine_tune": "fine_tune",
    "auto": "auto", "tfidf_lr": "TF-IDF + LR"}
TRAINED = ("use_head", "wide_deep", "fine_tune", "tfidf_lr")  # auto trains nothing: it is the arm it picks
TOKEN = r"[^\w\s']|[\w']+"  # a word, or one punctuation mark: what the transform's regex + split give


def _early_stopping(patience):
    import tf_keras

    return tf_keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)


def _predict(model, inputs, batch=256):
    # A direct call, not model.predict: predict traces a new tf.function per model (retracing warnings).
    import tensorflow as tf

    if isinstance(inputs, list):  # texts
        return np.concatenate([model(tf.constant(inputs[i:i + batch]), training=False).numpy()
                               for i in range(0, len(inputs), batch)]).argmax(axis=1)
    return model(inputs, training=False).numpy().argmax(axis=1)


def _fit_info(history, fit, hold):
    val = history.history["val_loss"]
    return {"n_fit": len(fit), "n_holdout": len(hold), "epochs": len(val), "best_epoch": int(np.argmin(val)) + 1}


def fit_use_head(x, y, n_classes, x_test, hp, seed, split):
    """Returns (test predictions, info, the trained model: fine_tune's phase 1)."""
    model, info = train_head(x, y, n_classes, hp, seed, split)
    return _predict(model, x_test), info, model


def train_head(x, y, n_classes, hp, seed, split=None):
    """(the trained head, info): the head early-stopped on the holdout of ``split`` (fit, hold), by default a
    stratified one (`study active`'s learner)."""
    import tf_keras

    from components.model import build_model

    fit, hold = split or split_holdout(y, seed)
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(hp["seed"] + seed)
    model = build_model("head", x.shape[1], n_classes, 1, hp)
    history = model.fit(x[fit], y[fit], validation_data=(x[hold], y[hold]), epochs=hp["max_epochs"],
                        batch_size=hp["batch_size"], verbose=0,
                        callbacks=[_early_stopping(hp["early_stopping_patience"])])
    return model, _fit_info(history, fit, hold)


def tfidf_features(texts, test_texts, ngram_max, vocab_size):
    """(train, test) CSR TF-IDF over the training texts' capped n-gram vocabulary + one out-of-vocabulary column."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(lowercase=True, token_pattern=TOKEN, ngram_range=(1, ngram_max),
                                 max_features=vocab_size)
    analyzer = vectorizer.build_analyzer()

    def counts_with_oov(ts, counts):
        total = np.array([len(analyzer(t)) for t in ts])
        oov = (total - np.asarray(counts.sum(axis=1)).ravel()).reshape(-1, 1)
        return sp.hstack([counts, sp.csr_matrix(oov)]).tocsr(), np.maximum(total, 1)

    train, train_total = counts_with_oov(texts, vectorizer.fit_transform(texts))
    df = np.asarray((train > 0).sum(axis=0)).ravel()
    idf = 1.0 + np.log((1.0 + train.shape[0]) / (1.0 + df))  # tft.tfidf's smoothed idf

    def weigh(counts, total):
        return sp.csr_matrix(counts.multiply(1.0 / total[:, None]).multiply(idf[None, :]))

    return weigh(train, train_total), weigh(*counts_with_oov(test_texts, vectorizer.transform(test_texts)))


def _sparse_pair(matrix):
    """(ids, weights) SparseTensors [rows, max n-grams] from a CSR matrix, as the transform outputs them."""
    import tensorflow as tf

    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    lengths = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    cols = np.arange(len(rows)) - np.repeat(matrix.indptr[:-1], lengths)
    indices = np.stack([rows, cols], axis=1).astype(np.int64)
    shape = [matrix.shape[0], max(1, int(lengths.max(initial=0)))]
    return (tf.SparseTensor(indices, matrix.indices.astype(np.int64), shape),
            tf.SparseTensor(indices, matrix.data.astype(np.float32), shape))


def _features(x, matrix, idx):
    from components import names

    ids, weights = _sparse_pair(matrix[idx])
    return {names.EMBEDDING: x[idx], names.NGRAM_IDS: ids, names.NGRAM_WEIGHTS: weights}


def fit_wide_deep(x, texts, y, n_classes, x_test, test_texts, hp, seed, split, ngram_max, vocab_size):
    import tensorflow as tf
    import tf_keras

    from components.model import build_model

    fit, hold = split
    train_m, test_m = tfidf_features([texts[i] for i in fit], test_texts, ngram_max, vocab_size)
    # The holdout is scored with the fit part's vocabulary, as the eval split is with the train split's.
    _, hold_m = tfidf_features([texts[i] for i in fit], [texts[i] for i in hold], ngram_max, vocab_size)
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(hp["seed"] + seed)
    model = build_model("wide_deep", x.shape[1], n_classes, train_m.shape[1], hp)
    train = tf.data.Dataset.from_tensor_slices((_features(x[fit], train_m, slice(None)), y[fit]))
    train = train.shuffle(len(fit), seed=seed).batch(hp["batch_size"])
    hold_ds = tf.data.Dataset.from_tensors((_features(x[hold], hold_m, slice(None)), y[hold]))
    history = model.fit(train, validation_data=hold_ds, epochs=hp["max_epochs"], verbose=0,
                        callbacks=[_early_stopping(hp["early_stopping_patience"])])
    pred = model(_features(x_test, test_m, slice(None)), training=False).numpy().argmax(axis=1)
    return pred, _fit_info(history, fit, hold)


def fine_tune(head, texts, y, test_texts, hp, split, handle):
    """Phase 2 on `head` (use_head's model, trained): returns (test predictions, info)."""
    import tensorflow as tf

    from components.model import build_fine_tune
    from components.modes import keep_phase2

    fit, hold = split
    model = build_fine_tune(head, handle, hp)
    fit_x, hold_x = tf.constant([texts[i] for i in fit]), tf.constant([texts[i] for i in hold])
    batch = hp["fine_tune_batch_size"]

    def evaluate():
        loss, accuracy = model.evaluate(hold_x, y[hold], batch_size=batch, verbose=0)
        return {"loss": float(loss), "accuracy": float(accuracy)}

    phase1, weights = evaluate(), model.get_weights()
    t0 = time.monotonic()
    history = model.fit(fit_x, y[fit], validation_data=(hold_x, y[hold]), epochs=hp["fine_tune_max_epochs"],
                        batch_size=batch, verbose=0, shuffle=True,
                        callbacks=[_early_stopping(hp["fine_tune_patience"])])
    seconds = time.monotonic() - t0
    phase2 = evaluate()
    kept, decision = keep_phase2(phase1, phase2)
    if not kept:
        model.set_weights(weights)
    epochs = len(history.history["val_loss"])
    info = {**_fit_info(history, fit, hold), "phase1_holdout_accuracy": phase1["accuracy"],
            "phase2_holdout_accuracy": phase2["accuracy"], "phase_kept": 2 if kept else 1,
            "phase2_examples_per_second": round(epochs * len(fit) / seconds, 1)}
    return _predict(model, list(test_texts)), info


def fit_tfidf_lr(texts, y, test_texts, seed):
    """TF-IDF uni+bigrams + logistic regression (the pipeline's reference model, components/references.py),
    on the whole subset (no epochs, so no holdout needed)."""
    from components.references import tfidf_lr

    model = tfidf_lr(seed)
    model.fit(texts, y)
    return model.predict(test_texts), {"n_fit": len(texts), "n_holdout": 0}
