"""End to end: the real TFX components on real TREC questions, checked through MLMD and the pushed model."""
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_cli

COMPONENTS = {"CsvExampleGen", "ServedModel", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "DataGate",
              "Transform", "Trainer", "ServedModelBaseline", "References", "Evaluator", "InfraValidator", "PushGate",
              "Pusher"}
QUESTIONS = ["How far is Denver from Aspen ?", "Who wrote Hamlet ?", "What does NASA stand for ?",
             "How many people live in Tokyo ?", "What is a caldera ?"]


def newest_version(runs):
    return os.path.join(runs.serving_dir, max(os.listdir(runs.serving_dir), key=int))


pytestmark = pytest.mark.slow


def test_first_run_pushes_a_blessed_model_recorded_in_mlmd(slice_runs):
    s = slice_runs.summary(0)
    assert set(s.executions) == COMPONENTS
    assert set(s.executions.values()) == {"COMPLETE"}
    assert s.blessed and s.gate_reason == "ok" and not s.failures
    assert s.baseline == "first model (nothing served: the references and the absolute floor decide)"
    # The gate data: the newest (only) span's eval split (~1/5 of 300) plus the 200 held-out test questions.
    assert 200 + 30 < s.metrics["example_count"] < 200 + 100
    assert s.spans == [1] and s.held_out_test and s.warm_start == "no served model: fresh start"
    assert 0.8 <= s.metrics["accuracy"] <= 1.0
    assert set(s.per_class) == {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    assert slice_runs.versions_after_first == [os.path.basename(s.pushed_path)]
    for key in ("CsvExampleGen.examples", "StatisticsGen.statistics", "ImportSchemaGen.schema",
                "ExampleValidator.anomalies", "Transform.transform_graph", "Transform.transformed_examples",
                "Trainer.model", "Evaluator.evaluation", "Evaluator.blessing", "InfraValidator.blessing",
                "Pusher.pushed_model"):
        assert os.path.exists(s.artifacts[key]), key
    assert os.path.isdir(os.path.join(s.artifacts["Trainer.model_run"]))  # TensorBoard logs
    assert "gate: BLESSED" in slice_runs.results[0].stdout and s.pushed_path in slice_runs.results[0].stdout


def test_the_terminal_shows_each_trainer_epoch_and_a_cached_run_none(slice_runs):
    """The Trainer's epochs (components/epoch_progress.py) on the terminal (stderr), one line each, beside the
    component lines; the summary (stdout) stays clean."""
    import re

    first = slice_runs.results[0]
    epochs = re.findall(r"^\[transferline\] Trainer +phase 1 \(head\) epoch +(\d+)/(\d+)  loss \S+  eval loss \S+  "
                        r"eval accuracy \S+ +\d+\.\d s$", first.stderr, re.M)
    assert epochs and [int(n) for n, _ in epochs] == list(range(1, len(epochs) + 1)), first.stderr[-3000:]
    assert "epoch" not in first.stdout and "phase 2" not in first.stderr
    assert " epoch " not in slice_runs.results[1].stderr  # fully cached: no training


def test_second_run_on_the_same_data_is_answered_before_tfx(slice_runs):
    """Nothing changed (data, config, code, served versions: pipelines/run_inputs.py), so the second run says
    so without TFX and records no run; the MLMD runs are the first, then the two with a changed gate."""
    second = slice_runs.results[1]
    assert "no new data since the last run: everything cached, nothing retrained or pushed" in second.stderr
    first = slice_runs.summary(0)
    assert f"Run {first.run_id} of 'transferline' stands" in second.stdout
    assert slice_runs.summary(1).run_id not in second.stdout and slice_runs.summary(-1).run_id != first.run_id


def test_impossible_bound_is_not_blessed_and_pushes_nothing(slice_runs):
    s = slice_runs.summary(1)  # the second run in MLMD: results[2]
    assert s.executions["Evaluator"] == "COMPLETE" and s.executions["Trainer"] == "CACHED"
    assert s.baseline == "first model (nothing served: the references and the absolute floor decide)"
    assert s.blessed is False and s.pushed_path is None
    assert any("accuracy is" in f and "required >= 1.0000" in f for f in s.failures)
    assert sorted(os.listdir(slice_runs.serving_dir)) == slice_runs.versions_after_first
    assert "NOT BLESSED" in slice_runs.results[2].stdout


def _serialized_examples(texts):
    return [tf.train.Example(features=tf.train.Features(feature={
        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[t.encode()]))})).SerializeToString()
        for t in texts]


