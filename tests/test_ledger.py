"""`transferline runs` and `versions` (ops/pipeline/ledger.py) on runs recorded in an in-memory MLMD store and a
serving dir of empty versions: states, verdicts, versions and rollbacks, the JSON keys, the text; and a FAILED
run said so in the run summary and the report."""
import dataclasses
import json
import os

import pytest

from components import names
from components.names import GateReason
from ops.pipeline import ledger, ledger_entries
from ops.pipeline.summary import format_summary
from ops.report.page import failed_paragraph
from pipelines.mlmd_store import pick_run, run_outputs
from pipelines.runs import summarize_run
from recorded_mlmd import PIPELINE, RecordedRuns

ORDER = (names.EXAMPLE_GEN, names.DATA_GATE, names.TRANSFORM, names.TRAINER, names.BASELINE, names.REFERENCES,
         names.EVALUATOR, names.PUSH_GATE, names.PUSHER)


def _components(model_run, *, states=None, reason=GateReason.OK, blessed=1, accuracy=0.85, pushed=None,
                baseline=("first_model", 0), spans="1"):
    """A run's components and outputs; ``states``: {component: state} (a component left out: never started)."""
    states = states or dict.fromkeys(ORDER, "COMPLETE")
    outputs = {
        names.EXAMPLE_GEN: {"examples": ("Examples", "/root/ex", {names.SPANS: spans, "split_names": '["train"]'})},
        names.DATA_GATE: {},
        names.TRANSFORM: {},
        names.TRAINER: {"model_run": ("ModelRun", model_run, {})},
        names.BASELINE: {"baseline": ("Model", "/root/base", {
            names.BASELINE_SOURCE: baseline[0], names.BASELINE_VERSION: baseline[1]})},
        names.REFERENCES: {"references": ("ModelEvaluation", "/root/refs", {
            names.MAJORITY_ACCURACY: 0.25, names.TFIDF_ACCURACY: 0.7})},
        names.EVALUATOR: {"blessing": ("ModelBlessing", "/root/blessing", {names.BLESSED: blessed})},
        names.PUSH_GATE: {"gate": ("ModelBlessing", "/root/gate", {
            names.REASON: reason, names.BLESSED: int(reason == GateReason.OK),
            **({names.CANDIDATE_ACCURACY: accuracy} if blessed else {})})},
        names.PUSHER: {"pushed_model": ("PushedModel", "/root/pushed", {
            names.PUSHED: int(bool(pushed)), names.PUSHED_DESTINATION: f"/serving/{pushed}" if pushed else "",
            **({names.PUSHED_VERSION: str(pushed)} if pushed else {})})},
    }
    return {c: (s, outputs[c] if s in ("COMPLETE", "CACHED") else {}) for c, s in states.items()}


def _until(component, state):
    """Every step before ``component`` COMPLETE, it in ``state``, nothing after it."""
    before = ORDER[:ORDER.index(component)]
    return {**dict.fromkeys(before, "COMPLETE"), component: state}


RUN_IDS = ["r0-push", "r1-cached", "r2-refused", "r3-push", "r4-failed", "r5-rejected", "r6-killed", "r7-dead"]


@pytest.fixture
def recorded(tmp_path):
    model_run = tmp_path / "model_run"
    model_run.mkdir()
    (model_run / names.TRAINING_FILE).write_text(json.dumps({"mode": "head", "why": "300 examples"}))
    runs = RecordedRuns()
    runs.run("r0-push", _components(str(model_run), pushed=1000))
    runs.run("r1-cached", _components(str(model_run), pushed=1000,
                                      states=dict.fromkeys(ORDER, "CACHED")))
    runs.run("r2-refused", _components(str(model_run), reason=GateReason.BELOW_REFERENCE, accuracy=0.5,
                                       baseline=("served", 1000)))
    runs.run("r3-push", _components(str(model_run), pushed=2000, accuracy=0.9, baseline=("served", 1000),
                                    spans="1,2"))
    runs.run("r4-failed", _components(str(model_run), states=_until(names.EVALUATOR, "FAILED")))
    runs.run("r5-rejected", _components(str(model_run), states=_until(names.DATA_GATE, "FAILED")))
    # A process killed during the Trainer, as a later run marks it (pipelines/run_history.py mark_interrupted) ...
    runs.run("r6-killed", _components(str(model_run), states=_until(names.TRAINER, "CANCELED")),
             execution_properties={names.TRAINER: {names.INTERRUPTED: "its process ended"}})
    # ... and one not marked yet: RUNNING in MLMD (INTERRUPTED when no process holds the lock, else RUNNING).
    runs.run("r7-dead", _components(str(model_run), states=_until(names.TRAINER, "RUNNING")))
    runs.rollback(from_version=2000, to_version=1000, moved="2000", user="ann", host="box",
                  time="2026-11-05T10:00:00+0000", reason="test")
    return runs


