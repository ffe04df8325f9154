"""Compiles the pipeline for Kubeflow Pipelines: the same create_pipeline, through KubeflowV2DagRunner.

The result is KFP's pipeline IR (`PipelineSpec` as YAML, schema 2.1, what `kfp.Client` uploads). Every
task runs this project's image (kubeflow/Dockerfile), whose layout is fixed here:

    /opt/transferline/src      this repository, installed from requirements.lock
    /opt/transferline/cache    the embedded encoder, built at image build time (pods may have no internet)
    /opt/transferline/schema   the schema, content-addressed (see pipelines.pipeline.staged_schema_name)

`transferline bake` makes the last two; the Dockerfile runs it, and so does the test that executes the
compiled IR locally, against a temporary root. Compiling reads only local files and writes only the IR:
preprocessing_fn and run_fn are dotted paths into the image's code, so no wheel is staged under the
pipeline root (which `module_file` would need write access to).
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile

from tfx import v1 as tfx

from components.encoder import EMBEDDED_MODELS, build_embedded_encoder, embedded_encoder_dir, embedded_name
from components.errors import ConfigError
from pipelines.config import Config
from pipelines.pipeline import create_pipeline, staged_schema_name, stage_schema_file

IMAGE_ROOT = "/opt/transferline"
# Tasks whose result depends on more than their inputs and parameters: the ExampleGen reads whatever
# spans are in the bucket now, ServedModel and PushGate what is served now. Locally TFX's ExampleGen
# driver fingerprints the files for the cache key; open-source KFP never runs that driver
# (lifecycle.preCacheCheck), so a cached ExampleGen there would never see a new span.
UNCACHED_TASKS = ("CsvExampleGen", "ServedModel", "PushGate")


def image_paths(root: str = IMAGE_ROOT) -> dict[str, str]:
    return {"cache": os.path.join(root, "cache"), "schema": os.path.join(root, "schema")}


def bake(config: Config, root: str = IMAGE_ROOT, log=print) -> dict[str, str]:
    """Puts what tasks need offline under `root`: the embedded encoder and the staged schema."""
    paths = image_paths(root)
    # every embedded encoder, so that kubeflow.encoder_handle may name any of them (MiniLM: 89 MB more)
    encoder = build_embedded_encoder(paths["cache"], log=log)
    for name in EMBEDDED_MODELS:
        build_embedded_encoder(paths["cache"], log=log, name=name)
    schema = stage_schema_file(config.paths.schema_file, paths["schema"])
    log(f"schema staged: {schema}")
    return {"encoder": encoder, "schema": schema}


def deployed_config(config: Config) -> Config:
    """The config as the pods see it: the [kubeflow] locations in place of the local paths."""
    kf = config.kubeflow
    for name in ("pipeline_root", "data_dir", "serving_dir"):
        if not getattr(kf, name):
            raise ConfigError(f"kubeflow.{name} is empty; give a location every pod can reach, e.g. gs://…")
    paths = dataclasses.replace(config.paths, data_dir=kf.data_dir, test_data_dir=kf.test_data_dir,
                                serving_dir=kf.serving_dir, pipeline_root=kf.pipeline_root)
    return dataclasses.replace(config, paths=paths)


def kubeflow_pipeline(config: Config, image_root: str = IMAGE_ROOT) -> tfx.dsl.Pipeline:
    """create_pipeline with the production locations, the image's schema and encoder, no local MLMD."""
    handle = config.kubeflow.encoder_handle
    name = embedded_name(handle)
    if name:  # the build baked into the image; same code, so the same directory name
        handle = embedded_encoder_dir(image_paths(image_root)["cache"], name)
    schema_uri = os.path.join(image_paths(image_root)["schema"], staged_schema_name(config.paths.schema_file))
    return create_pipeline(deployed_config(config), handle,
                           metadata_connection_config=None,  # KFP records every task in its own MLMD
                           beam_pipeline_args=config.beam_pipeline_args(),
                           schema_uri=schema_uri)


def package_path(config: Config, output: str | None = None) -> str:
    """Where the IR goes: --output, else kubeflow.package_path, else <work_dir>/kubeflow/pipeline.yaml."""
    return os.path.abspath(output or config.kubeflow.package_path or config.work.compiled_pipeline)


