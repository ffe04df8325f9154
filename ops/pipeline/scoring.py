"""A served version on rows: the model loaded once, texts scored a batch at a time, and the all-or-nothing
output file. Shared by `predict` (ops/pipeline/predict.py), its Beam path (predict_beam.py) and `evaluate`.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Iterable, Iterator

from components import names
from components.errors import NotFound, UserError
from components.rollout import read as rollout_state
from components.serving_dir import served_versions
from ops.args import say

BATCH = 256         # rows a model call: big enough to keep TF busy, small enough for bounded memory
PROGRESS_S = 10.0   # seconds between progress lines on a long file


@contextlib.contextmanager
def output(path: str | None):
    """stdout, or `path` written whole or not at all (a partial file, then renamed into place)."""
    if not path:
        yield sys.stdout
        return
    partial = f"{path}.partial"
    try:
        f = open(partial, "w", newline="", encoding="utf-8")
    except OSError as e:
        raise UserError(f"--out {path}: cannot write ({e.strerror})") from None
    try:
        with f:
            yield f
    except BaseException:
        os.remove(partial)
        raise
    os.replace(partial, path)


def served_model_dir(serving_dir: str, version: int | None = None) -> str:
    """<serving_dir>/<version>: the given version, else the served one (stable, not a canary on trial)."""
    versions = served_versions(serving_dir)
    if version is not None and version not in versions:
        raise NotFound(f"--version {version}: no such version under {serving_dir}; there are: "
                       + (", ".join(map(str, versions)) or "none"))
    return os.path.join(serving_dir, str(version)) if version is not None else newest_served_model(serving_dir)


def newest_served_model(serving_dir: str) -> str:
    """The served version's folder: the highest, or the model config's `stable` (components/rollout.py)."""
    stable = rollout_state(serving_dir).stable
    if stable is None:
        raise NotFound(f"no model has been pushed to {serving_dir} yet; run `transferline run` first "
                       "(or point --set paths.serving_dir=DIR at a TF Serving model directory)")
    return os.path.join(serving_dir, str(stable))


class Model:
    """A served version's serving_default signature (raw text in), as TF Serving runs it; loaded once."""

    def __init__(self, model_dir: str):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (the transform graph holds SentencePiece ops)

        self._tf = tf
        self._serve = tf.saved_model.load(model_dir).signatures[names.SERVING_DEFAULT]
        out = self._serve(**{names.TEXT: tf.constant([""])})
        self.classes = [c.decode() for c in out[names.CLASSES].numpy()[0]]

    def __call__(self, texts: list[str]):
        """(labels, scores, probabilities[len(texts), len(classes)]) as numpy."""
        out = self._serve(**{names.TEXT: self._tf.constant(texts, dtype=self._tf.string)})
        return ([b.decode() for b in out[names.TOP_CLASS].numpy()], out[names.TOP_SCORE].numpy(),
                out[names.PROBABILITIES].numpy())


def scored(model: Model, rows: Iterable[dict], column: str, batch: int = BATCH, label: str = "") -> Iterator:
    """(row, label, score, probabilities) for each row, the model run a batch at a time; with `label`, a
    progress line on stderr every PROGRESS_S seconds."""
    start = last = time.monotonic()
    done, chunk = 0, []
    for row in rows:
        chunk.append(row)
        if len(chunk) == batch:
            yield from _score(model, chunk, column, done)
            done, chunk = done + len(chunk), []
            if label and time.monotonic() - last >= PROGRESS_S:
                last = time.monotonic()
                say(f"{label}: {done:,} rows, {done / (last - start):,.0f} rows/s")
    if chunk:
        yield from _score(model, chunk, column, done)


def _score(model: Model, chunk: list[dict], column: str, before: int) -> Iterator:
    texts = []
    for i, row in enumerate(chunk):
        text = row.get(column)
        if not isinstance(text, str):
            raise UserError(f"row {before + i + 1} has no text in '{column}' (got {text!r})")
        texts.append(text)
    labels, scores, probabilities = model(texts)
    for i, row in enumerate(chunk):
        yield row, labels[i], float(scores[i]), probabilities[i]


def predict(model_dir: str, texts: list[str]) -> list[dict]:
    """Runs the model's serving_default signature (raw text in), as TF Serving would."""
    model = Model(model_dir)
    return [{"text": row[names.TEXT], "label": label, "score": score,
             "probabilities": dict(zip(model.classes, map(float, probs)))}
            for row, label, score, probs in scored(model, [{names.TEXT: t} for t in texts], names.TEXT)]
