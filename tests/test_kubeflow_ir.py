"""The compiled Kubeflow pipeline (KFP IR): what the open-source backend accepts, wired like the local pipeline,
with the configured image, command and knobs, and reproducible to the byte."""
import ast
import glob
import hashlib
import json
import os
import re

import pytest
import yaml
from google.protobuf import json_format

from components import names
from conftest import REPO, run_cli

pytestmark = pytest.mark.slow  # loads TF models, compiles or runs pipelines

ENTRYPOINT = ["python", "-m", "pipelines.kubeflow_entrypoint"]
KNOBS = ["gate.min_accuracy=0.77", "gate.reference_margin=0.02", "trainer.hidden_units=128", "trainer.learning_rate=0.002",
         "contract.max_text_chars=500", "data.train_spans=2", "kubeflow.image=registry.example/team/transferline:abc123",
         "kubeflow.pipeline_root=gs://bucket-x/root", "kubeflow.data_dir=gs://bucket-x/data",
         "kubeflow.test_data_dir=gs://bucket-x/test", "kubeflow.serving_dir=gs://bucket-x/serving",
         "kubeflow.encoder_handle=gs://bucket-x/encoders/use-m3", "beam.extra_args=--runner=DataflowRunner,--region=eu",
         "kubeflow.remove_dir_markers=false"]