@pytest.fixture
def serving(tmp_path):
    """1000 served; 2000 rolled back; a staging 3000 (a push killed mid-copy); 500: pushed by no recorded run."""
    root = tmp_path / "serving"
    for folder in ("1000", ".rolled-back/2000-1700000000", "500"):
        (root / folder).mkdir(parents=True)
        (root / folder / "saved_model.pb").write_bytes(b"")
    (root / "500" / "assets.extra").mkdir()
    (root / "500" / names.PROVENANCE).write_text(json.dumps(
        {"version": 500, "pushed_at": "2026-10-01T00:00:00+0000", names.SPANS: "1", "compared_with_version": 0}))
    (root / ".staging-3000").mkdir()
    return str(root)


def test_runs_states_verdicts_and_pushes(recorded):
    runs = {e.run_id: e for e in ledger.list_runs(recorded.store, PIPELINE)}
    assert list(runs) == RUN_IDS  # oldest first
    first = runs["r0-push"]
    assert (first.state, first.verdict, first.blessed, first.pushed_version, first.new_push) == (
        "COMPLETE", "ok", True, "1000", True)
    assert first.spans == [1] and first.trainer_mode == "head" and first.accuracy == pytest.approx(0.85)
    assert first.references == {names.MAJORITY_ACCURACY: 0.25, names.TFIDF_ACCURACY: 0.7}
    assert (first.baseline_source, first.baseline_version, first.rolled_back) == ("first_model", 0, None)
    cached = runs["r1-cached"]
    assert (cached.state, cached.pushed_version, cached.new_push) == ("CACHED", "1000", False)
    refused = runs["r2-refused"]
    assert (refused.state, refused.verdict, refused.pushed_version, refused.baseline_version) == (
        "COMPLETE", GateReason.BELOW_REFERENCE, None, 1000)
    assert refused.accuracy == pytest.approx(0.5)
    second = runs["r3-push"]
    assert second.spans == [1, 2] and second.pushed_version == "2000"
    assert second.rolled_back == {"time": "2026-11-05T10:00:00+0000", "user": "ann", "reason": "test",
                                  "to_version": 1000}
    failed = runs["r4-failed"]
    assert (failed.state, failed.stopped_at, failed.verdict, failed.accuracy, failed.pushed_version) == (
        "FAILED", names.EVALUATOR, None, None, None)
    rejected = runs["r5-rejected"]
    assert (rejected.state, rejected.stopped_at, rejected.verdict) == ("FAILED", names.DATA_GATE, "rejected")
    assert (runs["r6-killed"].state, runs["r6-killed"].stopped_at) == ("INTERRUPTED", names.TRAINER)
    assert (runs["r7-dead"].state, runs["r7-dead"].stopped_at) == ("INTERRUPTED", names.TRAINER)


def test_the_latest_unfinished_run_is_running_while_the_lock_is_held(recorded):
    runs = {e.run_id: e for e in ledger.list_runs(recorded.store, PIPELINE, lock_held=True)}
    assert runs["r7-dead"].state == "RUNNING" and runs["r7-dead"].stopped_at is None
    assert runs["r6-killed"].state == "INTERRUPTED"  # marked by a later run: dead whatever the lock


def test_run_state_between_steps():
    done = dict.fromkeys(ORDER, "COMPLETE")
    assert ledger_entries.run_state(done, "", "", latest=True, lock_held=False) == ("COMPLETE", None)
    half = dict.fromkeys(ORDER[:3], "COMPLETE")  # died after a step finished, before the next one started
    assert ledger_entries.run_state(half, "", "", latest=True, lock_held=False) == ("INTERRUPTED", None)
    assert ledger_entries.run_state(half, "", "", latest=True, lock_held=True) == ("RUNNING", None)
    assert ledger_entries.run_state(half, "", "", latest=False, lock_held=True) == ("INTERRUPTED", None)


def test_runs_json_keys_are_stable(recorded):
    entries = ledger.list_runs(recorded.store, PIPELINE)
    document = json.loads(json.dumps([dataclasses.asdict(e) for e in entries]))
    assert all(tuple(d) == ledger.RUN_KEYS for d in document)
    assert document[0]["started"].endswith("Z") and document[0]["pushed_version"] == "1000"


def test_runs_text(recorded):
    text = ledger.format_runs(ledger.list_runs(recorded.store, PIPELINE))
    lines = text.splitlines()
    assert lines[0].split() == ["RUN", "STARTED", "(UTC)", "SPANS", "MODE", "ACCURACY", "MAJORITY", "TF-IDF+LR",
                                "VERDICT", "PUSHED", "STATE"]
    assert len(lines) == 1 + len(RUN_IDS)
    by_run = {line.split()[0]: line for line in lines[1:]}
    for run, words in {"r0-push": ["head", "0.8500", "0.2500", "0.7000", "blessed", "1000", "COMPLETE"],
                       "r1-cached": ["blessed", "1000 (earlier)", "CACHED"],
                       "r2-refused": ["0.5000", "REFUSED: below the references", "  -  ", "COMPLETE"],
                       "r3-push": ["1,2", "0.9000", "2000 rolled back"],
                       "r4-failed": ["FAILED at Evaluator"],
                       "r5-rejected": ["REJECTED: data contract", "FAILED at DataGate"],
                       "r6-killed": ["INTERRUPTED during Trainer"]}.items():
        line = by_run[run]
        positions = [line.index(w) for w in words]
        assert positions == sorted(positions), (run, line)
    for column in ("STARTED", "VERDICT", "STATE"):  # columns aligned under their header
        at = lines[0].index(column)
        assert all(line[at - 2:at] == "  " and line[at] != " " for line in lines), column


