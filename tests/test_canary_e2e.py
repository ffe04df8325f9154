"""Issue 32's story on real TREC rows, end to end with the real pipeline, `serve`, `canary`, `promote` and the
scheduled retrain's settle step (rollout.mode = canary):

1. the slice's served model is stable; a retrain (another seed) pushes its candidate as canary beside it
   (config file naming both, PushGate compared with stable, `versions` shows both);
2. loopback traffic (TREC test questions) to `serve` in shadow mode is answered by stable alone, and the request
   log holds both versions' answers; their labels then arrive as a span;
3. `transferline canary` reports agreement, latency and accuracy on the labelled overlap: passes;
4. `promote` under load: `serve` follows within its poll interval, no request fails;
5. a deliberately worse candidate (the same texts, labels shuffled; the offline gate loosened so it is pushed)
   lands as canary; on the same traffic its verdict fails (exit 6) and the scheduled retrain's settle step
   drops it: the promoted version serves alone, the drop recorded in MLMD.
"""
import os
import random
import shutil
import sys
import threading
import time
from unittest import mock

import pytest

from components import names, rollout
from conftest import TEST_CSV, read_rows, served_copy, stratified, write_csv
from ops import cli
from ops.serving.request_log import read_requests
from pipelines.config_loading import load_config
from serve_helpers import PREDICT, running, send

pytestmark = pytest.mark.slow
MODEL = "transferline"


def _cli(*args) -> int:
    with mock.patch.object(sys, "argv", ["transferline"]):
        return cli.main([str(a) for a in args])


def _traffic(server, texts, batch=20):
    """Sends the texts as :predict requests (no version: stable answers); returns the answered labels."""
    import json

    answered = []
    for i in range(0, len(texts), batch):
        body = json.dumps({"instances": texts[i:i + batch]}).encode()
        status, _, raw = send(server.url, "POST", PREDICT, body, {"Content-Type": "application/json"})
        assert status == 200, raw[:300]
        answered += [p["label"] for p in json.loads(raw)["predictions"]]
    deadline = time.monotonic() + 120
    while server.shadow.pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the request in the worker, then the log writer
    return answered


