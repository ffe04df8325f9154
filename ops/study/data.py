"""The study's data: its CSV rows, the stratified subsets every arm trains on, and their fingerprints.

Below the study's commands and fits (ops/study/labels.py, active.py, fits.py), and what bench/ reuses.
"""
from __future__ import annotations

import csv
import hashlib
import os

import numpy as np

from components.errors import ConfigError
from pipelines.config import REPO_ROOT

HOLDOUT = 0.2  # the head's early-stopping holdout: the pipeline's 4:1 train/eval split


def read_rows(paths: list[str], what: str) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"text", "label"} <= set(reader.fieldnames or ()):
                raise ConfigError(f"{path}: {what} CSV needs columns text,label, has {reader.fieldnames}")
            for row in reader:
                texts.append(row["text"] or "")
                labels.append(row["label"])
    if not texts:
        raise ConfigError(f"no {what} rows in {', '.join(paths)}")
    return texts, labels


def _take(y: np.ndarray, k: int, rng: np.random.Generator, keep_one: bool = False) -> np.ndarray:
    """k indices into y, classes in proportion (largest remainder), each class at least once when k allows.

    keep_one leaves every class one row outside the draw (for the holdout: the rest must still train).
    """
    counts = np.bincount(y)
    hi = np.maximum(counts - 1, 0) if keep_one else counts
    k = min(k, int(hi.sum()))
    lo = np.minimum(hi, 1) if k >= np.count_nonzero(hi) else np.zeros_like(hi)
    share = counts * k / len(y)
    quota = np.clip(np.floor(share).astype(int), lo, hi)
    while quota.sum() != k:  # hand out (or take back) one row at a time, furthest from its share first
        step = 1 if quota.sum() < k else -1
        room = quota < hi if step > 0 else quota > lo
        quota[np.argmax(np.where(room, (share - quota) * step, -np.inf))] += step
    picked = [rng.choice(np.flatnonzero(y == c), q, replace=False) for c, q in enumerate(quota) if q]
    return np.sort(np.concatenate(picked))


def draw_subset(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """The training subset for (size, seed): stratified, deterministic; size 0 (or len(y)) = all rows."""
    if size in (0, len(y)):
        return np.arange(len(y))
    return _take(y, size, np.random.default_rng([seed, size]))


def split_holdout(y_sub: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, holdout) positions within a subset: a stratified 20 % holdout for early stopping."""
    hold = _take(y_sub, max(1, round(HOLDOUT * len(y_sub))), np.random.default_rng([seed, len(y_sub), 1]),
                 keep_one=True)
    return np.setdiff1d(np.arange(len(y_sub)), hold), hold


def shown(path: str) -> str:
    """Repository paths relative (the checked-in JSON names no machine), others as given."""
    path = os.path.abspath(path)
    return os.path.relpath(path, REPO_ROOT) if path.startswith(REPO_ROOT + os.sep) else path


def fingerprint(idx: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(idx, np.int64).tobytes()).hexdigest()[:12]
