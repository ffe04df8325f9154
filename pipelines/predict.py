"""`transferline predict`: classify texts with the newest model under the TF Serving directory."""
from __future__ import annotations

import os

from components import features
from components.serving_dir import served_versions


class NoServedModel(Exception):
    """Nothing has been pushed yet; the message says how to get a model."""


def newest_served_model(serving_dir: str) -> str:
    versions = served_versions(serving_dir)
    if not versions:
        raise NoServedModel(f"no model has been pushed to {serving_dir} yet; run `transferline run` first "
                            "(or point --set paths.serving_dir=DIR at a TF Serving model directory)")
    return os.path.join(serving_dir, str(versions[-1]))


def predict(model_dir: str, texts: list[str]) -> list[dict]:
    """Runs the model's serving_default signature (raw text in), as TF Serving would."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the transform graph holds SentencePiece ops)

    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    out = serve(text=tf.constant(texts, dtype=tf.string))
    classes = [c.decode() for c in out[features.CLASSES].numpy()[0]] if texts else []
    return [{"text": t, "label": out[features.TOP_CLASS][i].numpy().decode(),
             "score": float(out[features.TOP_SCORE][i]),
             "probabilities": dict(zip(classes, map(float, out[features.PROBABILITIES][i].numpy())))}
            for i, t in enumerate(texts)]
