"""`evaluate FILE`: a served version on a labelled file, with the references.

Unit: the figures (sklearn's) and labels the model does not know, the errors. Slow, on the shared slice run
(conftest.slice_runs): on the very rows the gate judged, evaluate reproduces what the pipeline recorded
(TFMA's accuracy and macro F1, the References component's accuracies); on the TREC test CSV it prints the
references and an HTML page.
"""
import csv
import json

import pytest

from components import names
from components.errors import UserError
from conftest import TEST_CSV, read_rows, run_cli
from ops.pipeline.evaluate import as_text, figures


def test_figures_leave_out_and_count_labels_the_model_does_not_know():
    r = figures(["A", "A", "B", "B", "X"], ["A", "B", "B", "B", "A"], ["A", "B"])
    assert (r["rows"], r["scored_rows"], r["unknown_labels"]) == (5, 4, {"X": 1})
    assert r["accuracy"] == 0.75 and r["accuracy_all_rows"] == pytest.approx(0.6)
    assert r["per_class"]["A"] == {"precision": 1.0, "recall": 0.5, "f1_score": pytest.approx(2 / 3), "support": 2}
    assert r["per_class"]["B"]["precision"] == pytest.approx(2 / 3) and r["per_class"]["B"]["recall"] == 1.0
    assert r["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert r["confusion_matrix"] == [[1, 1], [0, 2]]
    text = as_text({**r, "file": "f.csv", "model": "m/7", "version": 7, "references": {"unavailable": "no MLMD"}})
    assert "1 row(s) with labels the model does not know, left out: 'X' 1 (counted as errors: accuracy 0.6000)" in text
    assert "references: not measured: no MLMD" in text
    with pytest.raises(UserError, match=r"no row of the file has a label the model knows \(A, B\).*'Y' \(2\)"):
        figures(["Y", "Y"], ["A", "B"], ["A", "B"])


def test_a_file_without_labels_is_refused_before_any_model_loads(tmp_path, capsys):
    from ops import cli

    plain = tmp_path / "q.txt"
    plain.write_text("Who wrote Hamlet ?\n", encoding="utf-8")
    work = ["--work-dir", str(tmp_path / "work")]
    assert cli.main(["evaluate", str(plain), *work]) == 2
    assert "no labels to evaluate against" in capsys.readouterr().err
    table = tmp_path / "q.csv"
    table.write_text("text,topic\nWho ?,HUM\n", encoding="utf-8")
    assert cli.main(["evaluate", str(table), *work]) == 2
    err = capsys.readouterr().err
    assert "no column 'label'" in err and "--label-column" in err and "its columns: text, topic" in err
    assert cli.main(["evaluate", str(table), "--label-column", "topic", *work]) == 2  # no model pushed there
    assert "no model has been pushed" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_on_the_gate_rows_reproduces_what_the_pipeline_recorded(slice_runs, tmp_path):
    """The Evaluator (TFMA) and References scored the run's gate data, the eval split plus the held-out test
    set, as one; these very rows, written to a CSV, give evaluate the same figures."""
    from ops.loop.monitor_checks import served_model, training_data
    from pipelines.config_loading import load_config

    config = load_config(slice_runs.config, [])
    served = served_model(config)
    assert str(served["version"]) == slice_runs.versions_after_first[-1]  # pushed by the first run
    _, splits = training_data(config, served)
    gate = tmp_path / "gate.csv"
    with open(gate, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([names.TEXT, names.LABEL])
        for split in names.gate_splits():
            writer.writerows(zip(*splits[split]))
    result = run_cli("evaluate", str(gate), "--config", slice_runs.config, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    got, recorded = json.loads(result.stdout), slice_runs.summary(0)
    assert got["scored_rows"] == recorded.metrics["example_count"] == recorded.gate_rows
    # TFMA accumulates Keras' accuracy in float32: equal to float32's precision.
    assert got["accuracy"] == pytest.approx(recorded.metrics["accuracy"], abs=1e-6)
    assert got["macro_f1"] == pytest.approx(recorded.metrics["macro_f1"], abs=1e-6)
    for key, title in names.REFERENCE_NAMES.items():
        assert got["references"][title] == pytest.approx(recorded.references[key], abs=1e-6)
    assert got["references"]["training_rows"] == len(splits[names.TRAIN_SPLIT][0])


@pytest.mark.slow
def test_evaluate_on_the_test_csv_prints_the_references_and_counts_unknown_labels(slice_runs, tmp_path):
    rows = read_rows(TEST_CSV) + [{"text": "Is this new ?", "label": "NEW"}] * 3
    path = tmp_path / "test.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    page = tmp_path / "evaluate.html"
    result = run_cli("evaluate", str(path), "--config", slice_runs.config, "--html", str(page))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "503 row(s), 500 with a label the model knows" in out
    assert "3 row(s) with labels the model does not know, left out: 'NEW' 3" in out
    accuracy = float(out.split("accuracy ", 1)[1].split(",")[0])
    assert 0.6 < accuracy <= 1
    for title in names.REFERENCE_NAMES.values():  # beside the model, trained on its training split
        assert f"  {title}" in out
    assert "confusion matrix" in out and out.count("\n") > 15
    html = page.read_text(encoding="utf-8")
    assert "id='confusion'" in html and "id='per-class'" in html and "NEW" in html
