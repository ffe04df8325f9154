"""Unit tests (fast, no model) for closing the loop: the request log's queue, drops and rotation; the
active-learning ranking and dedup; the monitor's checks on synthetic statistics; span numbering."""
import csv
import glob
import json
import os
import threading

import numpy as np
import pytest

from ops.loop import ranking
from ops.serving.request_log import RequestLog, read_requests

PROBS = {"probabilities": [[0.7, 0.2, 0.1]], "classes": [["A", "B", "C"]], "label": ["A"], "score": [0.7]}


def _rows(directory):
    out = []
    for path in sorted(glob.glob(os.path.join(directory, "*.csv"))):
        with open(path, newline="", encoding="utf-8") as f:
            out += list(csv.DictReader(f))
    return out


def test_concurrent_requests_below_the_bound_are_all_logged(tmp_path):
    log = RequestLog(str(tmp_path), queue_requests=10_000)
    threads = [threading.Thread(target=lambda k=k: [log.record("m", 1, "serving_default", False,
                                                               [f"t{k}-{i}".encode()], PROBS) for i in range(200)])
               for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    rows = _rows(str(tmp_path))
    assert len(rows) == 1600 and log.stats() == {"written": 1600, "dropped": 0, "sampled_out": 0}
    assert {r["text"] for r in rows} == {f"t{k}-{i}" for k in range(8) for i in range(200)}


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path):
    log = RequestLog(str(tmp_path), queue_requests=5, start=False)  # writer not running: the queue fills
    for i in range(8):
        log.record("m", 1, "serving_default", False, [b"x", b"y"], {})
    assert log.dropped == 6  # 3 requests of 2 instances
    log.start()
    log.close()
    assert len(_rows(str(tmp_path))) == 10 and log.written == 10


def test_sampling_logs_about_the_rate(tmp_path):
    import random

    log = RequestLog(str(tmp_path), sample_rate=0.25, rng=random.Random(0))
    for _ in range(2000):
        log.record("m", 1, "s", False, [b"x"], {})
    log.close()
    assert 400 < log.written < 600 and log.written + log.sampled_out == 2000


def test_rotation_keeps_the_size_bound(tmp_path):
    log = RequestLog(str(tmp_path), max_file_bytes=2000, max_files=3)
    for i in range(500):
        log.record("m", 7, "s", False, [f"text number {i}".encode()], PROBS)
    log.close()
    files = glob.glob(os.path.join(str(tmp_path), "*.csv"))
    assert len(files) == 3
    record = max(len(",".join(r.values())) for r in _rows(str(tmp_path))) + 2
    assert all(os.path.getsize(f) <= 2000 + record for f in files)
    assert _rows(str(tmp_path))[-1]["text"] == "text number 499"  # the newest kept, the oldest gone


def test_a_sidecars_jsonl_is_read_with_ours(tmp_path):
    with open(tmp_path / "proxy.jsonl", "w") as f:
        f.write(json.dumps({"time": "2025-01-01T10:00:00Z", "text": "from the proxy",
                            "probabilities": {"A": 0.1, "B": 0.9}}) + "\n")
        f.write(json.dumps({"time": "2025-01-03T10:00:00+00:00", "text": "later"}) + "\n")
    log = RequestLog(str(tmp_path))
    log.record("m", 1, "s", False, [b"ours"], PROBS)
    log.close()
    frame = read_requests(str(tmp_path))
    assert list(frame["text"]) == ["from the proxy", "later", "ours"]
    assert frame["label"][0] == "B" and frame["score"][0] == 0.9 and frame["probabilities"][1] == {}
    from ops.serving.request_log import parse_time

    window = read_requests(str(tmp_path), parse_time("2025-01-01"), parse_time("2025-01-02"))
    assert list(window["text"]) == ["from the proxy"]


def test_strategies_rank_by_the_given_probabilities():
    probs = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.5, 0.5, 0.0], [0.34, 0.33, 0.33]])
    assert list(ranking.rank(probs, "margin")) == [2, 3, 1, 0]
    assert list(ranking.rank(probs, "entropy")) == [3, 1, 2, 0]
    assert sorted(ranking.rank(probs, "random", seed=1)) == [0, 1, 2, 3]


def test_dedup_exact_and_near_and_spread():
    texts = ["Who wrote Hamlet ?", "who  wrote HAMLET ?", "Where is Rome ?", "How far is the moon ?"]
    assert ranking.first_of_each(texts, [1, 0, 2, 3]) == [1, 2, 3]
    emb = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [0.7, 0.7]])
    assert ranking.pick([0, 1, 2, 3], emb, 3, near_duplicate=0.95) == [0, 2, 3]
    assert ranking.pick([0, 1, 2, 3], emb, 2, near_duplicate=1.0, clusters=np.array([0, 0, 0, 1])) == [0, 3]


def test_monitor_checks_on_synthetic_statistics():
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    from ops.loop.monitor_checks import drift_values, judge, oov_rate, vocabulary
    from pipelines.config import MonitorConfig

    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.drift_skew_info.add()
    info.path.step.append("text_length")
    info.drift_measurements.add(type=anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE,
                                value=0.42, threshold=1.0)
    assert drift_values(anomalies) == {"text_length": 0.42}
    checks = judge({"text_length": {"value": 0.42}, "label": {"value": 0.05}}, MonitorConfig())
    assert checks["text_length"]["moved"] and not checks["label"]["moved"]
    vocab = vocabulary(["who wrote hamlet", "where is rome"])
    assert oov_rate(["Who wrote Ulysses"], vocab) == pytest.approx(1 / 3)


def test_span_numbering(tmp_path):
    from ops.loop.spans import next_span

    assert next_span({}) == 1 and next_span({1: "a", 2: "b", 7: "c"}) == 8
    assert next_span(dict.fromkeys([3])) == 4


def test_labels_to_reach():
    from ops.study.active import labels_to_reach

    assert labels_to_reach([(100, 0.7), (200, 0.86), (300, 0.84)], 0.85) == 200
    assert labels_to_reach([(100, 0.7)], 0.85) is None


def test_config_knobs_are_checked():
    from components.errors import ConfigError
    from pipelines.config_loading import load_config

    with pytest.raises(ConfigError, match="monitor.min_requests"):
        load_config(None, ["monitor.min_requests=500"])
    with pytest.raises(ConfigError, match="active.strategy"):
        load_config(None, ["active.strategy=greedy"])