def test_pushed_model_serves_raw_text_and_tf_examples(slice_runs):
    import tensorflow_text  # noqa: F401

    model = tf.saved_model.load(newest_version(slice_runs))
    by_text = model.signatures["serving_default"](text=tf.constant(QUESTIONS))
    by_example = model.signatures["serving_examples"](examples=tf.constant(_serialized_examples(QUESTIONS)))
    probs = by_text["probabilities"].numpy()
    assert probs.shape == (len(QUESTIONS), 6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(by_example["probabilities"].numpy(), probs, atol=1e-6)
    classes = by_text["classes"].numpy()[0]
    assert sorted(c.decode() for c in classes) == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    top = [classes[i].decode() for i in probs.argmax(axis=1)]
    assert top == [t.decode() for t in by_text["label"].numpy()]
    np.testing.assert_allclose(by_text["score"].numpy(), probs.max(axis=1))


def test_pushed_model_loads_the_way_tf_serving_loads_it(slice_runs):
    """TF Serving restores SavedModels through a TF1 session, not tf.saved_model.load."""
    import tensorflow_text  # noqa: F401

    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], newest_version(slice_runs))
        assert {"serving_default", "serving_examples", "transform_features"} <= set(meta.signature_def)
        sig = meta.signature_def["serving_default"]
        assert sig.method_name == "tensorflow/serving/predict"
        out = sess.run({k: v.name for k, v in sig.outputs.items()}, {sig.inputs["text"].name: QUESTIONS})
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, atol=1e-5)


def test_predict_cli_on_the_served_model(slice_runs):
    result = run_cli("predict", "--config", slice_runs.config, "Who wrote Hamlet ?", "--json")
    assert result.returncode == 0, result.stderr
    import json

    row = json.loads(result.stdout.strip())
    assert row["text"] == "Who wrote Hamlet ?" and abs(sum(row["probabilities"].values()) - 1) < 1e-5
    assert row["label"] == max(row["probabilities"], key=row["probabilities"].get)


def test_full_trec_reaches_85_percent_gate_accuracy(full_run):
    s = full_run.summary()
    assert 500 + 900 < s.metrics["example_count"] < 500 + 1300  # the official test set + the eval split
    assert s.metrics["accuracy"] >= 0.85, s.metrics
    assert s.blessed and s.pushed_path
    # auto on TREC's ~4,400 training examples (the train split) fine-tunes, and the summary says so.
    assert s.trainer_mode.startswith("fine_tune (auto: "), s.trainer_mode
    assert f"  model: {s.trainer_mode}" in full_run.results[0].stdout
    for phase in ("phase 1 (head)", "phase 2 (fine-tune)"):  # each phase's epochs on the terminal
        assert f"Trainer                {phase} epoch " in full_run.results[0].stderr, phase
    result = run_cli("predict", "--config", full_run.config, "How far is Denver from Aspen ?",
                     "Who wrote Hamlet ?", "What does NASA stand for ?")
    assert result.returncode == 0, result.stderr
    assert [line.split("\t")[0] for line in result.stdout.strip().splitlines()] == ["NUM", "HUM", "ABBR"]


def test_stale_cached_comparison_is_redone_against_the_served_model(slice_runs):
    """A changed gate re-runs the Evaluator while the cached baseline still says 'first model' although
    v1 is served now: PushGate holds it back as stale, the runner compares again with v1, and v1 (this
    very model) is not pushed a second time."""
    (version,) = slice_runs.versions_after_first
    result = slice_runs.results[3]
    assert "comparing again with served version" in result.stderr
    s = slice_runs.summary(-1)  # the re-comparison is the newest run
    assert s.baseline == f"served version {version}"
    assert s.gate_reason == "already_served" and s.pushed_path is None
    assert "held back: this very model is already the served one" in result.stdout
    assert sorted(os.listdir(slice_runs.serving_dir)) == [version]
