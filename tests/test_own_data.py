"""Your own data: `init` on a second real dataset (chatterbot-topics), `run`, `predict` (issue 17).

One module-scoped project: init; moved before its first run (its paths are relative); a first run with an
absurd trainer setting, which the gate must refuse below the TF-IDF reference and say why; a normal run,
which must beat both references and push; then the project moved again and `predict --config` answered
from its own serving dir with this dataset's labels.
"""
import json
import os
import shutil

import pytest

from components.names import MAJORITY_ACCURACY, TFIDF_ACCURACY, GateReason
from conftest import REPO, run_cli

pytestmark = pytest.mark.slow

TOPICS = os.path.join(REPO, "data", "chatterbot-topics", "prompts.csv")
CLASSES = {"ai", "coding", "emotion", "psychology", "trivia"}
FAST = ["--set", "beam.direct_running_mode=in_memory"]


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("own-data")
    made = ok(run_cli("init", str(root / "made"), "--train", TOPICS, "--text-column", "prompt",
                      "--label-column", "topic"))
    shutil.move(str(root / "made"), str(root / "moved"))
    config = str(root / "moved" / "transferline.toml")
    absurd = ok(run_cli("run", "--config", config, *FAST, "--set", "trainer.learning_rate=1e-7",
                        "--set", "trainer.max_epochs=1"))
    good = ok(run_cli("run", "--config", config, *FAST))
    from pipelines.runs import summarize

    metadata = str(root / "moved" / "work" / "metadata.sqlite")
    return {"root": root, "init": made, "absurd": absurd, "good": good,
            "summaries": [summarize(metadata, "transferline", i) for i in (0, 1)]}


def test_a_model_forced_below_the_tfidf_reference_is_refused_and_the_gate_says_why(project):
    s = project["summaries"][0]
    assert s.gate_reason == GateReason.BELOW_REFERENCE and s.pushed_path is None
    assert s.metrics["accuracy"] < s.references[TFIDF_ACCURACY]
    out = project["absurd"].stdout
    assert "gate: REFUSED: accuracy" in out and "does not beat" in out
    assert f"the TF-IDF(1-2-grams)+LR reference {s.references[TFIDF_ACCURACY]:.4f}" in out
    assert "pushed: nothing" in out


def test_the_first_real_model_beats_both_references_on_the_same_gate_data_and_is_pushed(project):
    s = project["summaries"][1]
    refs = s.references
    assert set(refs) == {MAJORITY_ACCURACY, TFIDF_ACCURACY}
    assert refs == project["summaries"][0].references  # the same data: the same references (cached)
    assert s.metrics["accuracy"] > refs[TFIDF_ACCURACY] > refs[MAJORITY_ACCURACY]
    assert s.gate_reason == GateReason.OK and s.pushed_path
    assert s.pushed_path.startswith(str(project["root"] / "moved" / "work" / "serving"))
    out = project["good"].stdout
    assert f"references on the same gate data: majority class {refs[MAJORITY_ACCURACY]:.4f}" in out
    assert "gate: BLESSED" in out
    report = open(os.path.join(os.path.dirname(s.pushed_path), "..", "reports", s.run_id, "report.html")).read()
    assert "references (same gate data)" in report and "TF-IDF(1-2-grams)+LR" in report
    print(f"\nchatterbot-topics: model {s.metrics['accuracy']:.4f} on {int(s.metrics['example_count'])} gate "
          f"examples; majority {refs[MAJORITY_ACCURACY]:.4f}, TF-IDF+LR {refs[TFIDF_ACCURACY]:.4f}")


def test_predict_answers_with_the_datasets_labels_after_the_project_moved_again(project):
    shutil.move(str(project["root"] / "moved"), str(project["root"] / "elsewhere"))
    result = ok(run_cli("predict", "--config", str(project["root"] / "elsewhere" / "transferline.toml"), "--json",
                        "can you write a binary search in Python?", "Who painted the Mona Lisa?"))
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert set(rows[0]["probabilities"]) == CLASSES and {r["label"] for r in rows} <= CLASSES
    assert rows[0]["label"] == "coding"
