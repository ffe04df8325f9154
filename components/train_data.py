"""Phase 1's input: the transformed features one mode reads, parsed once and cached, then shuffled and batched.

TFX's own reader (tf_dataset_factory) parses every transformed feature of every record on each pass over the
data: the 512-float embedding, the n-gram ids and weights, the raw text. Phase 1 reads only the features of
its mode (the transformed feature spec, less the rest, before parsing), parses each record once and caches
the parsed tensors: in memory when they fit under trainer.cache_in_memory_max_mb, else in a file on local
disk. Every pass after the first reads the cache, never the TFRecords. Shuffling comes after the cache, so
each pass still sees a new order. Phase 2 (fine_tune, raw text) keeps TFX's reader (components/trainer.py).
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from components import names

PARSE_BATCH = 1024  # records parsed per parse_example call: one vectorised call, not one per record
SHUFFLE_BUFFER = 10000  # rows, as TFX's reader (tfxio.TensorFlowDatasetOptions.shuffle_buffer_size)


def file_list(patterns) -> list[str]:
    """The files of a TFX split pattern (or list of them), sorted: the same order on every run."""
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    return sorted(f for p in patterns for f in tf.io.gfile.glob(p))


def count_records(files) -> tuple[int, int]:
    """(records, their serialized bytes) in gzipped TFRecord files (as TFX writes them), in one pass in-graph."""
    records = tf.data.TFRecordDataset(file_list(files), compression_type="GZIP")
    n, size = records.reduce((np.int64(0), np.int64(0)),
                             lambda acc, r: (acc[0] + 1, acc[1] + tf.cast(tf.strings.length(r), tf.int64)))
    return int(n), int(size)


def feature_spec(transformed_spec: dict, keys: list[str]) -> dict:
    """The parse spec of `keys` and the label, out of the whole transformed feature spec."""
    missing = [k for k in [*keys, names.LABEL_ID] if k not in transformed_spec]
    if missing:
        raise ValueError(f"the transform output has no {missing} (it has {sorted(transformed_spec)}): the "
                         "Transform ran for another trainer.mode; rerun the pipeline with this config")
    return {k: transformed_spec[k] for k in [*keys, names.LABEL_ID]}


def row_bytes(spec: dict, serialized_bytes_per_row: float) -> float:
    """Bytes a parsed row takes in the cache: exact for fixed-shape features; with a variable-length one
    (the n-grams), the serialized record's size (the whole record: an upper bound)."""
    if all(isinstance(s, tf.io.FixedLenFeature) for s in spec.values()):
        return float(sum(int(np.prod(s.shape or [1])) * s.dtype.size for s in spec.values()))
    return serialized_bytes_per_row


def cache_target(rows: int, bytes_per_row: float, max_mb: float, local_dir: str, name: str) -> str:
    """'' (in memory) when `rows` parsed rows fit under `max_mb`, else a cache file under `local_dir`."""
    return "" if rows * bytes_per_row <= max_mb * 2**20 else os.path.join(local_dir, name)


def dataset(files, spec: dict, keys: list[str], batch_size: int, cache: str, shuffle: bool = False,
            seed: int | None = None, repeat: bool = False) -> tf.data.Dataset:
    """(features {key: tensor}, label) batches of `files` (gzipped tf.Examples), parsed with `spec` only.

    cache: '' caches in memory, else the path of the cache file. shuffle: after the cache, reshuffled on
    every pass; repeat: endlessly (the Trainer counts steps, not passes).
    """
    data = tf.data.TFRecordDataset(file_list(files), compression_type="GZIP",
                                   num_parallel_reads=tf.data.AUTOTUNE)
    data = data.batch(PARSE_BATCH).map(lambda records: tf.io.parse_example(records, spec),
                                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    data = data.cache(cache).unbatch()
    if shuffle:
        data = data.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()
    data = data.batch(batch_size).map(lambda row: ({k: row[k] for k in keys}, row[names.LABEL_ID]))
    return data.prefetch(tf.data.AUTOTUNE)
