"""Phase 1's input (components/train_data.py) on small gzipped TFRecords written here, and which transformed
features each trainer.mode makes Transform write (components/modes.py). No pipeline run, no model."""
import os

import numpy as np
import pytest
import tensorflow as tf

from components import names, train_data
from components.modes import TRANSFORM_RAW_TEXT, TRANSFORM_WIDE, reachable_modes, transform_features
from pipelines.config import TrainerConfig

ROWS, DIM = 50, 4
# The transform output's spec, plus a "huge" feature the records hold as bytes: parsing it as declared fails.
SPEC = {names.EMBEDDING: tf.io.FixedLenFeature([DIM], tf.float32),
        names.LABEL_ID: tf.io.FixedLenFeature([], tf.int64),
        names.NGRAM_IDS: tf.io.VarLenFeature(tf.int64),
        "huge": tf.io.FixedLenFeature([1000], tf.float32)}


def _write(path, rows=ROWS):
    with tf.io.TFRecordWriter(path, options="GZIP") as w:
        for i in range(rows):
            w.write(tf.train.Example(features=tf.train.Features(feature={
                names.EMBEDDING: tf.train.Feature(float_list=tf.train.FloatList(value=[float(i)] * DIM)),
                names.LABEL_ID: tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3])),
                names.NGRAM_IDS: tf.train.Feature(int64_list=tf.train.Int64List(value=list(range(i % 4 + 1)))),
                "huge": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x" * 5000]))})).SerializeToString())


@pytest.fixture
def files(tmp_path):
    paths = [str(tmp_path / f"part-{i}.gz") for i in range(2)]
    for p in paths:
        _write(p)
    return str(tmp_path / "part-*")


def _rows(dataset):
    return sorted(float(x) for features, _ in dataset for x in features[names.EMBEDDING][:, 0].numpy())


def test_only_the_modes_features_are_parsed(files):
    spec = train_data.feature_spec(SPEC, [names.EMBEDDING])
    data = train_data.dataset(files, spec, [names.EMBEDDING], batch_size=8, cache="")
    features, label = data.element_spec
    assert set(features) == {names.EMBEDDING} and label.dtype == tf.int64
    assert _rows(data) == sorted(float(i) for i in range(ROWS) for _ in range(2))  # "huge" never parsed
    # Negative control: the same records with "huge" in the spec do not parse (bytes, declared float).
    with pytest.raises(tf.errors.InvalidArgumentError):
        list(train_data.dataset(files, train_data.feature_spec(SPEC, [names.EMBEDDING, "huge"]),
                                [names.EMBEDDING, "huge"], batch_size=8, cache=""))
    with pytest.raises(ValueError, match="another trainer.mode"):
        train_data.feature_spec(SPEC, [names.EMBEDDING, names.NGRAM_WEIGHTS])


def test_wide_features_come_through_sparse(files):
    keys = [names.EMBEDDING, names.NGRAM_IDS]
    data = train_data.dataset(files, train_data.feature_spec(SPEC, keys), keys, batch_size=8, cache="")
    features, labels = next(iter(data))
    assert isinstance(features[names.NGRAM_IDS], tf.SparseTensor)
    counts = np.bincount(features[names.NGRAM_IDS].indices[:, 0].numpy(), minlength=8)
    np.testing.assert_array_equal(counts, features[names.EMBEDDING][:, 0].numpy().astype(int) % 4 + 1)


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_passes_after_the_first_read_the_cache_not_the_tfrecords(files, tmp_path, where):
    cache = "" if where == "memory" else str(tmp_path / "cache" / "train")
    os.makedirs(tmp_path / "cache")
    spec = train_data.feature_spec(SPEC, [names.EMBEDDING])
    data = train_data.dataset(files, spec, [names.EMBEDDING], batch_size=8, cache=cache, shuffle=True, seed=1)
    # Negative control: the same dataset, its cache never filled (made now, while the files exist).
    fresh = train_data.dataset(files, spec, [names.EMBEDDING], batch_size=8, cache="")
    first = [float(x) for f, _ in data for x in f[names.EMBEDDING][:, 0].numpy()]
    for path in tf.io.gfile.glob(files):
        os.remove(path)
    second = [float(x) for f, _ in data for x in f[names.EMBEDDING][:, 0].numpy()]
    assert sorted(first) == sorted(second) and len(first) == 2 * ROWS
    assert first != second  # shuffled after the cache: a new order each pass
    if where == "disk":
        assert any(f.startswith("train") for f in os.listdir(tmp_path / "cache"))
    with pytest.raises(tf.errors.NotFoundError):  # it needs the files
        list(fresh)


def test_repeated_training_data_crosses_passes_in_one_iterator(files):
    """The Trainer's epochs are steps of an endless dataset (trainer.eval_every_examples), each pass reshuffled."""
    spec = train_data.feature_spec(SPEC, [names.EMBEDDING])
    data = train_data.dataset(files, spec, [names.EMBEDDING], batch_size=10, cache="", shuffle=True, seed=3,
                              repeat=True)
    seen = [float(x) for f, _ in data.take(3 * 2 * ROWS // 10) for x in f[names.EMBEDDING][:, 0].numpy()]
    passes = [seen[i * 2 * ROWS:(i + 1) * 2 * ROWS] for i in range(3)]
    assert all(sorted(p) == sorted(passes[0]) for p in passes) and passes[0] != passes[1]


def test_count_records_and_the_cache_choice(files):
    n, size = train_data.count_records(files)
    assert n == 2 * ROWS and size > 2 * ROWS * 5000  # "huge" is in every serialized record
    head = train_data.feature_spec(SPEC, [names.EMBEDDING])
    assert train_data.row_bytes(head, size / n) == DIM * 4 + 8  # exact: fixed-shape features only
    wide = train_data.feature_spec(SPEC, [names.EMBEDDING, names.NGRAM_IDS])
    assert train_data.row_bytes(wide, size / n) == size / n  # variable length: the record's size bounds it
    assert train_data.cache_target(1000, 2048, 2, "/tmp/x", "train") == ""  # 2.0 MB: fits in 2 MB
    assert train_data.cache_target(1025, 2048, 2, "/tmp/x", "train") == "/tmp/x/train"


def test_transform_writes_the_ngrams_and_the_text_only_for_a_mode_that_reads_them():
    hp = {k: v for k, v in vars(TrainerConfig()).items()}
    features = {mode: transform_features(mode, hp) for mode in ("head", "wide_deep", "fine_tune", "auto")}
    assert features["head"] == {TRANSFORM_WIDE: False, TRANSFORM_RAW_TEXT: False}
    assert features["wide_deep"] == {TRANSFORM_WIDE: True, TRANSFORM_RAW_TEXT: False}
    assert features["fine_tune"] == {TRANSFORM_WIDE: False, TRANSFORM_RAW_TEXT: True}
    # auto with the shipped thresholds: fine_tune from 400 examples on, so wide_deep (from 1,000,000) never.
    assert features["auto"] == {TRANSFORM_WIDE: False, TRANSFORM_RAW_TEXT: True}
    assert reachable_modes("auto", {**hp, "auto_wide_deep_min_examples": 100}) == {"head", "wide_deep", "fine_tune"}
    with pytest.raises(ValueError):
        reachable_modes("widedeep", hp)
