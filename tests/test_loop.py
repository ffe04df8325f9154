"""Closing the loop on one small trained model (slow): serve logs its traffic, monitor judges it (0 / 6 / 7),
label-next proposes unlabelled texts by margin, add-span lands a labelled CSV, the active study runs quick."""
import base64
import csv
import json
import os
import random
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import PipelineRuns, TEST_CSV, TRAIN_CSV, read_rows, stratified, write_csv

pytestmark = pytest.mark.slow

WORDS = ("stainless steel premium ergonomic wireless bluetooth charging durable lightweight waterproof adjustable "
         "compatible cordless dishwasher-safe ceramic nonstick").split()


def _post(url, body):
    req = urllib.request.Request(url + "/v1/models/transferline:predict", data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _example(text):
    from tensorflow.core.example import example_pb2

    ex = example_pb2.Example()
    ex.features.feature["text"].bytes_list.value.append(text.encode())
    return {"b64": base64.b64encode(ex.SerializeToString()).decode()}


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """One tiny pipeline run (200 questions, 3 epochs), then traffic through `serve`: in-distribution TREC
    test questions, unlabelled TREC training questions (some already in the span), then product descriptions."""
    from ops.serving.serve import ModelServer

    root = tmp_path_factory.mktemp("loop")
    train = read_rows(TRAIN_CSV)
    span = stratified(train, 200)
    write_csv(str(root / "data" / "span-1" / "questions.csv"), span)
    write_csv(str(root / "test" / "questions.csv"), stratified(read_rows(TEST_CSV), 60, seed=1))
    runs = PipelineRuns(root, root / "data", root / "test", extra=[
        "--set", "beam.direct_running_mode=in_memory", "--set", "trainer.max_epochs=3",
        "--set", "gate.min_accuracy=0.0", "--set", "gate.beat_references=false"])  # 3 epochs
    runs.run()
    config = _config(runs)
    in_span = {r["text"] for r in span}
    unlabelled = [r["text"] for r in train if r["text"] not in in_span][:120]
    messages = []
    server = ModelServer(config, log=messages.append).start()
    try:
        test = [r["text"] for r in read_rows(TEST_CSV)][:160]
        for i in range(0, 150, 10):
            assert _post(server.url, {"instances": test[i:i + 10]}) == 200
        assert _post(server.url, {"signature_name": "serving_examples",
                                  "instances": [{"examples": _example(t)} for t in test[150:160]]}) == 200
        assert _post(server.url, {"instances": unlabelled + [span[0]["text"], span[1]["text"]]}) == 200
        assert _post(server.url, {"instances": "not a list"}) == 400  # refused: nothing logged
        assert _post(server.url, {"instances": ["x"], "inputs": ["y"]}) == 400
        time.sleep(1.1)
        runs.shift_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        time.sleep(1.1)
        rng = random.Random(0)
        shifted = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 90))) for _ in range(120)]
        for i in range(0, 120, 20):
            assert _post(server.url, {"instances": shifted[i:i + 20]}) == 200
    finally:
        server.shutdown()
    runs.config_obj, runs.messages, runs.texts = config, messages, {"test": test, "unlabelled": unlabelled,
                                                                     "span": in_span, "shifted": shifted,
                                                                     "sent": test + unlabelled + [span[0]["text"],
                                                                     span[1]["text"]] + shifted}
    return runs


def _config(runs, *overrides):
    from pipelines.config_loading import load_config

    return load_config(runs.config, ["serve.port=0", "monitor.min_requests=100", *overrides])


def test_serve_logs_every_answered_instance_and_nothing_else(loop):
    from ops.serving.request_log import read_requests, request_log_dir

    frame = read_requests(request_log_dir(loop.config_obj))
    t = loop.texts
    assert list(frame["text"]) == t["sent"]
    assert set(frame["signature"]) == {"serving_default", "serving_examples"}
    assert (frame["signature"] == "serving_examples").sum() == 10  # tf.Example texts decoded
    row = frame.iloc[0]
    assert abs(sum(row["probabilities"].values()) - 1) < 1e-3 and row["label"] == max(row["probabilities"],
                                                                                        key=row["probabilities"].get)
    logged = "\n".join(loop.messages)
    assert not any(text in logged for text in t["test"] + t["shifted"])  # no request content in server lines


