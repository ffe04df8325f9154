"""The task entrypoint the compiled pipeline runs on open-source KFP v2, around TFX 1.16's own executor run.

`python -m pipelines.kubeflow_entrypoint` takes TFX's `kubeflow_v2_run_executor` arguments (the compiled
IR's, unchanged) plus two that `kubeflow_runner.for_open_source_kfp` adds, and runs TFX's
`_run_executor` on an executor input repaired for what the open-source backend really sends
(../shared/KFP-CONTRACT.md; KFP paths are kubeflow/pipelines `backend/src/v2/` at 7b70c7b95f = 2.17.0,
spot-checked at 2.0.5, 2.4.1, 2.5.0, 2.14.3, 2.15.0). Each repair below names the behaviour it answers.
Everything it changes is logged on one line per task, so a pod log says what was repaired.
"""
from __future__ import annotations

import copy
import json
import os
import sys

from components.errors import KubeflowContractError

TFX_ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
ENTRYPOINT = "pipelines.kubeflow_entrypoint"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
OUTPUTS_SPEC_FLAG = "--json_serialized_outputs_spec_args"  # ours: the component's outputDefinitions
KEEP_MARKERS_FLAG = "--keep_dir_markers"  # ours: kubeflow.remove_dir_markers = false
# Keys KFP's RecordArtifact adds to every artifact's custom properties (metadata/client.go:1214-1231).
KFP_ADDED_KEYS = ("display_name", "store_session_info")
# Schemes KFP may use for a pipeline root (its default is minio://mlpipeline/v2/artifacts) that TF's file
# layer opens only with a plugin this image does not have.
PLUGIN_SCHEMES = ("minio", "s3")


def restore_input_types(executor_input: dict, inputs_spec: dict) -> list[str]:
    """Gives each input artifact its declared type when the driver sent none or an empty one.

    KFP 2.0–2.17 (all 2.x): the driver rebuilds input artifacts from MLMD with
    `type: {"instanceSchema": ""}` (metadata/client.go:1141-1145 "TODO: figure out how to get schema",
    client.go:253-258); TFX's parser then fails with `'NoneType' object has no attribute 'get'`
    (kubeflow_v2_entrypoint_utils.py:259). `--json_serialized_inputs_spec_args` (compiled with
    use_pipeline_spec_2_1) holds each input's artifactType. Returns the keys restored.
    """
    declared = inputs_spec.get("artifacts", {})
    restored = []
    for key, artifact_list in executor_input.get("inputs", {}).get("artifacts", {}).items():
        for artifact in artifact_list.get("artifacts", []):
            kind = artifact.get("type") or {}
            if kind.get("schemaTitle") or kind.get("instanceSchema"):
                continue
            if key not in declared:
                raise KubeflowContractError(
                    f"input artifact '{key}' came without a type and the compiled inputs spec does not "
                    f"declare it (declared: {', '.join(sorted(declared)) or 'none'}): recompile and resubmit")
            artifact["type"] = copy.deepcopy(declared[key]["artifactType"])
            restored.append(key)
    return sorted(set(restored))


def unwrap_kfp_values(executor_input: dict) -> list[str]:
    """Undoes KFP's MLMD round trip of list and struct metadata: `{"list": [...]}` → `[...]`.

    KFP 2.x: the launcher stores a list value as a struct `{"list": …}` and a struct as `{"struct": …}`
    (metadata/converter.go:138-221, StructValueToMLMDValue) and gives it back wrapped. Bools come back
    as 0/1 numbers, which TFX reads as ints anyway. Returns `key.field` of each value unwrapped.
    """
    fixed = []
    for key, artifact_list in executor_input.get("inputs", {}).get("artifacts", {}).items():
        for artifact in artifact_list.get("artifacts", []):
            metadata = artifact.get("metadata") or {}
            for field, value in metadata.items():
                if isinstance(value, dict) and len(value) == 1 and (
                        isinstance(value.get("list"), list) or isinstance(value.get("struct"), dict)):
                    metadata[field] = next(iter(value.values()))
                    fixed.append(f"{key}.{field}")
    return fixed


def drop_launcher_outputs(executor_input: dict, outputs_spec: dict) -> list[str]:
    """Removes the outputs the component does not declare, such as `executor-logs`, before TFX sees them.

    KFP >= 2.5.0 with PUBLISH_LOGS=true (the default): the driver adds an output `executor-logs` of type
    `system.Artifact` (driver/driver.go:747-760, cmd/driver/main.go:101); the launcher writes it itself
    and never merges what the executor reports for it (component/launcher_v2.go:789-806). TFX imports a
    class for every output: `ImportError: Could not import system.Artifact`. Returns the keys dropped.
    """
    declared = outputs_spec.get("artifacts", {})
    outputs = executor_input.get("outputs", {}).get("artifacts", {})
    dropped = sorted(k for k in outputs if k not in declared)
    for key in dropped:
        del outputs[key]
    return dropped