def compile_to(path, overrides=()):
    from pipelines.config_loading import load_config
    from pipelines.kubeflow_runner import compile_pipeline

    return compile_pipeline(load_config(None, list(overrides)), str(path))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The default config compiled twice, and once with KNOBS."""
    d = tmp_path_factory.mktemp("ir")
    paths = [compile_to(d / "a.yaml"), compile_to(d / "b.yaml"), compile_to(d / "knobs.yaml", KNOBS)]
    return [open(p, "rb").read() for p in paths]


def spec_of(data: bytes) -> dict:
    return yaml.safe_load(data)


def param(spec, task, name):
    return spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"][name]["runtimeValue"]["constant"]


def executors(spec):
    tasks = spec["root"]["dag"]["tasks"]
    return {name: spec["deploymentSpec"]["executors"][
        spec["components"][t["componentRef"]["name"]]["executorLabel"]] for name, t in tasks.items()}


def test_compiles_to_the_same_bytes(compiled):
    """(Whether the checked-in kubeflow/pipeline.yaml is current is a unit test: tests/test_ir_current.py.)"""
    a, b, _ = compiled
    assert a == b


def test_parses_into_kfps_pipeline_spec_with_schema_2_1(compiled):
    import kfp.components
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = spec_of(compiled[0])
    proto = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # strict: unknown fields fail
    assert proto.schema_version == "2.1.0" and proto.pipeline_info.name == "transferline"
    assert proto.default_pipeline_root == "gs://your-bucket/transferline/pipeline_root"
    assert len(proto.root.dag.tasks) == len(names.COMPONENTS)
    assert kfp.components.load_component_from_text(compiled[0].decode()).name == "transferline"


def test_tasks_and_edges_equal_the_local_pipeline(compiled, encoder_dir):
    from pipelines.config_loading import load_config
    from pipelines.pipeline import create_pipeline

    local = create_pipeline(load_config(), encoder_dir)
    local_edges = {c.id: sorted(u.id for u in c.upstream_nodes) for c in local.components}
    tasks = spec_of(compiled[0])["root"]["dag"]["tasks"]
    assert {name: sorted(t.get("dependentTasks", [])) for name, t in tasks.items()} == local_edges
    assert "DataGate" in local_edges["Transform"]  # bad data stops before anything is trained, on KFP too


def test_every_task_is_a_container_running_the_tfx_entrypoint_in_the_image(compiled):
    from tfx.utils import import_utils

    text = compiled[0].decode()
    spec = spec_of(compiled[0])
    assert "resolver" not in text.lower() and "importer" not in text.lower()
    assert "lifecycle" not in text and "preCacheCheck" not in text
    for name, executor in executors(spec).items():
        assert set(executor) == {"container"}, name
        c = executor["container"]
        assert set(c) == {"image", "command", "args"}, name
        assert c["image"] == "gcr.io/your-project/transferline:0.1.0"
        assert c["command"] == ENTRYPOINT  # ours, around TFX's executor run (kubeflow_entrypoint.py)
        # Our outputs spec first (the component's own outputs, not the launcher's), then TFX's arguments.
        assert c["args"][0] == "--json_serialized_outputs_spec_args"
        assert json.loads(c["args"][1]) == spec["components"][name]["outputDefinitions"]
        assert c["args"][2] == "--executor_class_path" and "{{$}}" in c["args"]
        assert "--json_serialized_inputs_spec_args" in c["args"] and "--keep_dir_markers" not in c["args"]
        assert [a for a in c["args"] if "{{" in a] == ["{{$}}"]  # the only placeholder KFP fills
        # The executor class is importable from this project's code, i.e. from the image.
        assert import_utils.import_class_by_path(c["args"][3]), name
        assert c["args"][-2:] == ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]


def test_tasks_that_read_outside_state_are_not_cached(compiled):
    from pipelines.kubeflow_runner import UNCACHED_TASKS

    tasks = spec_of(compiled[0])["root"]["dag"]["tasks"]
    uncached = {n for n, t in tasks.items() if not t["cachingOptions"].get("enableCache")}
    assert uncached == set(UNCACHED_TASKS)


def test_knobs_land_where_the_components_read_them(compiled):
    spec = spec_of(compiled[2])
    assert spec["defaultPipelineRoot"] == "gs://bucket-x/root"
    evaluator = json.loads(param(spec, "Evaluator", "eval_config"))
    accuracy = next(m for m in evaluator["metrics_specs"][0]["metrics"]
                    if m["class_name"] == "SparseCategoricalAccuracy")
    assert accuracy["threshold"]["value_threshold"]["lower_bound"] == 0.77
    trainer = json.loads(param(spec, "Trainer", "custom_config"))["trainer"]  # components.trainer.TRAINER_CONFIG
    assert trainer["hidden_units"] == 128 and trainer["learning_rate"] == 0.002
    transform = json.loads(param(spec, "Transform", "custom_config"))
    assert transform["encoder_handle"] == "gs://bucket-x/encoders/use-m3"
    assert param(spec, "Transform", "preprocessing_fn") == "components.transform.preprocessing_fn"
    assert param(spec, "Trainer", "run_fn") == "components.trainer.run_fn"
    assert param(spec, "DataGate", "max_text_chars") == 500
    assert param(spec, "CsvExampleGen", "input_base") == "gs://bucket-x/data"
    assert param(spec, "DataGate", "data_dir") == "gs://bucket-x/data"
    spans_config = json.loads(param(spec, "CsvExampleGen", "custom_config"))["custom_config"]["value"]
    assert spans_config["test_data_dir"] == "gs://bucket-x/test" and spans_config["window"] == 2
    for task in ("ServedModel", "PushGate"):
        assert param(spec, task, "serving_dir") == "gs://bucket-x/serving"
    assert param(spec, "PushGate", "reference_margin") == 0.02 and param(spec, "References", "seed") == 42
    assert json.loads(param(spec, "Pusher", "push_destination")) == {
        "filesystem": {"base_directory": "gs://bucket-x/serving"}}
    with open(os.path.join(REPO, "pipelines", "schema", "schema.pbtxt"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    assert param(spec, "ImportSchemaGen", "schema_file") == f"/opt/transferline/schema/schema-{digest}.pbtxt"
    for name, executor in executors(spec).items():
        c = executor["container"]
        assert c["image"] == "registry.example/team/transferline:abc123"
        assert c["args"][-2:] == ["--runner=DataflowRunner", "--region=eu"], name
        assert c["args"][2] == "--keep_dir_markers", name  # a backend with the #13476 fix


def test_embedded_encoder_resolves_to_the_copy_baked_into_the_image():
    from components.encoder import embedded_encoder_dir
    from pipelines.config_loading import load_config
    from pipelines.kubeflow_runner import kubeflow_pipeline

    pipeline = kubeflow_pipeline(load_config(None, ["kubeflow.encoder_handle=embedded"]))
    transform = next(c for c in pipeline.components if c.id == "Transform")
    handle = json.loads(transform.exec_properties["custom_config"])["encoder_handle"]
    assert handle == embedded_encoder_dir("/opt/transferline/cache")
    assert handle.startswith("/opt/transferline/cache/encoders/use-m3-")


def test_dockerfile_builds_the_layout_the_pipeline_expects():
    import tfx

    from pipelines.kubeflow_runner import IMAGE_ROOT

    with open(os.path.join(REPO, "kubeflow", "Dockerfile")) as f:
        text = f.read()
    assert re.search(rf"^FROM gcr.io/tfx-oss-public/tfx:{re.escape(tfx.__version__)}$", text, re.M)
    assert "TF_USE_LEGACY_KERAS=1" in text and f"TRANSFERLINE_CACHE={IMAGE_ROOT}/cache" in text
    assert "--no-deps --ignore-requires-python" in text and "-r requirements.lock" in text
    assert f"transferline bake --root {IMAGE_ROOT}" in text
    copied = re.findall(r"^COPY (\S+)", text, re.M)
    for path in copied:  # everything it copies exists here
        assert os.path.exists(os.path.join(REPO, path)), path
    assert {"components", "pipelines", "ops"} <= set(copied)  # every package pyproject installs


def test_code_the_image_runs_parses_as_python_3_10():
    """The TFX 1.16 image is Python 3.10; this project is developed on 3.11."""
    for path in sum((glob.glob(os.path.join(REPO, package, "*.py")) for package in ("pipelines", "components", "ops")), []):
        with open(path) as f:
            ast.parse(f.read(), path, feature_version=(3, 10))


def test_compile_cli_writes_where_asked_and_rejects_a_non_yaml_package(tmp_path):
    out = tmp_path / "p.yaml"
    result = run_cli("compile", "--output", str(out), "--image", "example/img:1", "--kf-encoder", "embedded")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == str(out)
    assert "example/img:1" in out.read_text() and "/opt/transferline/cache/encoders/" in out.read_text()
    result = run_cli("compile", "--output", str(tmp_path / "p.json"))
    assert result.returncode == 2 and "must be .yaml" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "p.json").exists()
