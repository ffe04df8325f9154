"""`transferline runs` and `versions` on a real slice: a first push, a refused run, a second push, a rollback."""
import json
import os

import pytest

from conftest import TEST_CSV, TRAIN_CSV, PipelineRuns, read_rows, run_cli, stratified, write_csv
from components.names import GateReason

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ledger_runs(tmp_path_factory):
    """Three runs of their own (not slice_runs: this module rolls back): 0. the first push (v1); 1. an
    impossible accuracy bound (not blessed, nothing pushed); 2. another seed and a relaxed gate: PushGate finds
    its cached 'first model' baseline stale (v1 is served now), so the runner compares again with v1 in a
    second run context, which pushes v2; then `transferline rollback`, which serves v1 again, v2 set aside."""
    root = tmp_path_factory.mktemp("ledger")
    write_csv(str(root / "data" / "span-1" / "questions.csv"), stratified(read_rows(TRAIN_CSV), 300))
    write_csv(str(root / "test" / "questions.csv"), stratified(read_rows(TEST_CSV), 200, seed=1))
    runs = PipelineRuns(root, root / "data", root / "test", extra=["--set", "beam.direct_running_mode=in_memory"])
    runs.run()
    runs.run("gate.min_accuracy=1.0")
    runs.run("trainer.seed=7", "gate.min_accuracy=0.5", "gate.max_accuracy_drop=1.0")
    runs.versions_before_rollback = sorted(os.listdir(runs.serving_dir))
    rolled = run_cli("rollback", "--config", runs.config, "--reason", "test")
    assert rolled.returncode == 0, rolled.stderr[-3000:]
    return runs


def _cli_json(runs, command):
    result = run_cli(command, "--config", runs.config, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_runs_lists_each_run_with_its_verdict_and_push(ledger_runs):
    first, refused, *stale, second = _cli_json(ledger_runs, "runs")
    assert [r["state"] for r in (first, refused, *stale, second)] == ["COMPLETE"] * (3 + len(stale))
    assert len(stale) <= 1 and all(r["verdict"] == GateReason.STALE and not r["pushed_version"] for r in stale)
    assert first["verdict"] == GateReason.OK and first["new_push"] and first["blessed"] is True
    assert first["baseline_source"] == "first_model" and first["spans"] == [1] and first["trainer_mode"]
    assert first["accuracy"] > 0.5 and set(first["references"]) == {"majority_accuracy", "tfidf_lr_accuracy"}
    assert refused["verdict"] == GateReason.NOT_BLESSED and refused["blessed"] is False
    assert refused["pushed_version"] is None and not refused["new_push"]
    assert refused["accuracy"] is not None  # from the Evaluator's TFMA results: PushGate records it only if blessed
    assert second["verdict"] == GateReason.OK and second["new_push"]
    assert int(second["pushed_version"]) > int(first["pushed_version"])
    assert second["rolled_back"]["reason"] == "test" and first["rolled_back"] is None
    assert ledger_runs.versions_before_rollback == [first["pushed_version"], second["pushed_version"]]


def test_versions_show_the_served_one_and_the_rollback(ledger_runs):
    runs = _cli_json(ledger_runs, "runs")
    v1, v2 = _cli_json(ledger_runs, "versions")
    assert (v1["version"], v1["state"], v1["served"], v1["run_id"]) == (
        int(runs[0]["pushed_version"]), "served", True, runs[0]["run_id"])
    assert (v2["version"], v2["state"], v2["served"], v2["run_id"]) == (
        int(runs[-1]["pushed_version"]), "rolled_back", False, runs[-1]["run_id"])
    assert v1["rollbacks"] == [] and [r["reason"] for r in v2["rollbacks"]] == ["test"]
    assert v2["rollbacks"][0]["to_version"] == v1["version"]
    assert (v2["baseline_source"], v2["baseline_version"]) == ("served", v1["version"])
    assert v1["accuracy"] == pytest.approx(runs[0]["accuracy"]) and v1["pushed_at"]


def test_the_text_tables(ledger_runs):
    everything = len(_cli_json(ledger_runs, "runs"))
    runs = run_cli("runs", "--config", ledger_runs.config, "--limit", str(everything - 1))
    assert runs.returncode == 0, runs.stderr[-3000:]
    lines = runs.stdout.splitlines()
    assert lines[0].startswith("RUN ") and len(lines) == everything  # the header, then all runs but the first
    assert "NOT BLESSED" in lines[1] and "rolled back" in lines[-1] and lines[-1].rstrip().endswith("COMPLETE")
    versions = run_cli("versions", "--config", ledger_runs.config)
    assert versions.returncode == 0, versions.stderr[-3000:]
    lines = versions.stdout.splitlines()
    assert " SERVED " in lines[1] and "rolled back" in lines[2] and "'test'" in lines[2]
    print(runs.stdout, versions.stdout, sep="\n")

