"""The faithful KFP harness's driver and launcher: one task, then a whole pipeline (tests/kfp_faithful.py
says what is emulated, from where, and what it cannot prove)."""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field

import yaml

from kfp_faithful import BUCKET, LAUNCHER_OUTPUTS, KfpVersion, LaunchError, LocalBucket, Mlmd, launcher_download
from zygote import Zygote


@dataclass
class TaskRun:
    name: str
    returncode: int | None      # None: the driver or launcher failed before or after the command
    seconds: float
    log: str
    executor_input: dict
    command: list[str] = field(default_factory=list)
    launch_error: str = ""
    outputs: dict = field(default_factory=dict)  # key -> MLMD id
    repaired: str = ""          # our entrypoint's repair line, from the whole log (``log`` keeps its tail)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.launch_error


def load_spec(path: str) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def task_order(spec: dict) -> list[str]:
    """Topological order of the root DAG (dependentTasks), ties by name."""
    tasks, done = spec["root"]["dag"]["tasks"], []
    while len(done) < len(tasks):
        ready = sorted(n for n, t in tasks.items() if n not in done and all(d in done for d in t.get("dependentTasks", [])))
        if not ready:
            raise ValueError(f"cycle among {sorted(set(tasks) - set(done))}")
        done.append(ready[0])
    return done


def component(spec: dict, task: str) -> dict:
    return spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]


def container(spec: dict, task: str) -> dict:
    return spec["deploymentSpec"]["executors"][component(spec, task)["executorLabel"]]["container"]


def parameter_values(spec: dict, task: str) -> dict:
    """The IR's constants, type-checked as the driver does (a STRING given a non-string gets its JSON)."""
    types = {k: p["parameterType"] for k, p in component(spec, task).get("inputDefinitions", {}).get("parameters", {}).items()}
    values = {}
    for key, p in spec["root"]["dag"]["tasks"][task].get("inputs", {}).get("parameters", {}).items():
        v = p["runtimeValue"]["constant"]
        if types.get(key) == "STRING" and not isinstance(v, str):
            v = json.dumps(v)
        if types.get(key) in ("NUMBER_INTEGER", "NUMBER_DOUBLE") and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise LaunchError(f"{task}: parameter {key} is {types[key]} but the IR gives {v!r}")
        values[key] = v
    return values


def executor_input(spec: dict, task: str, version: KfpVersion, run_root: str, mlmd: Mlmd,
                   produced: dict, pod: str, bucket: LocalBucket) -> dict:
    """The ExecutorInput the driver builds for `task` (outputs provisioned, inputs from MLMD)."""
    inputs = {k: {"artifacts": [mlmd.runtime_artifact(produced[(v["taskOutputArtifact"]["producerTask"],
                                                               v["taskOutputArtifact"]["outputArtifactKey"])])]}
              for k, v in spec["root"]["dag"]["tasks"][task].get("inputs", {}).get("artifacts", {}).items()}
    declared = dict(component(spec, task).get("outputDefinitions", {}).get("artifacts", {}))
    if version.executor_logs:
        declared["executor-logs"] = {"artifactType": {"schemaTitle": "system.Artifact"}}
    task_root = os.path.join(run_root, task, str(uuid.uuid4()))
    outputs = {}
    for key, d in declared.items():
        artifact = {"type": d["artifactType"], "uri": os.path.join(task_root, key)}
        if version.output_names:
            artifact["name"] = key
        if d.get("metadata"):
            artifact["metadata"] = d["metadata"]
        outputs[key] = {"artifacts": [artifact]}
    output_file = (os.path.join(pod, "gcs", BUCKET, bucket.key(task_root), "output_metadata.json")
                   if version.output_file_in_root else os.path.join(pod, "tmp", "kfp_outputs", "output_metadata.json"))
    return {"inputs": {"parameterValues": parameter_values(spec, task), "artifacts": inputs},
            "outputs": {"artifacts": outputs, "outputFile": output_file}}


