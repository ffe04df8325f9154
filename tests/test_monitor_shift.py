"""Monitor sees a topic shift (issue 29): the off_topic check's statistics on synthetic embeddings (fast), and
the CLI end to end on a real model with a real request log (slow): TREC questions fine, a third off-topic
questions (tests/data/off_topic_questions.csv: support, coding, advice, opinion ... none of TREC's) drift."""
import json
import os
import shutil
import time

import numpy as np
import pytest

from conftest import REPO, TEST_CSV, read_rows, run_cli
from ops.loop.monitor_checks import judge, nearest_similarity, sample, topic_shift
from pipelines.config import MonitorConfig

OFF_TOPIC_CSV = os.path.join(REPO, "tests", "data", "off_topic_questions.csv")


def _cluster(rng, centre, n, spread=0.3):
    return centre + spread * rng.standard_normal((n, len(centre)))


def test_nearest_similarity_is_the_mean_of_the_k_nearest_and_leaves_one_out():
    bank = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    sims = nearest_similarity(np.array([[3.0, 0.0]]), bank, 2)
    assert sims == pytest.approx([(1.0 + 2 ** -0.5) / 2])  # vectors need not be normalized
    loo = nearest_similarity(bank, bank, 1, leave_one_out=True, batch=2)  # across batches, too
    assert loo == pytest.approx([2 ** -0.5, 2 ** -0.5, 2 ** -0.5])
    assert nearest_similarity(bank, bank, 1) == pytest.approx([1.0, 1.0, 1.0])
    assert nearest_similarity(bank, bank, 99, leave_one_out=True).shape == (3,)  # k capped at the bank


def test_traffic_like_the_training_data_sits_at_the_quantile_off_topic_traffic_moves():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 32))
    training = np.concatenate([_cluster(rng, c, 200) for c in centres])
    like = np.concatenate([_cluster(rng, c, 40) for c in centres])
    same = topic_shift(training, like, quantile=0.05, neighbours=10)
    assert abs(same["value"]) < 0.05 and same["expected"] == 0.05 and len(same["similarities"]) == 200
    assert not judge({"off_topic": same}, MonitorConfig())["off_topic"]["moved"]

    elsewhere = _cluster(rng, rng.standard_normal(32), 100)
    mixed = np.concatenate([like[:140], elsewhere[:60]])  # 30 % off-topic
    shifted = topic_shift(training, mixed, quantile=0.05, neighbours=10)
    assert shifted["share"] == pytest.approx(0.3, abs=0.06) and shifted["value"] > 0.2
    assert shifted["median_similarity"] < same["median_similarity"]
    assert judge({"off_topic": shifted}, MonitorConfig())["off_topic"]["moved"]
    assert np.all(shifted["similarities"][140:] < shifted["similarity_threshold"])


def test_threshold_is_the_quantile_of_held_out_training_similarities():
    rng = np.random.default_rng(1)
    training = rng.standard_normal((300, 16))
    held_out = nearest_similarity(training, training, 5, leave_one_out=True)
    for q in (0.02, 0.1, 0.3):
        figures = topic_shift(training, training[:10], quantile=q, neighbours=5)
        assert figures["similarity_threshold"] == pytest.approx(np.quantile(held_out, q))
        assert figures["median_training_similarity"] == pytest.approx(np.median(held_out))
    with pytest.raises(ValueError):
        topic_shift(training[:1], training, 0.05, 5)


def test_false_alarms_are_rare_on_traffic_drawn_like_the_training_data():
    """100 requests like the training data, 200 draws: the default bounds alarm in few of them."""
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((8, 32))
    training = np.concatenate([_cluster(rng, c, 60) for c in centres])
    monitor = MonitorConfig()
    alarms = 0
    for _ in range(200):
        traffic = np.concatenate([_cluster(rng, c, 1) for c in centres[rng.integers(0, 8, 100)]])
        figures = topic_shift(training, traffic, monitor.topic_quantile, monitor.topic_neighbours)
        alarms += judge({"off_topic": figures}, monitor)["off_topic"]["moved"]
    assert alarms / 200 < 0.05


def test_sample_is_seeded_capped_and_keeps_the_order():
    texts = [f"t{i}" for i in range(50)]
    assert sample(texts, 100) == texts
    picked = sample(texts, 10)
    assert len(picked) == 10 == len(set(picked)) and picked == sample(texts, 10)
    assert picked == sorted(picked, key=texts.index)


