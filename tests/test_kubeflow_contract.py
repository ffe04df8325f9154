"""The KFP contract in pure logic: our entrypoint's repairs, the directory-marker rule, and the faithful
harness's emulation pinned to the shape of a real open-source executor input (no TFX, no pipeline run)."""
import json
import os

import pytest

from components.errors import KubeflowContractError
from kfp_faithful import (KFP_COMMIT, MINIO_DEFAULT_ROOT, VERSIONS, LaunchError, LocalBucket, Mlmd,
                          launcher_download, pipeline_root)
from kfp_run import executor_input, load_spec, merge_outputs, read_executor_output
from pipelines.kubeflow_entrypoint import (drop_launcher_outputs, refuse_unopenable_uris, repair,
                                           restore_input_types, unwrap_kfp_values)
from pipelines.kubeflow_markers import markers_to_remove, remove_directory_markers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# kubeflow/pipelines @ 7b70c7b95f (KFP_COMMIT), sdk/python/kfp/dsl/executor_test.py:1041-1083,
# test_component_with_input_path: "a real OSS executor input" (parameters left out: ours are the IR's).
SDK_FIXTURE = json.loads("""{
  "inputs": {"artifacts": {"dataset_one_path": {"artifacts": [{
      "name": "84085", "type": {"instanceSchema": ""},
      "uri": "gs://mlpipeline/v2/artifacts/my-test-pipeline-beta/b2b0cdee-b15c-48ff-b8bc-a394ae46c854/preprocess/output_dataset_one",
      "metadata": {"display_name": "output_dataset_one"}}]}}},
  "outputs": {"artifacts": {"model": {"artifacts": [{
      "type": {"schemaTitle": "system.Model", "schemaVersion": "0.0.1"},
      "uri": "gs://mlpipeline/v2/artifacts/my-test-pipeline-beta/b2b0cdee-b15c-48ff-b8bc-a394ae46c854/train/model"}]}},
    "outputFile": "/tmp/test_dir/output_metadata.json"}}""")


@pytest.fixture(scope="module")
def spec():
    return load_spec(os.path.join(REPO, "kubeflow", "pipeline.yaml"))


def task_args(spec, task):
    label = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]["executorLabel"]
    args = spec["deploymentSpec"]["executors"][label]["container"]["args"]
    return {f: json.loads(args[args.index(f) + 1]) for f in ("--json_serialized_inputs_spec_args",
                                                            "--json_serialized_outputs_spec_args")}


def emulated(spec, tmp_path, version="2.5-2.14", task="Transform"):
    """The driver's executor input for `task`, its inputs produced and recorded upstream with metadata."""
    mlmd, produced = Mlmd(), {}
    for producer, key in (("CsvExampleGen", "examples"), ("ImportSchemaGen", "schema")):
        produced[(producer, key)] = mlmd.record(key, {"uri": f"gs://b/root/{producer}/u/{key}", "metadata": {
            "split_names": '["train", "eval"]', "span": 0.0, "flags": [1, 2], "ok": True}})
    bucket = LocalBucket(str(tmp_path / "bucket"))
    return executor_input(spec, task, VERSIONS[version], str(tmp_path / "bucket" / "run"), mlmd, produced,
                          str(tmp_path / "pod"), bucket)