def test_canary_on_trec_promote_a_good_one_drop_a_worse_one(slice_runs, tmp_path, capfd):
    from ops.loop.canary import settle
    from ops.pipeline import ledger
    from pipelines.mlmd_store import connect, prop
    from pipelines.run_history import promotions, rollbacks
    from pipelines.runs import read_run

    work = served_copy(slice_runs, tmp_path / "work")
    serving, metadata = os.path.join(work, "serving"), os.path.join(work, "metadata.sqlite")
    data = tmp_path / "data"
    shutil.copytree(os.path.join(slice_runs.root, "data"), data)
    common = ["--work-dir", work, "--set", f"paths.test_data_dir={os.path.join(slice_runs.root, 'test')}",
              "--set", "beam.direct_running_mode=in_memory", "--set", "rollout.mode=canary",
              "--set", "gate.max_accuracy_drop=1.0"]
    serve_knobs = [f"paths.work_dir={work}", f"paths.data_dir={data}", "rollout.mode=canary", "serve.port=0",
                   "serve.poll_seconds=0.2", "serve.max_body_bytes=100000"]
    questions = stratified(read_rows(TEST_CSV), 200, seed=5)
    texts = [r["text"] for r in questions]

    # 1. the candidate lands as canary beside stable
    stable = rollout.read(serving).stable
    assert _cli("run", "--data", data, *common, "--set", "trainer.seed=7") == 0, capfd.readouterr().err[-3000:]
    state = rollout.read(serving)
    assert state.stable == stable and state.canary is not None and state.canary > stable
    good = state.canary
    record = read_run(metadata, MODEL)
    gate, pushed = record.outputs[names.GATE][0], record.outputs[names.PUSHED_MODEL][0]
    assert prop(gate, names.SERVED_VERSION) == stable and prop(gate, names.BASELINE_VERSION) == stable
    assert prop(pushed, names.PUSHED_AS) == "canary" and int(prop(pushed, names.PUSHED_VERSION)) == good
    entries = {e.version: e.state for e in ledger.list_versions(metadata, MODEL, serving)}
    assert (entries[stable], entries[good]) == ("served", "canary")

    # 2. shadow traffic: answered by stable alone, both answers logged; then the labels arrive as a span
    config = load_config(None, serve_knobs)
    with running(config) as (server, _):
        assert server.rollout(MODEL) == (stable, good)
        answered = _traffic(server, texts)
    frame = read_requests(os.path.join(work, "requests"))
    assert len(frame) == len(texts) and set(frame["shadow"]) == {"scored"}
    assert set(frame["version"].astype(int)) == {stable} and set(frame["canary_version"].astype(int)) == {good}
    assert list(frame["label"]) == answered  # what the clients got is stable's answer
    write_csv(str(data / "span-2" / "questions.csv"), questions)

    # 3. the verdict on the logged traffic
    code, err = _cli("canary", "--work-dir", work, "--set", "rollout.mode=canary", "--set", f"paths.data_dir={data}"), \
        capfd.readouterr().err
    assert code == 0, err[-3000:]
    assert f"canary version {good} vs stable {stable}" in err and "agreement" in err
    result = _last_verdict(work)
    checks = result["checks"]
    assert result["verdict"] == "pass" and result["shadowed"] == len(texts)
    assert result["accuracy"]["labelled"] == len(texts) and checks["accuracy_drop"]["passed"] is True
    assert checks["agreement"]["value"] >= 0.8 and result["latency"]["canary"]["median_ms"] > 0
    print(f"good canary: agreement {checks['agreement']['value']:.3f}, accuracy stable "
          f"{result['accuracy']['stable']:.3f} canary {result['accuracy']['canary']:.3f}, latency {result['latency']}")

    # 4. promote under load: serve follows within its poll interval, nothing fails
    with running(config) as (server, _):
        statuses, stop = [], threading.Event()

        def load():
            while not stop.is_set():
                statuses.append(send(server.url, "POST", PREDICT, b'{"instances": ["what is a canary ?"]}',
                                     {"Content-Type": "application/json"})[0])

        client = threading.Thread(target=load)
        client.start()
        try:
            time.sleep(1)
            began = time.monotonic()
            assert _cli("promote", "--work-dir", work, "--set", "rollout.mode=canary", "--reason", "e2e: passed") == 0
            while server.rollout(MODEL) != (good, None) and time.monotonic() - began < 30:
                time.sleep(0.05)
            followed = time.monotonic() - began
            time.sleep(0.5)
        finally:
            stop.set()
            client.join()
    assert server.rollout(MODEL) == (good, None) and followed < 5, followed
    assert statuses and set(statuses) == {200}
    assert [p["to_version"] for p in promotions(connect(metadata))] == [good]

    # 5. a worse candidate: labels shuffled, pushed as canary with the gate loosened; fails; settled: dropped
    worse_data = tmp_path / "worse"
    rows = read_rows(os.path.join(slice_runs.root, "data", "span-1", "questions.csv"))
    labels = [r["label"] for r in rows]
    random.Random(0).shuffle(labels)
    write_csv(str(worse_data / "span-1" / "questions.csv"),
              [{"text": r["text"], "label": label} for r, label in zip(rows, labels)])
    assert _cli("run", "--data", worse_data, *common, "--set", "gate.min_accuracy=0.0",
                "--set", "gate.beat_references=false") == 0, capfd.readouterr().err[-3000:]
    state = rollout.read(serving)
    assert state.stable == good and state.canary is not None and state.canary > good
    worse = state.canary
    with running(config) as (server, _):
        _traffic(server, texts)
    capfd.readouterr()
    assert _cli("canary", "--work-dir", work, "--set", "rollout.mode=canary", "--set", f"paths.data_dir={data}") == 6
    result = _last_verdict(work)
    checks = result["checks"]
    assert result["canary"] == worse and result["verdict"] == "fail" and checks["agreement"]["passed"] is False
    assert checks["accuracy_drop"]["passed"] is False
    print(f"worse canary: agreement {checks['agreement']['value']:.3f}, accuracy stable "
          f"{result['accuracy']['stable']:.3f} canary {result['accuracy']['canary']:.3f}")
    said = []
    settled = settle(load_config(None, serve_knobs + ["rollout.promote_after_hours=0.00001"]), said.append)
    assert settled == "dropped", said
    assert rollout.read(serving)[:2] == (good, None)
    assert not os.path.exists(os.path.join(serving, str(worse)))
    dropped = rollbacks(connect(metadata))[-1]
    assert (dropped["canary"], dropped["to_version"]) == (worse, good)


def _last_verdict(work):
    import glob
    import json

    [path] = sorted(glob.glob(os.path.join(work, "canary", "*", "canary.json")))[-1:]
    with open(path) as f:
        return json.load(f)
