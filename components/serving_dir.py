"""The TF Serving model directory: ``<serving_dir>/<version>/saved_model.pb``, the highest version served.

tf.io.gfile only (what TFX's fileio delegates to), so `predict` and `serve` list versions without the
~10 s TFX import.
"""
import os


def served_versions(serving_dir: str) -> list[int]:
    """Complete model versions under a TF Serving base directory, oldest first."""
    import tensorflow as tf

    if not tf.io.gfile.isdir(serving_dir):
        return []
    names = (n.rstrip("/") for n in tf.io.gfile.listdir(serving_dir))
    return sorted(int(n) for n in names
                  if n.isdigit() and tf.io.gfile.exists(os.path.join(serving_dir, n, "saved_model.pb")))
