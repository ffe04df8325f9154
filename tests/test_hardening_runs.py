"""Issue 20 end to end, in one small work dir shared by the scenarios (in_memory Beam, 3 epochs):
a push killed after its rename and before MLMD recorded it, then re-run (no second version; the existing
one recorded; the killed run shown as interrupted); a rollback, then a no-new-data retrain beside an empty
span folder and one holding only a README; leakage reported, then halted under a lower bound; a BOM test
file and a trailing-space label named; no traceback text on the terminal."""
import csv
import os
import shutil
import subprocess
import sys

import pytest

from conftest import TEST_CSV, TRAIN_CSV, PipelineRuns, read_rows, run_cli, stratified, write_csv

pytestmark = pytest.mark.slow
COPIED = 6  # training rows copied into the test set: leakage below the default bound

# Runs the CLI with the Pusher killed (SIGKILL) right after its rename, before TFX records the execution.
KILL_AFTER_RENAME = """
import os, signal, sys
from components import pusher
pusher.AtomicPusherExecutor._MarkPushed = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
from ops.cli import main
sys.exit(main(sys.argv[1:]))
"""


def versions(serving_dir):
    return sorted(int(v) for v in os.listdir(serving_dir) if v.isdigit()) if os.path.isdir(serving_dir) else []


