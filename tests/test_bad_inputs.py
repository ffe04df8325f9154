"""Bad data never reaches training or serving: each kind of broken input halts the run with a clear
message, exit code 3, nothing new pushed, the served model untouched, and MLMD showing where it stopped."""
import os

import pytest

import bad_inputs
from conftest import run_cli

pytestmark = pytest.mark.slow
KINDS = bad_inputs.corpus()


def _fingerprints(serving_dir):
    out = {}
    for version in sorted(os.listdir(serving_dir)):
        with open(os.path.join(serving_dir, version, "saved_model.pb"), "rb") as f:
            out[version] = hash(f.read())
    return out


@pytest.fixture(scope="module")
def served(slice_runs):
    """The slice runs' work dir, with a model already served (v1)."""
    return _fingerprints(slice_runs.serving_dir)


def test_corpus_has_at_least_ten_kinds():
    assert len(KINDS) >= 10


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_bad_input_halts_the_run(kind, slice_runs, served, tmp_path):
    files, phrase = KINDS[kind]
    bad_inputs.write(str(tmp_path / "data"), files)
    runs_before = len(slice_runs_runs(slice_runs))
    result = run_cli("run", "--config", slice_runs.config, "--data", str(tmp_path / "data"),
                     "--set", "beam.direct_running_mode=in_memory")
    assert result.returncode == 3, result.stdout + result.stderr[-3000:]
    err = result.stderr
    assert "the data was rejected; nothing was trained or pushed" in err
    assert phrase in err, err[-3000:]
    assert "Traceback" not in err and len(err.splitlines()) < 60  # one readable report, no Beam dump
    assert _fingerprints(slice_runs.serving_dir) == served  # no new version, the served one untouched
    with open(err.split("data report (TFDV statistics and anomalies): ")[1].split()[0], encoding="utf-8") as f:
        html = f.read()
    assert "The data was rejected" in html

    # MLMD: a new run that stopped at ExampleGen or the DataGate, before Transform.
    runs = slice_runs_runs(slice_runs)
    assert len(runs) == runs_before + 1
    s = slice_runs.summary(-1)
    failed = [c for c, state in s.executions.items() if state == "FAILED"]
    assert failed in (["CsvExampleGen"], ["DataGate"]), s.executions
    assert f"stopped at: {failed[0]} (FAILED)" in err
    assert not {"Transform", "Trainer", "Pusher"} & set(s.executions)
    if failed == ["DataGate"]:  # statistics exist: TFDV's own views are in the report
        assert "Statistics: train split (TFDV)" in html and "Anomalies against the schema" in html


def slice_runs_runs(slice_runs):
    from pipelines.runs import connect, run_contexts

    return run_contexts(connect(slice_runs.metadata_path), "transferline")


def test_the_rejection_message_reads_well(slice_runs, tmp_path):
    """The exact text a data owner sees for an unknown class (shown in the README)."""
    files, _ = KINDS["unknown_label"]
    bad_inputs.write(str(tmp_path / "data"), files)
    result = run_cli("run", "--config", slice_runs.config, "--data", str(tmp_path / "data"),
                     "--set", "beam.direct_running_mode=in_memory")
    lines = [l for l in result.stderr.splitlines() if not l.startswith("[transferline]")]
    assert lines[0] == ("transferline: the data was rejected; nothing was trained or pushed, "
                        "the served model is unchanged.")
    assert lines[1].startswith("  - feature 'label' (") and "Unexpected string values" in lines[1]
