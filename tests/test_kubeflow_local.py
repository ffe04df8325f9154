"""The compiled Kubeflow pipeline, executed locally task by task through its own container commands
(tests/kfp_local.py), from CsvExampleGen to Pusher on a small real slice of TREC."""
import json
import os

import pytest

from conftest import TEST_CSV, TRAIN_CSV, read_rows, stratified, write_csv
from kfp_local import ENTRYPOINT, container, load_spec, run_pipeline_spec, task_order

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kfp_run(tmp_path_factory):
    """Bake an image root as the Dockerfile does, compile against it and local 'bucket' paths, run every task."""
    from pipelines.config import load_config
    from pipelines.kubeflow_runner import bake, compile_pipeline

    root = tmp_path_factory.mktemp("kfp")
    bucket = root / "bucket"
    write_csv(str(bucket / "data" / "span-1" / "questions.csv"), stratified(read_rows(TRAIN_CSV), 300))
    write_csv(str(bucket / "test" / "questions.csv"), stratified(read_rows(TEST_CSV), 200, seed=1))
    config = load_config(None, [
        f"kubeflow.pipeline_root={bucket / 'root'}", f"kubeflow.data_dir={bucket / 'data'}",
        f"kubeflow.test_data_dir={bucket / 'test'}", f"kubeflow.serving_dir={bucket / 'serving'}",
        "kubeflow.encoder_handle=embedded", "kubeflow.image=local/transferline:test",
        "beam.direct_running_mode=in_memory"])
    baked = bake(config, str(root / "image"), log=lambda m: None)
    package = compile_pipeline(config, str(root / "pipeline.yaml"), image_root=str(root / "image"))
    # The pods' environment is the Dockerfile's ENV; TF_USE_LEGACY_KERAS is the one that matters here.
    runs = run_pipeline_spec(package, str(bucket / "root"), env={"TF_USE_LEGACY_KERAS": "1"},
                             log=lambda m: None)
    return {"runs": runs, "spec": load_spec(package), "serving": str(bucket / "serving"), "baked": baked,
            "config": config}


def test_every_task_exits_0_in_dag_order(kfp_run):
    runs, spec = kfp_run["runs"], kfp_run["spec"]
    failed = [(r.name, r.output_tail) for r in runs.values() if r.returncode]
    assert not failed, failed[0][1]
    assert list(runs) == task_order(spec) and len(runs) == 13
    for name, run in runs.items():
        for upstream in spec["root"]["dag"]["tasks"][name].get("dependentTasks", []):
            assert list(runs).index(upstream) < list(runs).index(name)


def test_each_task_ran_its_compiled_command_and_args(kfp_run):
    for name, run in kfp_run["runs"].items():
        c = container(kfp_run["spec"], name)
        assert run.command[1:3] == ["-m", ENTRYPOINT] and c["command"] == ["python", "-m", ENTRYPOINT]
        expected = [json.dumps(run.executor_input) if a == "{{$}}" else a for a in c["args"]]
        assert run.command[3:] == expected, name


def test_artifact_metadata_flows_downstream_as_kfp_passes_it(kfp_run):
    runs = kfp_run["runs"]
    examples = runs["CsvExampleGen"].outputs["examples"]["metadata"]
    assert json.loads(examples["split_names"]) == ["train", "eval", "test"] and examples["spans"] == "1"
    # Transform got ExampleGen's artifact, split names included, as the driver would pass it.
    given = runs["Transform"].executor_input["inputs"]["artifacts"]["examples"]["artifacts"][0]
    assert given == runs["CsvExampleGen"].outputs["examples"]
    baseline = runs["ServedModelBaseline"].outputs["baseline"]["metadata"]
    assert baseline["baseline_source"] == "first_model" and baseline["baseline_version"] == 0
    assert runs["Evaluator"].outputs["blessing"]["metadata"]["blessed"] == 1
    gate = runs["PushGate"].outputs["gate"]["metadata"]
    assert gate["blessed"] == 1 and gate["reason"] == "ok" and gate["spans"] == "1"
    # The references reach PushGate as KFP passes artifact metadata (floats), and the first model beat them.
    refs = runs["References"].outputs["references"]["metadata"]
    assert 0 < refs["majority_accuracy"] < refs["tfidf_lr_accuracy"] <= gate["candidate_accuracy"]
    # The encoder the pods used is the one baked into the image root.
    custom = json.loads(runs["Transform"].executor_input["inputs"]["parameterValues"]["custom_config"])
    assert custom["encoder_handle"] == kfp_run["baked"]["encoder"]


def test_pushed_model_serves_raw_text(kfp_run):
    from ops.predict import newest_served_model, predict

    pushed = kfp_run["runs"]["Pusher"].outputs["pushed_model"]["metadata"]
    assert pushed["pushed"] == 1
    assert os.listdir(kfp_run["serving"]) == [pushed["pushed_version"]]
    model_dir = newest_served_model(kfp_run["serving"])
    assert model_dir == pushed["pushed_destination"]
    with open(os.path.join(model_dir, "assets.extra", "transferline.json")) as f:  # the push's provenance
        assert json.load(f)["training_fingerprint"] == kfp_run["runs"]["PushGate"].outputs["gate"]["metadata"][
            "training_fingerprint"]
    rows = read_rows(TEST_CSV)[-60:]  # not all in the 200-question slice the gate used
    predictions = predict(model_dir, [r["text"] for r in rows])
    accuracy = sum(p["label"] == r["label"] for p, r in zip(predictions, rows)) / len(rows)
    assert accuracy >= 0.7, accuracy
    assert all(0.0 <= p["score"] <= 1.0 for p in predictions)
