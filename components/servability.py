"""ServabilityCheck: TFX's InfraValidator, locally (no Docker, no TF Serving binary here).

The candidate is copied into the InfraBlessing artifact with its warmup file (components/warmup.py), then
loaded in a clean process the way TF Serving loads it: the SavedModel with the serve tag, every signature it
declares present, each warmup record replayed, the first failing one failing the load. Same contract as
InfraValidator with `RequestSpec(make_warmup=True)` (tfx/components/infra_validator/executor.py:290-307):
`blessed` 1/0, the files INFRA_BLESSED / INFRA_NOT_BLESSED, and, when blessed, the model under
`<uri>/stamped_model` with `has_model` = 1, which TFX's Pusher pushes (pusher/executor.py:126-136). When
refused, `reason` says why in words (the run summary and the report quote it).

On Kubeflow too: TFX 1.16's KubeflowV2DagRunner refuses to compile InfraValidator
(orchestration/kubeflow/v2/step_builder.py:446-448), and its KubernetesRunner needs the KFP v1 pod
environment (KFP_POD_NAME, KFP_NAMESPACE: utils/kube_utils.py:236-242, kubernetes_runner.py:131-134).
The task's image holds TF and TF Text, which is all this check loads.

`python -m components.warmup <model dir>` is the clean process: it prints one JSON line.
"""

import json
import os
import subprocess
import sys

from tfx import v1 as tfx
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import io_utils, path_utils

from components import warmup
from components.names import BLESSED, REASON, WARMUP_RECORDS, WARMUP_SIGNATURES

HAS_MODEL = "has_model"  # TFX's name (pusher/executor.py:42, infra_validator/executor.py:59)
BLESSED_FILE, NOT_BLESSED_FILE = "INFRA_BLESSED", "INFRA_NOT_BLESSED"  # TFX's (infra_validator/executor.py:61-63)
CHECK_TIMEOUT_S = 600  # a load that takes longer counts as failed (InfraValidator's max_loading_time_seconds)


def check_in_subprocess(model_dir: str) -> dict:
    """warmup.check in a clean interpreter (TF and TF Text only): nothing this process loaded (the Trainer's graph, Keras) helps it."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    try:
        done = subprocess.run([sys.executable, "-m", warmup.__name__, model_dir], capture_output=True, text=True,
                              timeout=CHECK_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "reason": f"the model did not load within {CHECK_TIMEOUT_S} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"ok": False, "reason": f"the loading process died (exit {done.returncode}): {tail[:300]}"}


@component
def ServabilityCheck(
        model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
        blessing: tfx.dsl.components.OutputArtifact[standard_artifacts.InfraBlessing],
        model_name: tfx.dsl.components.Parameter[str]):
    """Blesses the candidate when it loads and serves its warmup records; the blessing carries it to the Pusher."""
    stamped = path_utils.stamped_model_path(blessing.uri)
    io_utils.copy_dir(path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)), stamped)
    logs = warmup.prediction_logs(model, examples, model_name)
    warmup.write(stamped, logs)
    verdict = check_in_subprocess(stamped)
    blessing.set_int_custom_property(BLESSED, int(verdict["ok"]))
    blessing.set_int_custom_property(WARMUP_RECORDS, len(logs))
    blessing.set_string_custom_property(WARMUP_SIGNATURES, ",".join(warmup.SIGNATURES))
    if verdict["ok"]:
        blessing.set_int_custom_property(HAS_MODEL, 1)
        io_utils.write_string_file(os.path.join(blessing.uri, BLESSED_FILE), "")
    else:
        blessing.set_int_custom_property(HAS_MODEL, 0)
        blessing.set_string_custom_property(REASON, verdict["reason"])
        io_utils.delete_dir(stamped)  # nothing may push it
        io_utils.write_string_file(os.path.join(blessing.uri, NOT_BLESSED_FILE), verdict["reason"])
