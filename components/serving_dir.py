"""The TF Serving model directory: ``<serving_dir>/<version>/saved_model.pb``, the highest version served.

tf.io.gfile only (what TFX's fileio delegates to), so `predict` and `serve` read it without the ~10 s
TFX import. Layout names: components/names.py (STAGING_PREFIX, ROLLED_BACK_DIR, PROVENANCE).
"""
import json
import os

from components.names import PROVENANCE, ROLLED_BACK_DIR


def served_versions(serving_dir: str) -> list[int]:
    """Complete model versions under a TF Serving base directory, oldest first."""
    import tensorflow as tf

    if not tf.io.gfile.isdir(serving_dir):
        return []
    names = (n.rstrip("/") for n in tf.io.gfile.listdir(serving_dir))
    return sorted(int(n) for n in names
                  if n.isdigit() and tf.io.gfile.exists(os.path.join(serving_dir, n, "saved_model.pb")))


def provenance(model_dir: str) -> dict:
    """What the Pusher recorded in a pushed version (spans, training fingerprint, ...); {} if nothing."""
    import tensorflow as tf

    path = os.path.join(model_dir, PROVENANCE)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path, "r") as f:
        return json.loads(f.read())


def model_classes(model_dir: str) -> list[str]:
    """The class names a pushed (or candidate) model predicts, in its output order: its label vocabulary."""
    import tensorflow as tf

    from components.names import LABEL_VOCAB

    with tf.io.gfile.GFile(os.path.join(model_dir, "assets", LABEL_VOCAB)) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def class_change(served: list[str], candidate: list[str]) -> str:
    """'' when the two models predict the same classes; else the change in words ('added X; removed Y').
    The order may differ (each model's label ids come from its own transform graph, so TFMA scores each
    against its own ids); a different number of classes cannot be compared (TFMA's per-class metrics)."""
    added, removed = sorted(set(candidate) - set(served)), sorted(set(served) - set(candidate))
    return "; ".join(part for part in (f"added {', '.join(added)}" if added else "",
                                       f"removed {', '.join(removed)}" if removed else "") if part)


def model_fingerprint(model_dir: str) -> bytes:
    """The SavedModel's fingerprint.pb (hashes of graph, signatures and checkpoint); b"" if absent."""
    import tensorflow as tf

    path = os.path.join(model_dir, "fingerprint.pb")
    if not tf.io.gfile.exists(path):
        return b""
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def rolled_back_dir(serving_dir: str) -> str:
    return os.path.join(serving_dir, ROLLED_BACK_DIR)


def rolled_back_provenance(serving_dir: str) -> list[dict]:
    """The provenance of every version a rollback moved aside."""
    import tensorflow as tf

    aside = rolled_back_dir(serving_dir)
    names = tf.io.gfile.listdir(aside) if tf.io.gfile.exists(aside) else []
    return [provenance(os.path.join(aside, n.rstrip("/"))) for n in names]