def test_versions_with_a_rollback(recorded, serving):
    versions = {e.version: e for e in ledger.list_versions(recorded.store, PIPELINE, serving)}
    assert list(versions) == [500, 1000, 2000, 3000]  # oldest first
    served = versions[1000]
    assert (served.state, served.served, served.run_id, served.accuracy) == ("served", True, "r0-push",
                                                                             pytest.approx(0.85))
    assert (served.baseline_source, served.baseline_version, served.rollbacks) == ("first_model", 0, [])
    assert served.path == os.path.join(serving, "1000")
    back = versions[2000]
    assert (back.state, back.served, back.run_id, back.spans) == ("rolled_back", False, "r3-push", [1, 2])
    assert (back.baseline_source, back.baseline_version) == ("served", 1000)
    assert back.rollbacks == [{"time": "2026-11-05T10:00:00+0000", "user": "ann", "host": "box", "reason": "test",
                               "from_version": 2000, "to_version": 1000, "canary": None}]
    assert back.path == os.path.join(serving, ".rolled-back", "2000-1700000000")
    unknown = versions[500]  # not in MLMD: what the version's own provenance says
    assert (unknown.state, unknown.run_id, unknown.pushed_at, unknown.spans) == (
        "kept", None, "2026-10-01T00:00:00+0000", [1])
    assert (unknown.baseline_source, unknown.baseline_version) == ("first_model", 0)
    assert (versions[3000].state, versions[3000].run_id) == ("staging", None)
    document = json.loads(json.dumps([dataclasses.asdict(e) for e in versions.values()]))
    assert all(tuple(d) == ledger.VERSION_KEYS for d in document)


def test_versions_text(recorded, serving):
    text = ledger.format_versions(ledger.list_versions(recorded.store, PIPELINE, serving))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["VERSION", "STATE", "RUN"] and len(lines) == 5
    by_version = {line.split()[0]: line for line in lines[1:]}
    assert by_version["1000"].split()[:4] == ["1000", "SERVED", "r0-push", "0.8500"]
    assert "nothing served (first model)" in by_version["1000"]
    assert "rolled back" in by_version["2000"] and "version 1000" in by_version["2000"]
    assert "2026-11-05T10:00:00+0000 by ann ('test') -> 1000" in by_version["2000"]
    assert "(not in MLMD)" in by_version["500"] and "staging" in by_version["3000"]


def test_versions_without_metadata(serving):
    versions = ledger.list_versions(None, PIPELINE, serving)
    assert [(e.version, e.state, e.run_id) for e in versions] == [
        (500, "kept", None), (1000, "served", None), (2000, "rolled_back", None), (3000, "staging", None)]


def _summary(recorded, run):
    context = pick_run(recorded.store, PIPELINE, run)
    states, outputs = run_outputs(recorded.store, context)
    return summarize_run(PIPELINE, context, states, outputs, [], evaluate=False)


def test_a_failed_run_says_failed_in_the_summary_and_the_report(recorded):
    s = _summary(recorded, "r4-failed")
    assert s.failed == names.EVALUATOR
    text = format_summary(s)
    assert text.splitlines()[0] == "Run r4-failed of 'transferline': FAILED at Evaluator; 6 component(s) ran, 0 cached"
    assert "  FAILED at Evaluator: the component raised an error" in text
    assert "pushed: nothing (the served model is unchanged)" in text
    page = failed_paragraph(s)
    assert page.startswith("<p id='failed' class='no'><b>FAILED at Evaluator</b>: the component raised")
    rejected = format_summary(_summary(recorded, "r5-rejected"))
    assert "FAILED at DataGate: the data broke the contract (rejected)" in rejected
    assert "FAILED" not in format_summary(_summary(recorded, "r0-push"))


def test_an_empty_work_dir(tmp_path, capsys):
    from ops import cli
    from pipelines.mlmd_store import connect

    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\nwork_dir = "{tmp_path / "work"}"\n')
    assert cli.main(["runs", "--config", str(config)]) == 2  # no metadata at all: NotFound, as `report`
    assert "no pipeline metadata in" in capsys.readouterr().err
    assert cli.main(["versions", "--config", str(config), "--json"]) == 2
    assert "run `transferline run` first" in capsys.readouterr().err
    (tmp_path / "work" / "serving").mkdir(parents=True)
    connect(str(tmp_path / "work" / "metadata.sqlite"), writable=True)  # metadata, no run yet
    assert cli.main(["runs", "--config", str(config)]) == 0
    assert capsys.readouterr().out.startswith("no runs of pipeline 'transferline' yet in ")
    assert cli.main(["runs", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli.main(["versions", "--config", str(config)]) == 0
    assert capsys.readouterr().out.startswith("no versions under ")
    assert cli.main(["versions", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