def test_monitor_in_distribution_is_fine_shifted_is_drift_none_is_7(loop):
    from ops.cli import main

    # This 3-epoch, 200-question model favours a few classes (label L-inf ~0.4 on TREC test questions); the
    # label check is bounded loosely here, the shift must show in length, long texts and vocabulary.
    args = ["monitor", "--config", loop.config, "--set", "monitor.min_requests=100",
            "--set", "monitor.max_label_drift=0.6"]
    assert main(args + ["--until", loop.shift_time]) == 0
    assert main(args + ["--since", loop.shift_time]) == 6
    latest = sorted(os.listdir(os.path.join(loop.work_dir, "monitor")))[-1]
    with open(os.path.join(loop.work_dir, "monitor", latest, "monitor.json")) as f:
        result = json.load(f)
    moved = {c for c, v in result["checks"].items() if v["moved"]}
    assert {"text_length", "long_share", "oov_rate"} <= moved
    assert os.path.exists(result["html_path"]) and result["mlmd_execution_id"] > 0
    assert main(args + ["--since", "2001-01-01", "--until", "2001-01-02"]) == 7


def test_label_next_ranks_by_margin_and_skips_labelled_texts(loop, tmp_path):
    from ops.loop.label_next import label_next
    from ops.serving.request_log import read_requests, request_log_dir

    out, rows = label_next(_config(loop, f"paths.data_dir={loop.root}/data"), 15, str(tmp_path / "next.csv"),
                           since=None)
    texts = [r["text"] for r in rows]
    assert len(texts) == 15 == len(set(texts)) and not set(texts) & loop.texts["span"]
    logged = read_requests(request_log_dir(loop.config_obj))
    margin = {}
    for t, p in zip(logged["text"], logged["probabilities"]):
        top = sorted(p.values(), reverse=True)
        margin[t] = top[0] - top[1]
    ranked = [margin[t] for t in texts]
    assert ranked == sorted(ranked)  # least margin first
    unpicked = set(margin) - set(texts) - loop.texts["span"] - set(loop.texts["test"])
    assert max(ranked) <= np.percentile([margin[t] for t in unpicked], 50)  # from the uncertain end
    with open(out, newline="") as f:
        assert next(csv.reader(f)) == ["text", "label", "guess", "score"]


def test_add_span_refuses_a_bad_csv_and_lands_a_good_one(loop, tmp_path):
    from components.errors import DataRejected
    from ops.loop.spans import add_span

    config = _config(loop)
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label,guess,score\nWhat is a yak ?,,ENTY,0.4\nWho is Bo ?,PERSON,HUM,0.9\n")
    with pytest.raises(DataRejected) as e:
        add_span(config, str(bad))
    assert "no label" in str(e.value) and "PERSON" in str(e.value)
    assert sorted(os.listdir(config.paths.data_dir)) == ["span-1"]
    good = tmp_path / "good.csv"
    good.write_text("text,label,guess,score\nWhat is a yak ?,ENTY,ENTY,0.4\nWho is Bo ?,HUM,HUM,0.9\n")
    landed = add_span(config, str(good))
    assert landed.endswith("span-2") and sorted(os.listdir(config.paths.data_dir)) == ["span-1", "span-2"]
    with open(os.path.join(landed, "good.csv"), newline="") as f:
        assert list(csv.reader(f)) == [["text", "label"], ["What is a yak ?", "ENTY"], ["Who is Bo ?", "HUM"]]


def test_study_active_quick_writes_its_outputs(tmp_path):
    from ops.study.active import run_active
    from pipelines.config_loading import load_config

    result = run_active(load_config(None, [f"active.out_dir={tmp_path}", "active.step=50"]), quick=True)
    assert os.path.getsize(result["png_path"]) > 1000
    with open(result["json_path"]) as f:
        saved = json.load(f)
    assert {p["labels"] for p in saved["curves"]["margin"]} == {100, 150, 200}
    assert set(saved["labels_to_target"]) == {"margin", "entropy", "random"}
