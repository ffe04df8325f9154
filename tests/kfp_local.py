"""Runs a compiled KFP pipeline IR (kubeflow/pipeline.yaml) locally, task by task, as KFP would.

For each task, in DAG order, it does what the open-source KFP v2 driver and launcher do around a
container: build the executor-input JSON (parameters from the task's constants; input artifacts from
upstream outputs with the metadata their executors reported; output URIs under the pipeline root;
an outputFile), substitute it for the `{{$}}` placeholder, run the task's exact command and args as
a subprocess (the output artifacts' parent folders made first, as KFP's launcher does), then read the ExecutorOutput back and give each output artifact a name (KFP's MLMD id).

Only two things differ from a pod: `python` is this interpreter or the one given (not the image's),
and there is no cache (KFP's cache is a server feature; this walks every task).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

import yaml

ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"


@dataclass
class TaskRun:
    name: str
    command: list[str]
    returncode: int
    seconds: float
    output_tail: str
    executor_input: dict
    outputs: dict = field(default_factory=dict)  # key -> the RuntimeArtifact dict as reported


def load_spec(package_path: str) -> dict:
    with open(package_path) as f:
        return yaml.safe_load(f)


def task_order(spec: dict) -> list[str]:
    """Topological order of the root DAG's tasks (dependentTasks), ties by name, like a stable scheduler."""
    tasks = spec["root"]["dag"]["tasks"]
    done: list[str] = []
    while len(done) < len(tasks):
        ready = sorted(n for n, t in tasks.items()
                       if n not in done and all(d in done for d in t.get("dependentTasks", [])))
        if not ready:
            raise ValueError(f"cycle among {sorted(set(tasks) - set(done))}")
        done.append(ready[0])
    return done


def container(spec: dict, task_name: str) -> dict:
    task = spec["root"]["dag"]["tasks"][task_name]
    component = spec["components"][task["componentRef"]["name"]]
    return spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]


def run_pipeline_spec(package_path: str, pipeline_root: str, run_id: str = "local-run", *,
                      env: dict | None = None, timeout: float = 900, python: str = sys.executable,
                      log=print) -> dict[str, TaskRun]:
    """Runs every task; stops at the first that exits non-zero. Returns the runs by task name."""
    spec = load_spec(package_path)
    run_root = os.path.join(pipeline_root, run_id)
    os.makedirs(run_root, exist_ok=True)
    produced: dict[tuple[str, str], dict] = {}
    runs: dict[str, TaskRun] = {}
    for name in task_order(spec):
        task = spec["root"]["dag"]["tasks"][name]
        component = spec["components"][task["componentRef"]["name"]]
        inputs = task.get("inputs", {})
        executor_input = {
            "inputs": {
                "parameterValues": {k: v["runtimeValue"]["constant"]
                                    for k, v in inputs.get("parameters", {}).items()},
                "artifacts": {k: {"artifacts": [produced[(v["taskOutputArtifact"]["producerTask"],
                                                          v["taskOutputArtifact"]["outputArtifactKey"])]]}
                              for k, v in inputs.get("artifacts", {}).items()},
            },
            "outputs": {
                "artifacts": {k: {"artifacts": [{"type": d["artifactType"],
                                                 "uri": os.path.join(run_root, name, k), "metadata": {}}]}
                              for k, d in component.get("outputDefinitions", {}).get("artifacts", {}).items()},
                "outputFile": os.path.join(run_root, name, "executor_output.json"),
            },
        }
        for declared in executor_input["outputs"]["artifacts"].values():  # as the launcher prepares them
            os.makedirs(os.path.dirname(declared["artifacts"][0]["uri"]), exist_ok=True)
        c = container(spec, name)
        args = [json.dumps(executor_input) if a == "{{$}}" else a for a in c["args"]]
        leftover = [a for a in args if "{{$" in a]
        if leftover:
            raise ValueError(f"{name}: placeholders this harness does not fill: {leftover}")
        command = [python if c["command"][0] == "python" else c["command"][0], *c["command"][1:]]
        log(f"[kfp-local] {name} ...")
        started = time.monotonic()
        proc = subprocess.run(command + args, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, cwd=run_root)
        run = TaskRun(name, command + args, proc.returncode, time.monotonic() - started,
                      (proc.stdout + proc.stderr)[-6000:], executor_input)
        runs[name] = run
        log(f"[kfp-local] {name} exit {proc.returncode} in {run.seconds:.1f} s")
        if proc.returncode:
            break
        with open(executor_input["outputs"]["outputFile"]) as f:
            reported = json.load(f).get("artifacts", {})
        for key, declared in executor_input["outputs"]["artifacts"].items():
            artifact = dict(declared["artifacts"][0])
            if key in reported:  # the executor's view: uri plus the properties it set (split_names, blessed…)
                artifact.update({k: v for k, v in reported[key]["artifacts"][0].items() if k != "name"})
            artifact["name"] = f"{run_id}/{name}/{key}"  # what KFP's launcher records in MLMD
            run.outputs[key] = artifact
            produced[(name, key)] = artifact
    return runs