def noise(result):
    text = result.stdout + result.stderr
    return [w for w in ("Traceback", "Exception ignored") if w in text]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The shared work dir and its data, before any run."""
    root = tmp_path_factory.mktemp("hardening")
    train = stratified(read_rows(TRAIN_CSV), 160, seed=11)
    write_csv(str(root / "data" / "span-1" / "questions.csv"), train)
    test = stratified(read_rows(TEST_CSV), 120, seed=2) + train[:COPIED]
    write_csv(str(root / "test" / "questions.csv"), test)
    runs = PipelineRuns(root, root / "data", root / "test",
                        extra=["--set", "beam.direct_running_mode=in_memory", "--set", "trainer.max_epochs=3",
                               "--set", "gate.min_accuracy=0.0",
                               "--set", "gate.beat_references=false"])  # a 3-epoch model; not the gate under test
    return {"runs": runs, "root": root, "train": train, "test": test}


@pytest.fixture(scope="module")
def work(base):
    from pipelines.mlmd_store import connect, run_contexts
    from pipelines.runs import summarize

    state, runs = dict(base), base["runs"]
    first = len(run_contexts(connect(runs.metadata_path), "transferline")) if os.path.exists(runs.metadata_path) else 0
    state["first"] = first  # the killed run's index (another test may have run in this work dir before)
    state["killed"] = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_RENAME, "run", "--config", runs.config, *runs.extra],
        capture_output=True, text=True, timeout=1500, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    state["after_kill"] = versions(runs.serving_dir)
    state["dead"] = runs.summary(first)  # as if a process held the lock (the default)
    state["dead_unlocked"] = summarize(runs.metadata_path, "transferline", first, lock_held=False)
    state["rerun"] = runs.run()
    state["after_rerun"] = versions(runs.serving_dir)
    return state


def test_a_push_killed_after_its_rename_is_recorded_on_rerun_not_pushed_twice(work):
    runs = work["runs"]
    assert work["killed"].returncode == -9, work["killed"].stderr[-3000:]
    (v1,) = work["after_kill"]  # the rename happened: the version is there, MLMD never heard of it
    assert work["dead"].executions["Pusher"] == "RUNNING"
    assert work["after_rerun"] == [v1]  # no second version of the same model
    s = runs.summary(-1)
    assert s.executions["Pusher"] == "COMPLETE" and s.ran == ["Pusher"]
    assert s.pushed_path == os.path.join(runs.serving_dir, str(v1)) and s.already_present
    assert f"{s.pushed_path} already holds this model" in work["rerun"].stdout


def test_a_killed_run_is_shown_as_interrupted_and_marked_by_the_next(work):
    assert work["dead_unlocked"].interrupted == "Pusher"  # before: RUNNING, and nobody holds the lock
    assert work["dead"].interrupted == ""  # the same state while a process holds the lock: maybe alive
    marked = work["runs"].summary(work["first"])  # after the re-run marked it
    assert marked.executions["Pusher"] == "CANCELED" and marked.interrupted == "Pusher"
    assert f"run {marked.run_id} was interrupted during Pusher" in work["rerun"].stderr


def test_no_traceback_text_reaches_the_terminal(work):
    assert noise(work["killed"]) == [] and noise(work["rerun"]) == []


def test_leakage_below_the_bound_is_counted_and_reported(work):
    import tensorflow as tf

    from components.csv_checks import normalised

    s = work["runs"].summary(-1)
    examples = s.artifacts["CsvExampleGen.examples"]

    def texts(split):
        files = tf.io.gfile.glob(os.path.join(examples, f"Split-{split}", "*"))
        return [tf.train.Example.FromString(r.numpy()).features.feature["text"].bytes_list.value[0].decode()
                for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]

    train = {normalised(t) for t in texts("train")}
    expected = sum(normalised(t) in train for split in ("eval", "test") for t in texts(split))
    assert 1 <= expected and s.leaked_rows == expected and s.gate_rows == len(texts("eval")) + len(texts("test"))
    assert f"leakage: {expected} of {s.gate_rows} gate rows" in work["rerun"].stdout


def test_after_a_rollback_a_no_new_data_retrain_says_so_and_skips_empty_span_folders(work):
    runs = work["runs"]
    (v1,) = work["after_rerun"]
    shutil.copytree(os.path.join(runs.serving_dir, str(v1)), os.path.join(runs.serving_dir, str(v1 - 1)))
    rolled = run_cli("rollback", "--config", runs.config, "--reason", "complaints about LOC")
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    (work["root"] / "data" / "span-2").mkdir()  # just created: the upload has not started
    (work["root"] / "data" / "span-3").mkdir()
    (work["root"] / "data" / "span-3" / "README").write_text("uploading")
    result = run_cli("retrain", "--config", runs.config, *runs.extra)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipped span-2/, span-3/" in result.stderr and noise(result) == []
    out = result.stdout
    assert f"version {v1} was rolled back on" in out and "'complaints about LOC'" in out
    assert f"serving version {v1 - 1}" in out
    assert "gate: BLESSED\n" not in out and "was pushed by an earlier run" not in out
    assert "skipped: span-2/, span-3/ (no data file yet)" in out
    assert versions(runs.serving_dir) == [v1 - 1]


def test_leakage_above_the_bound_halts_the_run(work):
    runs = work["runs"]
    result = run_cli("run", "--config", runs.config, *runs.extra, "--set", "contract.max_leakage_fraction=0.01")
    assert result.returncode == 3, result.stderr[-3000:]
    assert "gate rows" in result.stderr and "contract.max_leakage_fraction" in result.stderr
    assert noise(result) == []


def test_a_bom_file_and_a_trailing_space_label_are_named_with_file_and_line(base):
    work = base
    root, runs = work["root"], work["runs"]
    span = root / "bad" / "span-1" / "questions.csv"
    write_csv(str(span), work["train"] + [{"text": "Who painted the Mona Lisa ?", "label": "HUM "}])
    with open(span, newline="", encoding="utf-8") as f:
        line = next(i + 1 for i, row in enumerate(csv.reader(f)) if row[1] == "HUM ")
    bom = root / "bad-test" / "questions.csv"
    write_csv(str(bom), work["test"])
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    result = run_cli("run", "--config", runs.config, *runs.extra, "--data", str(root / "bad"),
                     "--set", f"paths.test_data_dir={root / 'bad-test'}")
    assert result.returncode == 3, result.stderr[-3000:]
    err = result.stderr
    assert f"{bom}: starts with a UTF-8 byte-order mark" in err
    assert f"'HUM ' (trailing space) in 1 row(s) ({span} line {line})" in err
    assert "\ufeff" not in err and noise(result) == []


def test_a_first_run_prints_no_traceback_text_even_at_exit(slice_runs):
    """Item 10, on the shared slice's first (complete) run: Transform, Trainer, Evaluator and interpreter exit."""
    assert noise(slice_runs.results[0]) == []
