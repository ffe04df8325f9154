"""`transferline predict`: classify texts with the newest model under the TF Serving directory."""
from __future__ import annotations

import json
import os
import sys

from components import names
from components.errors import NotFound, UserError
from components.serving_dir import served_versions
from ops.args import add_config_args, config_from, say


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify texts with the newest pushed model")
    add_config_args(p)
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    p.add_argument("--file", metavar="FILE", help="one text per line; - for stdin")
    p.add_argument("--json", action="store_true", help="one JSON object per text, with all probabilities")
    p.set_defaults(func=command)


def command(args) -> int:
    config = config_from(args)
    texts = list(args.texts)
    if args.file:
        texts += _read_lines(args.file)
    if not texts:
        raise UserError("nothing to classify: give texts as arguments, or --file FILE (- for stdin)")
    model_dir = newest_served_model(config.serving_dir)
    say(f"model {model_dir}")
    for row in predict(model_dir, texts):
        print(json.dumps(row) if args.json else f"{row['label']}\t{row['score']:.3f}\t{row['text']}")
    return 0


def _read_lines(path: str) -> list[str]:
    try:
        with (sys.stdin if path == "-" else open(path, encoding="utf-8")) as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except FileNotFoundError:
        raise UserError(f"--file {path}: no such file") from None
    except UnicodeDecodeError as e:
        raise UserError(f"--file {path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def newest_served_model(serving_dir: str) -> str:
    versions = served_versions(serving_dir)
    if not versions:
        raise NotFound(f"no model has been pushed to {serving_dir} yet; run `transferline run` first "
                       "(or point --set paths.serving_dir=DIR at a TF Serving model directory)")
    return os.path.join(serving_dir, str(versions[-1]))


def predict(model_dir: str, texts: list[str]) -> list[dict]:
    """Runs the model's serving_default signature (raw text in), as TF Serving would."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the transform graph holds SentencePiece ops)

    serve = tf.saved_model.load(model_dir).signatures[names.SERVING_DEFAULT]
    out = serve(**{names.TEXT: tf.constant(texts, dtype=tf.string)})
    classes = [c.decode() for c in out[names.CLASSES].numpy()[0]] if texts else []
    return [{"text": t, "label": out[names.TOP_CLASS][i].numpy().decode(),
             "score": float(out[names.TOP_SCORE][i]),
             "probabilities": dict(zip(classes, map(float, out[names.PROBABILITIES][i].numpy())))}
            for i, t in enumerate(texts)]