def test_the_off_topic_set_is_same_format_questions():
    rows = read_rows(OFF_TOPIC_CSV)
    assert len(rows) >= 150 and len({r["text"] for r in rows}) == len(rows)
    assert all(r["text"].endswith(" ?") for r in rows)
    assert "trivia" not in {r["topic"] for r in rows}


# ---------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def shifted_traffic(slice_runs, tmp_path_factory):
    """A work dir of its own on the slice's model (its MLMD copied: monitor writes an execution there), and
    traffic through `serve`: 140 TREC test questions, then 100 more with 50 off-topic questions (33 %)."""
    from ops.serving.serve import ModelServer
    from pipelines.config_loading import load_config
    from serve_helpers import PREDICT, request

    root = tmp_path_factory.mktemp("shift")
    work = root / "work"
    shutil.copytree(slice_runs.serving_dir, work / "serving")
    shutil.copy(slice_runs.metadata_path, work / "metadata.sqlite")
    config_path = root / "config.toml"
    with open(slice_runs.config) as f:
        config_path.write_text(f.read().replace(slice_runs.work_dir, str(work)))
    config = load_config(str(config_path), ["serve.port=0"])
    gate = {r["text"] for r in read_rows(os.path.join(slice_runs.root, "test", "questions.csv"))}
    trec = [r["text"] for r in read_rows(TEST_CSV) if r["text"] not in gate]
    off_topic = [r["text"] for r in read_rows(OFF_TOPIC_CSV)]
    server = ModelServer(config, log=lambda m: None).start()
    try:
        for i in range(0, 140, 20):
            assert request(server.url, PREDICT, {"instances": trec[i:i + 20]})[0] == 200
        time.sleep(1.1)
        shift_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        time.sleep(1.1)
        mixed = trec[140:240] + off_topic[::3][:50]
        for i in range(0, 150, 25):
            assert request(server.url, PREDICT, {"instances": mixed[i:i + 25]})[0] == 200
    finally:
        server.shutdown()
    return str(config_path), str(work), shift_time


def _latest(work):
    folder = os.path.join(work, "monitor", sorted(os.listdir(os.path.join(work, "monitor")))[-1])
    with open(os.path.join(folder, "monitor.json")) as f:
        return json.load(f), folder


@pytest.mark.slow
def test_monitor_sees_a_third_off_topic_questions(shifted_traffic):
    from ml_metadata.proto import metadata_store_pb2

    from pipelines.mlmd_store import connect

    config, work, shift_time = shifted_traffic
    args = ["monitor", "--config", config, "--set", "monitor.min_requests=100"]
    fine = run_cli(*args, "--until", shift_time)
    result, _ = _latest(work)
    assert fine.returncode == 0, fine.stderr[-3000:]
    assert result["requests"] == 140 and not result["checks"]["off_topic"]["moved"]
    drift = run_cli(*args, "--since", shift_time)
    result, folder = _latest(work)
    assert drift.returncode == 6, drift.stderr[-3000:]
    topic = result["checks"]["off_topic"]
    assert result["requests"] == 150 and topic["moved"] and topic["share"] > 0.2
    assert "MOVED off_topic" in drift.stderr and "requests below similarity" in drift.stderr
    with open(os.path.join(folder, "monitor.html"), encoding="utf-8") as f:
        page = f.read()
    assert "<h2>Topic</h2>" in page and "id='least_similar'" in page
    off_topic = {r["text"] for r in read_rows(OFF_TOPIC_CSV)}
    assert sum(x["text"] in off_topic for x in topic["least_similar"]) >= 8  # the page shows what moved
    store = connect(os.path.join(work, "metadata.sqlite"))
    [execution] = store.get_executions_by_id([result["mlmd_execution_id"]])
    props = execution.custom_properties
    assert props["verdict"].string_value == "drift" and "off_topic" in props["moved"].string_value
    assert props["off_topic_share"].double_value == pytest.approx(topic["share"], abs=1e-5)
    assert props["off_topic"].double_value == pytest.approx(topic["value"], abs=1e-5)
    assert execution.last_known_state == metadata_store_pb2.Execution.COMPLETE
    print(fine.stderr[-2500:], drift.stderr[-2500:], sep="\n")  # the summaries, with -s