def shape(value):
    """The JSON shape: keys and value kinds, not the values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value).__name__


def test_golden_the_emulated_input_has_the_shape_of_a_real_oss_executor_input(spec, tmp_path):
    assert KFP_COMMIT.startswith("7b70c7b95f")
    ei = emulated(spec, tmp_path)
    real_in = SDK_FIXTURE["inputs"]["artifacts"]["dataset_one_path"]["artifacts"][0]
    ours = ei["inputs"]["artifacts"]["examples"]["artifacts"][0]
    assert set(ours) == set(real_in) and ours["type"] == real_in["type"] == {"instanceSchema": ""}
    assert ours["name"].isdigit() and real_in["name"].isdigit()
    assert set(real_in["metadata"]) <= set(ours["metadata"]) and "store_session_info" in ours["metadata"]
    real_out = SDK_FIXTURE["outputs"]["artifacts"]["model"]["artifacts"][0]
    out = ei["outputs"]["artifacts"]["transform_graph"]["artifacts"][0]
    assert set(out) == set(real_out) and out["uri"].endswith("/Transform/" + out["uri"].split("/")[-2] + "/transform_graph")
    assert set(ei["outputs"]) == set(SDK_FIXTURE["outputs"]) and set(ei["inputs"]) >= set(SDK_FIXTURE["inputs"])
    assert ei["outputs"]["outputFile"].endswith("/tmp/kfp_outputs/output_metadata.json")


def test_versions_differ_where_kfp_does(spec, tmp_path):
    old, mid, new = (emulated(spec, tmp_path / v, v) for v in VERSIONS)
    assert "executor-logs" not in old["outputs"]["artifacts"]
    assert mid["outputs"]["artifacts"]["executor-logs"]["artifacts"][0]["type"] == {"schemaTitle": "system.Artifact"}
    assert "name" not in mid["outputs"]["artifacts"]["transform_graph"]["artifacts"][0]
    assert new["outputs"]["artifacts"]["transform_graph"]["artifacts"][0]["name"] == "transform_graph"
    assert "/gcs/standin-bucket/run/Transform/" in new["outputs"]["outputFile"]


def test_mlmd_round_trip_converts_values_and_fails_the_producer_on_null():
    mlmd = Mlmd()
    artifact = mlmd.runtime_artifact(mlmd.record("k", {"uri": "u", "metadata": {"b": True, "l": [1], "s": {"x": 1}}}))
    assert artifact["metadata"]["b"] == 1 and artifact["metadata"]["l"] == {"list": [1]}
    assert artifact["metadata"]["s"] == {"struct": {"x": 1}} and artifact["metadata"]["display_name"] == "k"
    with pytest.raises(LaunchError, match="unsupported value type"):
        mlmd.record("k", {"uri": "u", "metadata": {"n": None}})


def test_entrypoint_restores_types_unwraps_values_and_drops_launcher_outputs(spec, tmp_path):
    ei = emulated(spec, tmp_path)
    specs = task_args(spec, "Transform")
    fixed, notes = repair(ei, specs["--json_serialized_inputs_spec_args"],
                          specs["--json_serialized_outputs_spec_args"], ["gs", "file", ""])
    assert notes == {"types restored": ["examples", "schema"], "values unwrapped": ["examples.flags", "schema.flags"],
                     "launcher outputs dropped": ["executor-logs"]}
    examples = fixed["inputs"]["artifacts"]["examples"]["artifacts"][0]
    assert examples["type"]["instanceSchema"].startswith("title: tfx.Examples")
    assert examples["metadata"]["flags"] == [1, 2] and examples["metadata"]["ok"] == 1
    assert set(fixed["outputs"]["artifacts"]) == set(specs["--json_serialized_outputs_spec_args"]["artifacts"])
    assert ei["inputs"]["artifacts"]["examples"]["artifacts"][0]["type"] == {"instanceSchema": ""}  # input untouched


def test_an_untyped_input_without_a_spec_fails_in_one_clear_line():
    ei = {"inputs": {"artifacts": {"mystery": {"artifacts": [{"type": {"instanceSchema": ""}, "uri": "gs://b/x"}]}}}}
    with pytest.raises(KubeflowContractError) as e:
        restore_input_types(ei, {"artifacts": {"examples": {}}})
    assert "'mystery'" in str(e.value) and "declared: examples" in str(e.value) and "\n" not in str(e.value)
    typed = {"inputs": {"artifacts": {"x": {"artifacts": [{"type": {"schemaTitle": "tfx.Model"}}]}}}}
    assert restore_input_types(typed, {}) == []  # a typed input (Vertex) is left alone
    assert unwrap_kfp_values({"inputs": {"artifacts": {"x": {"artifacts": [{"metadata": {"l": {"list": 1}}}]}}}}) == []
    outs = {"outputs": {"artifacts": {"model": {}, "executor-logs": {}, "extra": {}}}}
    assert drop_launcher_outputs(outs, {"artifacts": {"model": {}}}) == ["executor-logs", "extra"]


def test_minio_and_unplugged_s3_roots_are_refused_clearly(spec):
    root = pipeline_root(None, None, spec)
    assert root == MINIO_DEFAULT_ROOT and spec["defaultPipelineRoot"].startswith("gs://")  # spec root ignored
    assert pipeline_root(None, "gs://cm/root", spec) == "gs://cm/root" == pipeline_root("gs://cm/root", "x", spec)
    ei = {"outputs": {"artifacts": {"m": {"artifacts": [{"uri": root + "/p/r/t/u/m"}]}}}}
    with pytest.raises(KubeflowContractError, match="TensorFlow cannot open minio://.*gs:// pipeline root"):
        refuse_unopenable_uris(ei, ["gs", "file", ""])
    s3 = {"outputs": {"artifacts": {"m": {"artifacts": [{"uri": "s3://b/m"}]}}}}
    with pytest.raises(KubeflowContractError, match="s3://"):
        refuse_unopenable_uris(s3, ["gs", "file", ""])
    refuse_unopenable_uris(s3, ["gs", "s3"])  # tensorflow-io's s3 filesystem registered: allowed


def test_markers_to_remove_keeps_empty_directories_and_format_serving():
    objects = [("gs://b/m/", 0), ("gs://b/m/Format-Serving/", 0), ("gs://b/m/Format-Serving/saved_model.pb", 9),
               ("gs://b/m/Format-Serving/assets/", 0), ("gs://b/m/empty/", 0), ("gs://b/m/data/", 5),
               ("gs://b/m/data/x", 1)]
    assert markers_to_remove(objects) == ["gs://b/m/", "gs://b/m/Format-Serving/"]


def make_tree(bucket_dir):
    """An output as TF writes it: a model tree; LocalBucket lists every directory as a marker."""
    uri = os.path.join(bucket_dir, "root", "Trainer", "u1", "model")
    os.makedirs(os.path.join(uri, "Format-Serving", "variables"))
    os.makedirs(os.path.join(uri, "Format-Serving", "assets"))  # empty: keeps its marker
    for name in ("Format-Serving/saved_model.pb", "Format-Serving/variables/variables.index"):
        with open(os.path.join(uri, name), "w") as f:
            f.write("x")
    return uri


def test_marker_rule_download_fails_without_cleanup_and_passes_with_it(tmp_path):
    bucket = LocalBucket(str(tmp_path / "bucket"))
    uri = make_tree(bucket.root)
    assert uri + "/Format-Serving/" in bucket.markers(uri)
    with pytest.raises(LaunchError, match="not a directory"):
        launcher_download(bucket, "model", uri, str(tmp_path / "pod1"))
    launcher_download(bucket, "model", uri, str(tmp_path / "pod-fixed"), markers_fixed=True)  # a fixed backend
    removed = remove_directory_markers(uri, bucket)
    assert sorted(removed) == sorted([uri + "/", uri + "/Format-Serving/", uri + "/Format-Serving/variables/"])
    local = launcher_download(bucket, "model", uri, str(tmp_path / "pod2"))
    assert open(os.path.join(local, "Format-Serving", "saved_model.pb")).read() == "x"
    assert os.path.isfile(os.path.join(local, "Format-Serving", "assets"))  # an empty dir's marker: empty file
    assert os.path.isdir(os.path.join(uri, "Format-Serving", "assets"))  # nothing flattened in the bucket


def test_executor_output_is_parsed_strictly_and_merged_as_the_launcher_does(tmp_path):
    path = tmp_path / "out.json"
    path.write_text(json.dumps({"artifacts": {"model": {"artifacts": [{"uri": "gs://b/m2", "bogus": 1}]}}}))
    with pytest.raises(LaunchError, match="failed to unmarshall ExecutorOutput"):
        read_executor_output(str(path))
    assert read_executor_output(str(tmp_path / "missing.json")) == {}
    provisioned = {"model": {"artifacts": [{"name": "model", "uri": "gs://b/m", "type": {"schemaTitle": "t"}}]},
                   "executor-logs": {"artifacts": [{"uri": "gs://b/logs", "type": {"schemaTitle": "system.Artifact"}}]}}
    reported = {"artifacts": {"model": {"artifacts": [{"name": "other", "uri": "gs://b/m2", "metadata": {"a": 1}}]},
                              "executor-logs": {"artifacts": [{"uri": "gs://b/elsewhere"}]}}}
    merged = merge_outputs(provisioned, reported)
    assert merged["model"] == {"name": "model", "uri": "gs://b/m2", "type": {"schemaTitle": "t"}, "metadata": {"a": 1}}
    assert merged["executor-logs"]["uri"] == "gs://b/logs"


def test_kubeflow_check_names_each_deviation_and_whether_it_is_handled(spec, tmp_path, capsys):
    import argparse

    from ops.kubeflow.check import check_command

    ei = emulated(spec, tmp_path)
    pod = {"spec": {"containers": [{"args": ["--copy_launcher", "--executor_input", json.dumps(ei)]}]}}
    (tmp_path / "pod.json").write_text(json.dumps(pod))
    args = argparse.Namespace(file=str(tmp_path / "pod.json"), package=os.path.join(REPO, "kubeflow", "pipeline.yaml"),
                              task=None, config=None, overrides=[])
    assert check_command(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("task Transform ")
    for line in ("[handled] input artifacts without a type", "[handled] input artifacts named by MLMD id",
                 "[handled] launcher-managed outputs (executor-logs", "[handled] metadata lists/structs wrapped"):
        assert line in out, out
    assert "every deviation found" in out
    ei["outputs"]["artifacts"]["transform_graph"]["artifacts"][0]["uri"] = "minio://mlpipeline/v2/artifacts/x"
    (tmp_path / "ei.json").write_text(json.dumps(ei))
    args.file = str(tmp_path / "ei.json")
    assert check_command(args) == KubeflowContractError.exit_code
    assert "[NOT HANDLED] URIs TensorFlow cannot open" in capsys.readouterr().out
