"""Keeping the model fresh, on real TREC rows in spans: span-1 → v1; span-2 → warm start from v1 → v2;
span-3 with shuffled labels → trained, refused by the gate; no new span → answered before TFX; a retrain killed in
the Trainer, run again → completes, never a partial version; rollback → the previous version, recorded."""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import TEST_CSV, TRAIN_CSV, PipelineRuns, read_rows, run_cli, stratified, write_csv

pytestmark = pytest.mark.slow
SIZES = {1: 200, 2: 450, 3: 450, 4: 300}


class VersionWatcher(threading.Thread):
    """Polls the push destination; records any numeric version folder seen without a complete model."""

    def __init__(self, serving_dir):
        super().__init__(daemon=True)
        self.serving_dir, self.partial, self.stop = serving_dir, [], threading.Event()

    def run(self):
        while not self.stop.wait(0.05):
            for name in os.listdir(self.serving_dir) if os.path.isdir(self.serving_dir) else []:
                path = os.path.join(self.serving_dir, name)
                if name.isdigit() and not (os.path.exists(os.path.join(path, "saved_model.pb"))
                                           and os.path.exists(os.path.join(path, "variables", "variables.index"))):
                    self.partial.append(name)


def versions(runs):
    return sorted(int(v) for v in os.listdir(runs.serving_dir) if v.isdigit())


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh")
    rows = stratified(read_rows(TRAIN_CSV), sum(SIZES.values()), seed=7)
    random.Random(7).shuffle(rows)
    chunks, start = {}, 0
    for span, n in SIZES.items():
        chunks[span], start = rows[start:start + n], start + n
    labels = [r["label"] for r in chunks[3]]  # span 3: same texts and label counts, labels shuffled
    random.Random(3).shuffle(labels)
    chunks[3] = [{"text": r["text"], "label": label} for r, label in zip(chunks[3], labels)]
    write_csv(str(root / "test" / "questions.csv"), stratified(read_rows(TEST_CSV), 200, seed=1))
    # Each retrain trains on the newest span only, warm-started from the served model.
    runs = PipelineRuns(root, root / "data", root / "test",
                        extra=["--set", "beam.direct_running_mode=in_memory", "--set", "data.train_spans=1",
                               "--set", "gate.min_accuracy=0.6"])
    state = {"runs": runs, "chunks": chunks, "served": {}}

    def land(span):
        write_csv(str(root / "data" / f"span-{span}" / "questions.csv"), chunks[span])

    def retrain():
        args = ["retrain", "--config", runs.config, *runs.extra]
        result = run_cli(*args)
        assert result.returncode == 0, result.stdout + result.stderr[-5000:]
        runs.results.append(result)
        return result

    land(1)
    retrain()
    state["served"][1] = versions(runs)
    land(2)
    retrain()
    state["served"][2] = versions(runs)
    land(3)
    retrain()
    state["served"][3] = versions(runs)
    started = time.monotonic()
    state["cached_result"] = retrain()
    state["cached_seconds"] = time.monotonic() - started
    state["served"]["cached"] = versions(runs)

    # span 4 lands; the retrain is killed while the Trainer runs, then simply run again.
    land(4)
    watcher = VersionWatcher(runs.serving_dir)
    watcher.start()
    proc = subprocess.Popen([sys.executable, "-m", "ops.cli", "retrain", "--config", runs.config,
                             *runs.extra], stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    killed_at = None
    for line in proc.stderr:
        if "Trainer" in line and "running" in line:
            time.sleep(3)  # well inside training
            killed_at = time.monotonic()
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    state["killed"] = killed_at is not None and proc.returncode == -signal.SIGKILL
    state["after_kill"] = versions(runs)
    state["rerun"] = retrain()
    watcher.stop.set()
    watcher.join()
    state["partial"] = watcher.partial
    state["served"][4] = versions(runs)
    return state


def summary(scenario, i):
    return scenario["runs"].summary(i)


def test_span_1_pushes_v1(scenario):
    s = summary(scenario, 0)
    assert s.spans == [1] and s.warm_start == "no served model: fresh start"
    assert s.blessed and len(scenario["served"][1]) == 1


def test_span_2_warm_starts_from_v1_and_pushes_v2_when_not_worse(scenario):
    import tensorflow as tf  # noqa: F401

    from components.names import INITIAL_HEAD_FILE, WARM_START_FILE
    from components.model import served_head

    s = summary(scenario, 1)
    v1 = scenario["served"][1][0]
    assert s.spans == [2]  # the window: the newest span only
    assert s.warm_start == f"from served version {v1}"
    assert s.baseline == f"served version {v1}"
    # The head the Trainer started from is v1's head, class columns aligned by name.
    with open(os.path.join(s.artifacts["Trainer.model_run"], WARM_START_FILE)) as f:
        classes_now = json.load(f)["classes"]
    initial = np.load(os.path.join(s.artifacts["Trainer.model_run"], INITIAL_HEAD_FILE))
    initial = [initial[f"arr_{i}"] for i in range(4)]
    served, served_classes = served_head(os.path.join(scenario["runs"].serving_dir, str(v1)))
    np.testing.assert_array_equal(initial[0], served[0])
    np.testing.assert_array_equal(initial[1], served[1])
    for c in served_classes:
        np.testing.assert_array_equal(initial[2][:, classes_now.index(c)], served[2][:, served_classes.index(c)])
        assert initial[3][classes_now.index(c)] == served[3][served_classes.index(c)]
    # Pushed only if not worse on the gate; with 3× the data it is better here.
    assert s.metrics["accuracy"] >= s.metrics["baseline_accuracy"]
    assert s.blessed and s.pushed_path and len(scenario["served"][2]) == 2


def test_span_3_with_shuffled_labels_is_trained_but_refused_and_v2_stays_served(scenario):
    s = summary(scenario, 2)
    assert s.executions["Trainer"] == "COMPLETE" and s.executions["DataGate"] == "COMPLETE"  # the contract passes
    assert s.spans == [3]
    assert s.metrics["accuracy"] < s.metrics["baseline_accuracy"]
    assert s.blessed is False and s.pushed_path is None
    assert any("change vs the served model" in f for f in s.failures)
    assert scenario["served"][3] == scenario["served"][2]


def test_no_new_span_is_answered_before_tfx_and_says_so(scenario):
    """Nothing changed since the span-3 run: said without TF, TFX or a new MLMD run (pipelines/run_inputs.py)."""
    s = summary(scenario, 2)
    assert "no new data since the last run" in scenario["cached_result"].stderr
    assert f"Run {s.run_id} of 'transferline' stands" in scenario["cached_result"].stdout
    assert summary(scenario, 3).spans == [4]  # the next MLMD run is span 4's (the killed one)
    assert scenario["served"]["cached"] == scenario["served"][3]
    assert scenario["cached_seconds"] < 15, scenario["cached_seconds"]  # a pipeline run is minutes


def test_a_killed_retrain_leaves_nothing_half_pushed_and_simply_runs_again(scenario):
    assert scenario["killed"]
    assert scenario["after_kill"] == scenario["served"][3]
    assert scenario["partial"] == []  # no incomplete version folder was ever visible
    s = summary(scenario, -1)
    assert set(s.executions.values()) <= {"COMPLETE", "CACHED"} and s.executions["Trainer"] == "COMPLETE"
    assert s.spans == [4]
    serving = scenario["runs"].serving_dir
    assert not [n for n in os.listdir(serving) if n.startswith(".staging-")]
    expected = scenario["served"][3] + ([int(os.path.basename(s.pushed_path))] if s.pushed_path else [])
    assert scenario["served"][4] == expected


def test_a_second_run_on_the_same_work_dir_waits_for_nobody(scenario):
    from pipelines.work_lock import exclusive

    runs = scenario["runs"]
    with exclusive(runs.work_dir):
        result = run_cli("retrain", "--config", runs.config, timeout=120)
        rollback = run_cli("rollback", "--config", runs.config, "--reason", "x", timeout=120)
    for r in (result, rollback):
        assert r.returncode == 5 and "another transferline run or rollback is using" in r.stderr
        assert f"pid {os.getpid()}" in r.stderr and "Traceback" not in r.stderr


def test_rollback_serves_the_previous_version_and_records_who_when_why(scenario):
    from ops.pipeline.scoring import newest_served_model
    from ops.pipeline.rollback import rollbacks

    runs = scenario["runs"]
    before = versions(runs)
    result = run_cli("rollback", "--config", runs.config, "--reason", "complaints about LOC answers")
    assert result.returncode == 0, result.stderr[-3000:]
    assert versions(runs) == before[:-1]
    assert newest_served_model(runs.serving_dir) == os.path.join(runs.serving_dir, str(before[-2]))
    assert os.listdir(os.path.join(runs.serving_dir, ".rolled-back"))[0].startswith(f"{before[-1]}-")
    (record,) = rollbacks(runs.metadata_path)
    assert record["from_version"] == before[-1] and record["to_version"] == before[-2]
    assert record["reason"] == "complaints about LOC answers" and record["user"] and record["time"]
    with open(os.path.join(runs.work_dir, "reports", "rollbacks.jsonl")) as f:
        assert json.loads(f.readlines()[-1])["to_version"] == before[-2]
    predicted = run_cli("predict", "--config", runs.config, "Who wrote Hamlet ?")
    assert predicted.returncode == 0 and f"/{before[-2]}" in predicted.stderr


def test_rollback_refuses_clearly_without_an_earlier_version(tmp_path):
    (tmp_path / "work" / "serving").mkdir(parents=True)
    result = run_cli("rollback", "--work-dir", str(tmp_path / "work"), "--reason", "test", timeout=120)
    assert result.returncode == 2 and "nothing to roll back to" in result.stderr


def test_a_push_killed_mid_copy_never_shows_a_version_and_the_next_push_cleans_up(tmp_path, monkeypatch):
    from tfx.proto import pusher_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import io_utils, proto_utils

    from components.names import STAGING_PREFIX
    from components.pusher import AtomicPusherExecutor

    model = standard_artifacts.InfraBlessing()  # the servability gate's: the model it checked, with has_model
    model.uri = str(tmp_path / "model")
    model.set_int_custom_property("blessed", 1)
    model.set_int_custom_property("has_model", 1)
    exported = tmp_path / "model" / "stamped_model"
    (exported / "variables").mkdir(parents=True)
    (exported / "variables" / "variables.index").write_bytes(b"index")
    (exported / "saved_model.pb").write_bytes(b"graph")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", 1)
    serving = tmp_path / "serving"
    properties = {"push_destination": proto_utils.proto_to_json(pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(serving))))}

    def push():
        pushed = standard_artifacts.PushedModel()
        pushed.uri = str(tmp_path / f"pushed-{time.monotonic_ns()}")
        AtomicPusherExecutor().Do({"infra_blessing": [model], "model_blessing": [blessing]},
                                  {"pushed_model": [pushed]}, properties)
        return pushed

    def crash(*args, **kwargs):
        raise OSError("killed while copying saved_model.pb")

    monkeypatch.setattr(io_utils, "copy_file", crash)
    with pytest.raises(OSError):
        push()
    assert [n for n in os.listdir(serving) if n.isdigit()] == []  # TF Serving sees nothing
    assert [n for n in os.listdir(serving) if n.startswith(STAGING_PREFIX)]
    monkeypatch.undo()
    pushed = push()
    (version,) = [n for n in os.listdir(serving) if n.isdigit()]
    assert sorted(os.listdir(serving)) == [version]  # the leftover staging folder is gone
    assert (serving / version / "saved_model.pb").read_bytes() == b"graph"
    assert pushed.get_string_custom_property("pushed_version") == version
