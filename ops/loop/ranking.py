"""Which texts to label next: uncertainty sampling over the model's probabilities (pure numpy + scikit-learn).

Shared by `label-next` (over logged requests) and `study active` (over TREC's unlabelled pool). Uncertainty
sampling as in small-text / modAL: least margin (top-1 minus top-2 probability, smallest first), entropy
(highest first); random for comparison.
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np

from pipelines.config import ACTIVE_STRATEGIES as STRATEGIES  # the knob owns its values


def uncertainty(probs: np.ndarray, strategy: str) -> np.ndarray:
    """Higher = more informative. margin: -(p1 - p2); entropy: -sum p log p."""
    probs = np.asarray(probs, dtype=np.float64)
    if strategy == "margin":
        top2 = -np.sort(-probs, axis=1)[:, :2]
        return -(top2[:, 0] - (top2[:, 1] if probs.shape[1] > 1 else 0.0))
    if strategy == "entropy":
        return -np.sum(np.where(probs > 0, probs * np.log(np.clip(probs, 1e-300, None)), 0.0), axis=1)
    raise ValueError(f"no uncertainty for strategy {strategy!r}")


def rank(probs: np.ndarray, strategy: str, seed: int = 0) -> np.ndarray:
    """Indices, most informative first (random: a seeded permutation). Ties keep the input order."""
    n = len(probs)
    if strategy == "random":
        return np.random.default_rng(seed).permutation(n)
    return np.argsort(-uncertainty(probs, strategy), kind="stable")


def normalize(text: str) -> str:
    """The key exact duplicates share: Unicode NFKC, case-folded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def first_of_each(texts: list[str], order) -> list[int]:
    """``order`` without exact duplicates (after ``normalize``): the first of each kept."""
    seen, kept = set(), []
    for i in order:
        key = normalize(texts[i])
        if key not in seen:
            seen.add(key)
            kept.append(int(i))
    return kept


def pick(order, embeddings: np.ndarray | None, n: int, near_duplicate: float = 0.95,
         clusters: np.ndarray | None = None) -> list[int]:
    """The first n of ``order`` (positions into ``embeddings``) that are not near-duplicates (cosine >
    ``near_duplicate``) of one already picked; with ``clusters``, at most one per cluster until every cluster
    has one, then the rest in order."""
    unit = None
    if embeddings is not None:
        unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    picked: list[int] = []
    for spread in ((True, False) if clusters is not None else (False,)):
        used = {int(clusters[i]) for i in picked} if spread else set()
        for i in order:
            if len(picked) >= n:
                return picked
            if i in picked or (spread and int(clusters[i]) in used):
                continue
            if unit is not None and picked and float(np.max(unit[picked] @ unit[i])) > near_duplicate:
                continue
            picked.append(int(i))
            if spread:
                used.add(int(clusters[i]))
    return picked


def cluster(embeddings: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means cluster ids of the embeddings (scikit-learn), k capped by the number of rows."""
    from sklearn.cluster import KMeans

    k = max(1, min(k, len(embeddings)))
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(embeddings)
