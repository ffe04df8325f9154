"""Bad data never reaches training or serving: each kind of broken input halts the run with a clear
message, exit code 3, nothing new pushed, the served model untouched, and MLMD showing where it stopped.

The runs go through the CLI's own main() in this process (the CLI's start-up is tested elsewhere; here
it would cost ~10 s a kind), in a work dir of their own whose serving/ holds the slice runs' model.
"""
import os
import sys

import pytest

import bad_inputs
from conftest import served_copy

pytestmark = pytest.mark.slow
KINDS = bad_inputs.corpus()


def _fingerprints(serving_dir):
    out = {}
    for version in sorted(os.listdir(serving_dir)):
        with open(os.path.join(serving_dir, version, "saved_model.pb"), "rb") as f:
            out[version] = hash(f.read())
    return out


@pytest.fixture(scope="module")
def work(slice_runs, tmp_path_factory):
    """A work dir with a model already served (a copy of the slice runs' v1) and no runs yet; the slice's
    held-out test set."""
    return served_copy(slice_runs, tmp_path_factory.mktemp("rejections") / "work"), os.path.join(slice_runs.root, "test")


def _run(work, data, capfd):
    from unittest import mock

    from ops import cli

    work_dir, test_dir = work
    # TFX's Beam executors hand sys.argv to absl's flag parser: pytest's own flags must not reach it.
    with mock.patch.object(sys, "argv", ["transferline"]):
        code = cli.main(["run", "--data", str(data), "--work-dir", work_dir, "--set",
                         f"paths.test_data_dir={test_dir}", "--set", "beam.direct_running_mode=in_memory"])
    out, err = capfd.readouterr()
    return code, out, err


def _runs(work):
    from pipelines.mlmd_store import connect, run_contexts

    path = os.path.join(work[0], "metadata.sqlite")
    return run_contexts(connect(path), "transferline") if os.path.exists(path) else []


def test_corpus_has_at_least_ten_kinds():
    assert len(KINDS) >= 10


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_bad_input_halts_the_run(kind, work, tmp_path, capfd):
    from pipelines.runs import summarize

    served = _fingerprints(os.path.join(work[0], "serving"))
    files, phrase = KINDS[kind]
    bad_inputs.write(str(tmp_path / "data"), files)
    runs_before = len(_runs(work))
    code, _, err = _run(work, tmp_path / "data", capfd)
    assert code == 3, err[-3000:]
    assert "the data was rejected; nothing was trained or pushed" in err
    assert phrase in err, err[-3000:]
    assert "Traceback" not in err and len(err.splitlines()) < 60  # one readable report, no Beam dump
    assert _fingerprints(os.path.join(work[0], "serving")) == served  # no new version, the served one untouched
    with open(err.split("data report (TFDV statistics and anomalies): ")[1].split()[0], encoding="utf-8") as f:
        html = f.read()
    assert "The data was rejected" in html

    # MLMD: a new run that stopped at ExampleGen or the DataGate, before Transform.
    assert len(_runs(work)) == runs_before + 1
    s = summarize(os.path.join(work[0], "metadata.sqlite"), "transferline")
    failed = [c for c, state in s.executions.items() if state == "FAILED"]
    assert failed in (["CsvExampleGen"], ["DataGate"]), s.executions
    assert f"stopped at: {failed[0]} (FAILED)" in err
    assert not {"Transform", "References", "Trainer", "Pusher"} & set(s.executions)  # nothing trained on it
    if failed == ["DataGate"]:  # statistics exist: TFDV's own views are in the report
        assert "Statistics: train split (TFDV)" in html and "Anomalies against the schema" in html
    if kind == "unknown_label":  # the exact text a data owner sees (shown in the README)
        lines = [line for line in err.splitlines() if not line.startswith("[transferline]")]
        assert lines[0] == ("transferline: the data was rejected; nothing was trained or pushed, "
                            "the served model is unchanged.")
        assert lines[1].startswith("  - feature 'label' (") and "Unexpected string values" in lines[1]
