"""The monitor's off_topic check on TREC: false alarms on in-distribution traffic, detection of off-topic traffic.

    python bench/monitor_topic_shift.py [--draws 200] [--requests 100] [--set monitor.topic_quantile=0.02 ...]

The training texts are data/trec's (distinct, sampled to monitor.topic_sample as monitor does), embedded with
encoder.handle. Each draw is `--requests` requests (monitor.min_requests by default): in-distribution ones from
data/trec-test (the held-out test questions) or from the training questions left out of the sample, off-topic
ones from tests/data/off_topic_questions.csv (and data/chatterbot-topics' non-trivia prompts). The statistic is
ops/loop/monitor_checks.py's topic_shift, judged with the config's bounds. A request's similarity does not depend
on the other requests, so each pool is embedded and scored once and the draws resample the scores.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _texts(path, column="text", skip=None):
    with open(path, newline="", encoding="utf-8") as f:
        return [r[column] for r in csv.DictReader(f) if not skip or not skip(r)]


def main() -> int:
    from components.encoder import embed_texts
    from ops.loop.monitor_checks import judge, nearest_similarity, sample, topic_shift
    from pipelines.config_loading import load_config

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--requests", type=int, default=0, help="requests a draw (default monitor.min_requests)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    config = load_config(None, args.set)
    m, n = config.monitor, args.requests or config.monitor.min_requests
    train = sorted(set(_texts(os.path.join(REPO, "data", "trec", "span-1", "questions.csv"))))
    reference = sample(train, m.topic_sample)
    pools = {"trec_test": _texts(os.path.join(REPO, "data", "trec-test", "questions.csv")),
             "trec_train_left_out": sorted(set(train) - set(reference)),
             "off_topic": _texts(os.path.join(REPO, "tests", "data", "off_topic_questions.csv")),
             "chatterbot": _texts(os.path.join(REPO, "data", "chatterbot-topics", "prompts.csv"), "prompt",
                                  skip=lambda r: r["topic"] == "trivia")}
    embed = lambda texts: embed_texts(config.encoder.handle, config.encoder.cache_dir, texts, log=lambda _: None)
    bank = embed(reference)
    base = topic_shift(bank, bank[:1], m.topic_quantile, m.topic_neighbours)  # the threshold
    sims = {k: nearest_similarity(embed(v), bank, m.topic_neighbours) for k, v in pools.items() if v}
    threshold = base["similarity_threshold"]
    print(f"{len(reference)} training texts (of {len(train)} distinct), quantile {m.topic_quantile}, "
          f"{m.topic_neighbours} neighbours: similarity threshold {threshold:.3f}; bound: share - quantile > "
          f"{m.max_off_topic_increase}; {args.draws} draws of {n} requests")
    for k, v in sims.items():
        print(f"  {k:20} {len(v):5} texts, below the threshold: {np.mean(v < threshold):.3f}")
    rng = np.random.default_rng(0)

    def rate(inside: str, outside: str, share: float) -> tuple[float, float]:
        moved, values = 0, []
        for _ in range(args.draws):
            k = int(round(share * n))
            drawn = np.concatenate([rng.choice(sims[inside], n - k), rng.choice(sims[outside], k, replace=False)])
            value = float(np.mean(drawn < threshold)) - m.topic_quantile
            values.append(value)
            moved += judge({"off_topic": {"value": value}}, m)["off_topic"]["moved"]
        return moved / args.draws, float(np.mean(values))

    for inside in ("trec_test", "trec_train_left_out"):
        if inside not in sims:
            continue
        alarms, mean = rate(inside, "off_topic", 0.0)
        print(f"false alarms, {inside} traffic: {alarms:.3f} (mean value {mean:+.3f})")
    for outside in ("off_topic", "chatterbot"):
        for share in (0.1, 0.2, 0.3):
            found, mean = rate("trec_test", outside, share)
            print(f"detected, trec_test + {share:.0%} {outside}: {found:.3f} (mean value {mean:+.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
