"""A moved project (issue 30): `mv project elsewhere`, and every command that reads it finds its artifacts.

Fast: the relocation rules (pipelines/relocate.py) on a real SQLite MLMD, and the run-inputs fingerprint
(pipelines/run_inputs.py) a moved project keeps. Slow: one small project run, moved whole; `monitor` gives the
same verdict, `runs`/`versions` list the same, `run` answers "no new data" without importing TF and pushes
nothing, and a new span after the move trains warm-started from the served model.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from conftest import TEST_CSV, TRAIN_CSV, read_rows, run_cli, stratified, write_csv
from pipelines import relocate, run_inputs
from pipelines.mlmd_store import adopt_move, connect

CONFIG = """[paths]
data_dir = "data"
test_data_dir = "test"
work_dir = "work"
[beam]
direct_running_mode = "in_memory"
[trainer]
max_epochs = 3
[gate]
min_accuracy = 0.0
beat_references = false
[monitor]
min_requests = 50
"""


# ---------------------------------------------------------------------------------------- fast
def test_the_moved_folder_is_the_deepest_one_whose_name_changed():
    assert relocate.moved_folder("/a/proj/work", "/b/c/moved/work") == ("/a/proj", "/b/c/moved")
    assert relocate.moved_folder("/a/proj/work", "/b/proj/work") == ("/a", "/b")
    assert relocate.moved_folder("/a/proj/work", "/a/proj/work2") == ("/a/proj/work", "/a/proj/work2")
    moved = relocate.Relocation((("/a/proj", "/b/moved"),))
    assert moved.path("/a/proj/work/x") == "/b/moved/work/x" and moved.path("/a/project/x") == "/a/project/x"
    assert moved.spellings("/b/moved/w") == ["/b/moved/w", "/a/proj/w"]
    assert moved.spellings("/a/proj/w") == ["/a/proj/w", "/b/moved/w"]


def _store_with_artifact(work_dir):
    os.makedirs(work_dir)
    store = connect(os.path.join(work_dir, "metadata.sqlite"), writable=True)
    type_id = store.put_artifact_type(pb.ArtifactType(name="Model"))
    artifact = pb.Artifact(type_id=type_id, uri=os.path.join(work_dir, "pipeline_root", "Trainer", "model", "7"))
    artifact.custom_properties["pushed_destination"].string_value = os.path.join(work_dir, "serving", "1")
    artifact.custom_properties["note"].string_value = "not a path"
    [artifact_id] = store.put_artifacts([artifact])
    adopt_move(work_dir, os.path.join(work_dir, "metadata.sqlite"))  # what a run records
    return artifact_id


def test_reads_follow_the_move_and_a_run_rewrites_mlmd_once(tmp_path):
    artifact_id = _store_with_artifact(str(tmp_path / "proj" / "work"))
    shutil.move(str(tmp_path / "proj"), str(tmp_path / "moved"))
    work, metadata = str(tmp_path / "moved" / "work"), str(tmp_path / "moved" / "work" / "metadata.sqlite")
    old_uri = str(tmp_path / "proj" / "work" / "pipeline_root" / "Trainer" / "model" / "7")

    store = connect(metadata)  # a reading command: in memory only
    [artifact] = store.get_artifacts_by_id([artifact_id])
    assert artifact.uri == os.path.join(work, "pipeline_root", "Trainer", "model", "7")
    assert artifact.custom_properties["pushed_destination"].string_value == os.path.join(work, "serving", "1")
    assert artifact.custom_properties["note"].string_value == "not a path"
    assert store.as_recorded(artifact).uri == old_uri  # MLMD itself unchanged
    assert [a.id for a in store.get_artifacts_by_uri(old_uri)] == [artifact_id]  # old provenance finds it
    assert [a.id for a in store.get_artifacts_by_uri(artifact.uri)] == [artifact_id]

    assert adopt_move(work, metadata) == 1  # a run, under the lock: once
    assert connect(metadata, relocate=False).get_artifacts_by_id([artifact_id])[0].uri == artifact.uri
    assert adopt_move(work, metadata) == 0
    recorded = json.loads((tmp_path / "moved" / "work" / relocate.ROOT_FILE).read_text())
    assert recorded == {"root": work, "former": [str(tmp_path / "proj" / "work")]}
    assert [a.id for a in connect(metadata).get_artifacts_by_uri(old_uri)] == [artifact_id]  # still found


def _project(root):
    write_csv(str(root / "data" / "span-1" / "questions.csv"), stratified(read_rows(TRAIN_CSV), 200))
    write_csv(str(root / "test" / "questions.csv"), stratified(read_rows(TEST_CSV), 60, seed=1))
    (root / "transferline.toml").write_text(CONFIG)
    return str(root / "transferline.toml")


def test_a_moved_project_keeps_its_run_fingerprint_and_new_data_changes_it(tmp_path):
    from pipelines.config_loading import load_config

    before = run_inputs.fingerprint(load_config(_project(tmp_path / "proj")))
    shutil.move(str(tmp_path / "proj"), str(tmp_path / "moved"))
    config = load_config(str(tmp_path / "moved" / "transferline.toml"))
    assert run_inputs.fingerprint(config) == before
    assert run_inputs.fingerprint(load_config(str(tmp_path / "moved" / "transferline.toml"),
                                              ["monitor.min_requests=60"])) == before  # not a run's knob
    assert run_inputs.fingerprint(load_config(str(tmp_path / "moved" / "transferline.toml"),
                                              ["trainer.max_epochs=4"])) != before
    os.makedirs(tmp_path / "moved" / "serving-elsewhere")
    with open(tmp_path / "moved" / "data" / "span-1" / "questions.csv", "a") as f:
        f.write("What is a moved project ?,DESC\n")
    assert run_inputs.fingerprint(config) != before


# ---------------------------------------------------------------------------------------- slow
def _ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def _json(*args):
    return json.loads(_ok(run_cli(*args, "--json")).stdout)


def _log_traffic(work_dir):
    """Held-out questions through the real request-log writer, with the probabilities a model might give."""
    from ops.serving.request_log import RequestLog

    log = RequestLog(os.path.join(work_dir, "requests"))
    for row in read_rows(TEST_CSV)[200:320]:
        log.record("transferline", 1, "serving_default", False, [row["text"].encode()],
                   {"probabilities": [[0.8, 0.1, 0.1]], "classes": [[row["label"], "x", "y"]]})
    log.close()


def _fresh_run(config):
    """`transferline run` in a new interpreter; says on stderr whether TensorFlow was imported."""
    code = ("import sys; from ops.cli import main; rc = main(sys.argv[1:]); "
            "print('TF imported' if 'tensorflow' in sys.modules else 'TF not imported', file=sys.stderr); "
            "sys.exit(rc)")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code, "run", "--config", config], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return result, time.monotonic() - started


def _checks(result):
    monitor = json.loads(open(result.stdout.strip().replace("monitor.html", "monitor.json")).read())
    return monitor["verdict"], {c: round(v["value"], 6) for c, v in monitor["checks"].items()}, monitor["training"]


@pytest.mark.slow
def test_a_moved_project_reads_the_same_runs_cached_and_trains_on_a_new_span(tmp_path):
    config = _project(tmp_path / "made")
    first = _ok(run_cli("run", "--config", config))
    _log_traffic(str(tmp_path / "made" / "work"))
    monitor_before = run_cli("monitor", "--config", config, "--since", "2000-01-01")
    assert monitor_before.returncode in (0, 6), monitor_before.stderr[-3000:]
    checks_before = _checks(monitor_before)
    runs_before, versions_before = _json("runs", "--config", config), _json("versions", "--config", config)

    shutil.move(str(tmp_path / "made"), str(tmp_path / "moved"))
    config = str(tmp_path / "moved" / "transferline.toml")
    serving = tmp_path / "moved" / "work" / "serving"
    served = sorted(os.listdir(serving))

    monitor_after = run_cli("monitor", "--config", config, "--since", "2000-01-01")
    assert monitor_after.returncode == monitor_before.returncode, monitor_after.stderr[-3000:]
    assert _checks(monitor_after) == checks_before  # the same training data found: no false drift
    assert "Mean of empty slice" not in monitor_after.stderr
    old, new = str(tmp_path / "made"), str(tmp_path / "moved")
    assert json.loads(json.dumps(runs_before).replace(old, new)) == _json("runs", "--config", config)
    assert json.loads(json.dumps(versions_before).replace(old, new)) == _json("versions", "--config", config)

    cached, seconds = _fresh_run(config)
    _ok(cached)
    assert "no new data since the last run: everything cached, nothing retrained or pushed" in cached.stderr
    assert "TF not imported" in cached.stderr and "artifact path(s) in MLMD follow it" in cached.stderr
    assert sorted(os.listdir(serving)) == served
    print(f"no-change run of the moved project: {seconds:.1f} s")

    write_csv(str(tmp_path / "moved" / "data" / "span-2" / "questions.csv"),
              stratified(read_rows(TRAIN_CSV)[3000:], 150, seed=2))
    trained = _ok(run_cli("run", "--config", config))
    from pipelines.runs import summarize

    s = summarize(str(tmp_path / "moved" / "work" / "metadata.sqlite"), "transferline")
    assert s.spans == [1, 2] and s.executions["Trainer"] == "COMPLETE"
    assert s.warm_start == f"from served version {served[-1]}", s.warm_start
    assert all(uri.startswith(new) for uri in s.artifacts.values()), s.artifacts
    assert "gate:" in trained.stdout and first.returncode == 0