def compile_pipeline(config: Config, output: str | None = None, image_root: str = IMAGE_ROOT) -> str:
    """Writes the pipeline IR (YAML) and returns its path. Same config and code → same bytes."""
    path = package_path(config, output)
    if not path.endswith((".yaml", ".yml")):
        raise ConfigError(f"{path}: the pipeline package must be .yaml, the only form kfp.Client uploads")
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    job = tfx.orchestration.experimental.KubeflowV2DagRunner(
        # Schema 2.1: what the open-source KFP v2 driver reads (../shared/PLATFORM.md, "Kubeflow").
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=config.kubeflow.image, use_pipeline_spec_2_1=True),
    ).run(kubeflow_pipeline(config, image_root), write_out=False)
    for_open_source_kfp(job["pipelineSpec"], config.kubeflow.pipeline_root, config.kubeflow.remove_dir_markers)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Written beside the target and renamed over it: a failed compile never leaves half a file.
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path), prefix=".compile-") as tmp:
        # TFX's own writer (private in 1.16, pinned): header comments + keys sorted, as the runner writes.
        kubeflow_v2_dag_runner._write_pipeline_spec_to_file(  # pylint: disable=protected-access
            job, f"transferline {_version()}: compiled from pipelines/pipeline.py with TFX's "
                 f"KubeflowV2DagRunner.", os.path.join(tmp, "pipeline.yaml"))
        os.replace(os.path.join(tmp, "pipeline.yaml"), path)
    return path


def for_open_source_kfp(spec: dict, pipeline_root: str, remove_dir_markers: bool = True) -> None:
    """Adjusts the compiled PipelineSpec (a dict) to what the open-source KFP v2 backend runs.

    - every task runs our entrypoint (pipelines/kubeflow_entrypoint.py) instead of TFX's, with TFX's
      arguments unchanged plus the component's outputs spec (which outputs are its own, as opposed to the
      launcher's `executor-logs`) and, with kubeflow.remove_dir_markers off, --keep_dir_markers;
    - defaultPipelineRoot: only the UI pre-fills its run form from it; the backend itself never reads it
      (submit and schedule always pass kubeflow.pipeline_root);
    - no lifecycle.preCacheCheck: the ExampleGen span driver it names never runs on open-source KFP;
      the input pattern has no {SPAN} (the executor chooses the spans itself), so it needs no driver;
    - caching off for UNCACHED_TASKS (KFP's own per-task caching option).
    """
    from pipelines.kubeflow_entrypoint import ENTRYPOINT, KEEP_MARKERS_FLAG, OUTPUTS_SPEC_FLAG

    spec["defaultPipelineRoot"] = pipeline_root
    outputs_by_executor = {c["executorLabel"]: c.get("outputDefinitions", {})
                           for c in spec["components"].values() if "executorLabel" in c}
    for label, executor in spec["deploymentSpec"]["executors"].items():
        container = executor.get("container", {})
        container.pop("lifecycle", None)
        container["command"] = ["python", "-m", ENTRYPOINT]
        ours = [OUTPUTS_SPEC_FLAG, json.dumps(outputs_by_executor.get(label, {}), indent=2, sort_keys=True)]
        container["args"] = ours + ([] if remove_dir_markers else [KEEP_MARKERS_FLAG]) + container["args"]
    for name, task in spec["root"]["dag"]["tasks"].items():
        if name in UNCACHED_TASKS:
            task["cachingOptions"] = {"enableCache": False}


def _version() -> str:
    from importlib import metadata

    return metadata.version("transferline")


def main_compile(config: Config, output: str | None = None, out=sys.stderr) -> int:
    path = compile_pipeline(config, output)
    kf = config.kubeflow
    print(f"[transferline] compiled for Kubeflow Pipelines: {path}\n"
          f"  image {kf.image}\n  pipeline root {kf.pipeline_root}\n  data {kf.data_dir}\n"
          f"  pushes to {kf.serving_dir}\n  encoder {kf.encoder_handle}", file=out)
    print(path)
    return 0
