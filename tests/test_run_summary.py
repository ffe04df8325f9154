"""Reading a run back from MLMD and saying it in words, on runs recorded in an in-memory MLMD store."""
import pytest

from components import names
from components.errors import NotFound
from components.names import GateReason
from ops.pipeline.summary import format_summary, next_steps
from pipelines.mlmd_store import pick_run, run_contexts, run_outputs
from pipelines.runs import summarize_run
from recorded_mlmd import PIPELINE, RecordedRuns


def _components(*, cached=False, reason=GateReason.OK, pushed="/serving/17", baseline=("first_model", 0)):
    state = "CACHED" if cached else "COMPLETE"
    return {
        names.EXAMPLE_GEN: (state, {"examples": ("Examples", "/root/ex", {
            names.SPANS: "2,3", "split_names": '["train", "eval", "test"]'})}),
        names.BASELINE: (state, {"baseline": ("Model", "/root/base", {
            names.BASELINE_SOURCE: baseline[0], names.BASELINE_VERSION: baseline[1]})}),
        names.PUSH_GATE: (state, {"gate": ("ModelBlessing", "/root/gate", {names.REASON: reason})}),
        names.PUSHER: (state, {"pushed_model": ("PushedModel", "/root/pushed", {
            names.PUSHED: int(bool(pushed)), names.PUSHED_DESTINATION: pushed or ""})}),
    }


@pytest.fixture
def recorded():
    runs = RecordedRuns()
    runs.run("2026-11-01T03:00:00", _components())
    runs.run("2026-11-02T03:00:00", _components(cached=True))
    runs.run("2026-11-03T03:00:00", _components(reason=GateReason.SAME_TRAINING, pushed=None,
                                               baseline=("served", 17)))
    return runs


def _summary(recorded, run):
    context = pick_run(recorded.store, PIPELINE, run)
    states, outputs = run_outputs(recorded.store, context)
    return summarize_run(PIPELINE, context, states, outputs, [])


def test_runs_are_picked_by_id_or_index(recorded):
    ids = [c.name for c in run_contexts(recorded.store, PIPELINE)]
    assert ids == ["2026-11-01T03:00:00", "2026-11-02T03:00:00", "2026-11-03T03:00:00"]
    assert pick_run(recorded.store, PIPELINE).name == ids[-1]
    assert pick_run(recorded.store, PIPELINE, ids[1]).name == ids[1]
    assert pick_run(recorded.store, PIPELINE, "0").name == ids[0]
    with pytest.raises(NotFound, match="no run 'yesterday'.*-1 = latest of 3"):
        pick_run(recorded.store, PIPELINE, "yesterday")
    with pytest.raises(NotFound, match="no run of pipeline 'other'"):
        pick_run(recorded.store, "other")


def test_first_run_summary(recorded):
    s = _summary(recorded, 0)
    assert s.spans == [2, 3] and s.held_out_test and s.ran == list(_components())
    assert s.baseline.startswith("first model (nothing served") and s.gate_reason == "ok"
    assert s.pushed_path == "/serving/17" and s.artifacts[names.EXAMPLES] == "/root/ex"
    text = format_summary(s, {names.EXAMPLE_GEN: 1.5})
    assert text.splitlines()[0] == f"Run {s.run_id} of 'transferline': 4 component(s) ran, 0 cached"
    assert "trained on span(s) 2, 3; gate data: span 3's eval split + the held-out test set" in text
    assert "  pushed: /serving/17" in text and "CsvExampleGen 1.5s" in text


def test_cached_run_says_nothing_new_was_pushed(recorded):
    text = format_summary(_summary(recorded, 1))
    assert "0 component(s) ran, 4 cached" in text
    assert "pushed: nothing new (cached: /serving/17 was pushed by an earlier run)" in text


def test_held_back_model_says_why(recorded):
    s = _summary(recorded, 2)
    assert s.baseline == "served version 17" and s.pushed_path is None
    text = format_summary(s)
    assert f"held back: {GateReason.EXPLAINED[GateReason.SAME_TRAINING]}" in text
    assert "pushed: nothing (the served model is unchanged)" in text


def test_next_steps_follow_the_outcome(recorded):
    pushed = next_steps(_summary(recorded, 0), "--config p/transferline.toml")
    assert pushed[0] == 'transferline predict --config p/transferline.toml "a text to classify"'
    assert any(step.startswith("transferline serve --config p/transferline.toml") for step in pushed)
    held_back = next_steps(_summary(recorded, 2))
    assert [step.split("  ")[0].strip() for step in held_back] == ["transferline report", "transferline runs"]