def read_executor_output(path: str) -> dict:
    """getExecutorOutputFile: a missing file is an empty output; otherwise strict protojson."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    if not os.path.exists(path):
        return {}
    with open(path) as f:
        text = f.read()
    try:
        json_format.Parse(text, pipeline_spec_pb2.ExecutorOutput())  # no ignore_unknown_fields
    except json_format.ParseError as e:
        raise LaunchError(f"failed to unmarshall ExecutorOutput in file {path!r}: {e}") from None
    return json.loads(text)


def merge_outputs(provisioned: dict, reported: dict) -> dict:
    """mergeRuntimeArtifacts: uri (if set), metadata fields, custom_path; executor-logs stays as provisioned."""
    merged = {}
    for key, lst in provisioned.items():
        artifact = json.loads(json.dumps(lst["artifacts"][0]))
        src = (reported.get("artifacts", {}).get(key, {}).get("artifacts") or [{}])[0]
        if key not in LAUNCHER_OUTPUTS:
            if src.get("uri"):
                artifact["uri"] = src["uri"]
            if src.get("metadata") is not None:
                artifact["metadata"] = {**(artifact.get("metadata") or {}), **src["metadata"]}
            if src.get("customPath"):
                artifact["customPath"] = src["customPath"]
        merged[key] = artifact
    return merged


def run_pipeline(package: str, version: KfpVersion, bucket: LocalBucket, workdir: str, zygote: Zygote, *,
                 run_root: str, run_id: str = "run-1", env: dict | None = None, entrypoint: str | None = None,
                 strip_args: tuple = (), markers_fixed: bool = False, log=print) -> tuple[dict[str, TaskRun], Mlmd]:
    """Every task in DAG order as KFP would; stops at the first failure. `entrypoint` replaces the module
    the IR runs (with the `strip_args` (flag, takes a value) removed): the negative control runs TFX's.
    `markers_fixed`: the launcher skips directory markers (a backend with the #13476 fix)."""
    spec = load_spec(package)
    run_root = os.path.join(run_root, spec["pipelineInfo"]["name"], run_id)
    mlmd, produced, runs = Mlmd(), {}, {}
    for name in task_order(spec):
        pod = os.path.join(workdir, version.name.replace("<=", "le").replace(">=", "ge"), name)
        os.makedirs(pod)
        started, run = time.monotonic(), None
        try:
            ei = executor_input(spec, name, version, run_root, mlmd, produced, pod, bucket)
            run = TaskRun(name, None, 0.0, "", ei)
            for key, lst in ei["inputs"]["artifacts"].items():
                launcher_download(bucket, key, lst["artifacts"][0]["uri"], pod, markers_fixed)
            for lst in ei["outputs"]["artifacts"].values():  # GCS needs no folders; the local stand-in does
                os.makedirs(os.path.dirname(lst["artifacts"][0]["uri"]), exist_ok=True)
            os.makedirs(os.path.dirname(ei["outputs"]["outputFile"]), exist_ok=True)
            c = container(spec, name)
            args = [json.dumps(ei) if a == "{{$}}" else a for a in c["args"]]
            if [a for a in args if "{{$" in a]:
                raise LaunchError(f"{name}: placeholders this harness does not fill")
            assert c["command"][:2] == ["python", "-m"], c["command"]
            module = entrypoint or c["command"][2]
            for flag, takes_value in strip_args:
                if flag in args:
                    i = args.index(flag)
                    del args[i:i + 1 + takes_value]
            run.command = ["python", "-m", module, *args]
            log_path = os.path.join(pod, "task.log")
            run.returncode = zygote.run(module, args, {**zygote.env, **(env or {})}, pod, log_path,
                                        standin=bucket.root, fast_exit=True)
            with open(log_path, errors="replace") as f:
                whole = f.read()
            run.log = whole[-8000:]
            run.repaired = next((line for line in whole.splitlines()
                                 if "executor input repaired for open-source KFP" in line), "")
            if run.returncode == 0:
                merged = merge_outputs(ei["outputs"]["artifacts"], read_executor_output(ei["outputs"]["outputFile"]))
                for key, artifact in merged.items():
                    run.outputs[key] = produced[(name, key)] = mlmd.record(key, artifact)
        except LaunchError as e:
            run = run or TaskRun(name, None, 0.0, "", {})
            run.launch_error = str(e)
        run.seconds = time.monotonic() - started
        runs[name] = run
        log(f"[kfp {version.name}] {name}: exit {run.returncode} {run.launch_error} in {run.seconds:.1f} s")
        shutil.rmtree(os.path.join(pod, "gcs"), ignore_errors=True)  # the pod is gone; its downloads with it
        if not run.ok:
            break
    return runs, mlmd