def uris(executor_input: dict) -> list[str]:
    return [a.get("uri", "") for side in ("inputs", "outputs")
            for artifact_list in executor_input.get(side, {}).get("artifacts", {}).values()
            for a in artifact_list.get("artifacts", [])]


def refuse_unopenable_uris(executor_input: dict, registered_schemes: list[str]) -> None:
    """Stops with one line when an artifact lives where TF's file layer cannot open it.

    KFP 2.x: with no pipeline root on the run and none in the `kfp-launcher` ConfigMap, artifacts go to
    `minio://mlpipeline/v2/artifacts` (the backend never reads the spec's defaultPipelineRoot;
    KFP-CONTRACT.md, "Pipeline root"). TF has no minio filesystem, and s3 only with tensorflow-io.
    """
    for uri in uris(executor_input):
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        if scheme in PLUGIN_SCHEMES and scheme not in registered_schemes:
            raise KubeflowContractError(
                f"artifact URI {uri}: TensorFlow cannot open {scheme}:// here, so no TFX task can read or "
                f"write it. Run with a gs:// pipeline root (transferline submit/schedule pass "
                f"kubeflow.pipeline_root) or set one in the kfp-launcher ConfigMap")


def repair(executor_input: dict, inputs_spec: dict, outputs_spec: dict,
           registered_schemes: list[str]) -> tuple[dict, dict]:
    """The executor input TFX can run, and what was changed ({repair: [keys]})."""
    fixed = copy.deepcopy(executor_input)
    refuse_unopenable_uris(fixed, registered_schemes)
    notes = {"types restored": restore_input_types(fixed, inputs_spec),
             "values unwrapped": unwrap_kfp_values(fixed),
             "launcher outputs dropped": drop_launcher_outputs(fixed, outputs_spec)}
    return fixed, notes


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None


def run(argv: list[str]) -> list[str]:
    """Repairs the executor input, runs TFX's executor run, removes markers; returns the markers removed."""
    import tensorflow as tf
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_entry

    from pipelines.kubeflow_markers import remove_directory_markers, store_for

    keep_markers = KEEP_MARKERS_FLAG in argv
    outputs_spec = json.loads(_flag(argv, OUTPUTS_SPEC_FLAG) or "{}")
    argv = _without(argv, OUTPUTS_SPEC_FLAG, KEEP_MARKERS_FLAG)
    # As absl's app.run hands it over: the program name first (TFX passes it on among the beam args).
    args, beam_args = tfx_entry._parse_flags([TFX_ENTRYPOINT, *argv])  # pylint: disable=protected-access
    executor_input, notes = repair(json.loads(args.json_serialized_invocation_args),
                                   json.loads(args.json_serialized_inputs_spec_args or "{}"),
                                   outputs_spec, tf.io.gfile.get_registered_schemes())
    print(f"[transferline] executor input repaired for open-source KFP: {json.dumps(notes)}", file=sys.stderr)
    args.json_serialized_invocation_args = json.dumps(executor_input)
    tfx_entry._run_executor(args, beam_args)  # pylint: disable=protected-access
    removed = []
    if not keep_markers:
        for uri in uris({"outputs": executor_input["outputs"]}):
            store = store_for(uri)
            if store is not None:
                removed += remove_directory_markers(uri, store)
    print(f"[transferline] directory markers removed under the outputs: {len(removed)}", file=sys.stderr)
    return removed


def _without(argv: list[str], value_flag: str, bare_flag: str) -> list[str]:
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
        elif a == value_flag:
            skip = True
        elif a != bare_flag:
            out.append(a)
    return out


def progress_to_stdout(stream=None) -> None:
    """The components' progress lines (the Trainer's epochs, `names.PROGRESS_LOGGER`) on the task's stdout, as
    a local run prints them on the terminal: the pod log shows them (unconfigured, the logger drops them)."""
    import logging

    from components.names import PROGRESS_LOGGER
    from pipelines.run_log import StepProgress

    logger = logging.getLogger(PROGRESS_LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(StepProgress(stream or sys.stdout))


def main(argv: list[str] | None = None) -> None:
    """Exits the process explicitly once the output file is written and markers are removed.

    An explicit `os._exit` after flushing: TFX images on KFP v2 are reported to abort at interpreter exit
    with `pure virtual method called` (TF/Beam threads torn down during finalization; sky-uk/kfp-operator
    PR #1286), turning a finished task into a failed pod. The status is the task's: 0 done, a
    UserError's exit code with its one-line message, 1 with the traceback for anything else.
    """
    import traceback

    from components.errors import UserError

    code = 0
    try:
        progress_to_stdout()
        run(list(sys.argv[1:] if argv is None else argv))
    except UserError as e:
        print(f"transferline: error: {e}", file=sys.stderr)
        code = e.exit_code
    except BaseException:  # pylint: disable=broad-except
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # pylint: disable=protected-access


if __name__ == "__main__":
    main()
