"""`transferline kubeflow-check FILE`: which known KFP deviations a captured executor input contains, and
whether our task entrypoint handles each (README, "Running on Kubeflow": the one-run check).

FILE is the JSON a real task got: the value of `--executor_input` in its pod spec, or the whole pod as
`kubectl get pod POD -o json` prints it (the value is taken from there), or `-` for stdin. The task's compiled specs come from the IR
(`--package`, default kubeflow.package_path), found by `--task` or by the task's declared output keys.
"""
from __future__ import annotations

import json
import os
import sys

from components.errors import KubeflowContractError, UserError
from ops.args import add_config_args, config_from


def register(sub) -> None:
    p = sub.add_parser("kubeflow-check", help="say which known KFP deviations a captured --executor_input "
                                              "contains and whether our entrypoint handles each")
    add_config_args(p, work_dir=None)
    p.add_argument("file", metavar="FILE", help="the executor input JSON from a task's pod spec ('-': stdin)")
    p.add_argument("--package", metavar="FILE", help="the compiled IR the run used (kubeflow.package_path)")
    p.add_argument("--task", help="the task's name in the IR (default: found from its output keys)")
    p.set_defaults(func=check_command)


def find_task(spec: dict, executor_input: dict, task: str | None) -> str:
    """The IR task whose component declares exactly the given outputs (launcher outputs aside)."""
    tasks = spec["root"]["dag"]["tasks"]
    if task:
        if task not in tasks:
            raise UserError(f"--task {task}: not in the IR (tasks: {', '.join(sorted(tasks))})")
        return task
    given = set(executor_input.get("outputs", {}).get("artifacts", {}))
    matches = [n for n, t in tasks.items()
               if set(spec["components"][t["componentRef"]["name"]].get("outputDefinitions", {}).get("artifacts", {}))
               == given - {"executor-logs"}]
    if len(matches) != 1:
        raise UserError(f"cannot tell which task this executor input is for ({', '.join(matches) or 'none'} "
                        f"match its outputs {sorted(given)}); give --task")
    return matches[0]


def deviations(executor_input: dict, inputs_spec: dict, outputs_spec: dict,
               registered_schemes: tuple = ("gs", "file"), keep_markers: bool = False) -> list[tuple[str, str, bool]]:
    """(deviation, detail, handled by our entrypoint) for each known deviation found."""
    from pipelines.kubeflow_entrypoint import repair, uris

    found = []
    inputs = executor_input.get("inputs", {}).get("artifacts", {})
    untyped = sorted(k for k, lst in inputs.items() for a in lst.get("artifacts", [])
                     if not ((a.get("type") or {}).get("schemaTitle") or (a.get("type") or {}).get("instanceSchema")))
    if untyped:
        missing = [k for k in untyped if k not in inputs_spec.get("artifacts", {})]
        found.append(("input artifacts without a type (MLMD gives instanceSchema: \"\")", ", ".join(untyped),
                      not missing))
    ids = sorted(k for k, lst in inputs.items() for a in lst.get("artifacts", []) if a.get("name", "").isdigit())
    if ids:
        found.append(("input artifacts named by MLMD id", ", ".join(ids), True))
    added = sorted({f for lst in inputs.values() for a in lst.get("artifacts", [])
                    for f in (a.get("metadata") or {}) if f in ("display_name", "store_session_info")})
    if added:
        found.append(("KFP-added metadata keys (kept as custom properties)", ", ".join(added), True))
    undeclared = sorted(set(executor_input.get("outputs", {}).get("artifacts", {})) - set(outputs_spec.get("artifacts", {})))
    if undeclared:
        found.append(("launcher-managed outputs (executor-logs: KFP >= 2.5, PUBLISH_LOGS)", ", ".join(undeclared), True))
    out_file = executor_input.get("outputs", {}).get("outputFile", "")
    found.append(("outputFile location", out_file + (" (>= 2.15 layout)" if out_file.startswith("/gcs/")
                                                     else " (<= 2.14 layout)"), True))
    remote = sorted({u.split("://")[0] for u in uris(executor_input) if "://" in u})
    if "gs" in remote:
        found.append(("gs:// outputs: TF's directory markers break the next download (#13476)",
                      "kept: compiled with kubeflow.remove_dir_markers = false, so the backend needs the fix"
                      if keep_markers else "removed after the task", not keep_markers))
    try:
        _, notes = repair(executor_input, inputs_spec, outputs_spec, list(registered_schemes))
        if notes["values unwrapped"]:
            found.append(("metadata lists/structs wrapped by the MLMD round trip", ", ".join(notes["values unwrapped"]), True))
    except KubeflowContractError as e:
        handled = "without a type" not in str(e)
        found.append(("URIs TensorFlow cannot open" if handled else "an input the IR does not declare", str(e), False))
    return found


def check_command(args) -> int:
    import yaml

    from pipelines.kubeflow_entrypoint import INPUTS_SPEC_FLAG, KEEP_MARKERS_FLAG, OUTPUTS_SPEC_FLAG

    text = sys.stdin.read() if args.file == "-" else _read(args.file)
    try:
        executor_input = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{args.file}: not JSON ({e.msg} at line {e.lineno}); give the --executor_input value") from None
    executor_input = from_pod(executor_input)
    package = args.package or _default_package(args)
    spec = yaml.safe_load(_read(package))
    task = find_task(spec, executor_input, args.task)
    label = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]["executorLabel"]
    container_args = spec["deploymentSpec"]["executors"][label]["container"]["args"]
    specs = {flag: json.loads(container_args[container_args.index(flag) + 1]) if flag in container_args else {}
             for flag in (INPUTS_SPEC_FLAG, OUTPUTS_SPEC_FLAG)}
    if not specs[OUTPUTS_SPEC_FLAG]:
        raise UserError(f"{package} was not compiled for our entrypoint; run `transferline compile`")
    found = deviations(executor_input, specs[INPUTS_SPEC_FLAG], specs[OUTPUTS_SPEC_FLAG],
                       keep_markers=KEEP_MARKERS_FLAG in container_args)
    print(f"task {task} ({package}):")
    for what, detail, handled in found:
        print(f"  [{'handled' if handled else 'NOT HANDLED'}] {what}: {detail}")
    unhandled = [f for f in found if not f[2]]
    print("verdict: our entrypoint handles every deviation found" if not unhandled else
          f"verdict: {len(unhandled)} deviation(s) our entrypoint does not handle")
    return 0 if not unhandled else KubeflowContractError.exit_code


def from_pod(doc: dict) -> dict:
    """The executor input itself, or the `--executor_input` value in a pod's containers."""
    if "spec" not in doc:
        return doc
    for c in doc["spec"].get("containers", []) + doc["spec"].get("initContainers", []):
        argv = c.get("command", []) + c.get("args", [])
        if "--executor_input" in argv:
            return json.loads(argv[argv.index("--executor_input") + 1])
    raise UserError("the pod has no container with --executor_input: give the task's main pod "
                    "(the one running the launcher), not the driver's")


def _default_package(args) -> str:
    config = config_from(args)  # as kubeflow_runner.package_path, without importing TFX
    return os.path.abspath(config.kubeflow.package_path or config.work.compiled_pipeline)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}") from None
