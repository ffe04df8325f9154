"""`transferline kserve`: a KServe InferenceService (serving.kserve.io/v1beta1) that serves the models the
Kubeflow pipeline pushes, with TF Serving, optionally as a canary (docs/kubeflow.md, "Serving on KServe").

Facts from kserve/kserve at tag v0.20.0 (1fb78105):
- The predictor is `model: {modelFormat: {name: tensorflow}}`: KServe's defaulting webhook rewrites the older
  `predictor.tensorflow` into exactly that and drops it
  (pkg/apis/serving/v1beta1/inference_service_defaults.go:296-303).
- The runtime is named: Triton also auto-selects `tensorflow` models
  (config/runtimes/kserve-tritonserver.yaml:16-23), and `runtimeVersion` replaces the runtime image's tag
  (pkg/controller/v1beta1/inferenceservice/utils/utils.go:339-355):
  KServe's default TF Serving image is 2.6.2 (config/runtimes/kustomization.yaml:22-24), older than our TF 2.16 graph.
- That runtime starts TF Serving with `--model_name={{.Name}} --model_base_path=/mnt/models`
  (config/runtimes/kserve-tensorflow-serving.yaml:26-32): the service's name is the model's name in
  /v1/models/<name>, and storageUri must be a base path holding <version>/ folders: the Pusher's serving_dir.
- canaryTrafficPercent gives the newest revision that share and the last rolled-out one the rest, in Serverless
  mode only (pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go:133-164).
"""
from __future__ import annotations

import os
import re

import yaml

from components.errors import ConfigError
from pipelines.config import Config

# The TF Serving release `transferline serve` answers as (docs/serving.md); its official image links TF Text's ops.
TF_SERVING_VERSION = "2.16.1"
RUNTIME = "kserve-tensorflow-serving"
# inference_service_validation.go:46 (IsvcNameFmt); the webhook refuses other names.
_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
# utils.go:48 (SupportedStorageURIPrefixList); a scheme outside it is refused (utils.go:427-441). No scheme = a
# path inside the predictor's pod, which KServe accepts as is.
_STORAGE_PREFIXES = ("gs://", "s3://", "pvc://", "file://", "https://", "http://", "hdfs://", "webhdfs://",
                     "oci://", "oci+native://", "hf://")


def manifest(config: Config, canary_percent: int | None = None) -> dict:
    """The InferenceService for config.kubeflow.serving_dir, named config.serve.model_name."""
    kf = config.kubeflow
    percent = kf.canary_traffic_percent if canary_percent is None else canary_percent
    if not 0 <= percent <= 100:
        raise ConfigError(f"kubeflow.canary_traffic_percent (--canary-percent) must be within 0..100, not {percent}")
    name = config.serve.model_name
    if not _NAME.fullmatch(name):
        raise ConfigError(f"serve.model_name {name!r} cannot name a KServe InferenceService (the model's name in "
                          "TF Serving): lower-case letters, digits and '-', from a letter, not ending in '-'")
    uri = kf.serving_dir
    if re.match(r"\w+?://", uri) and not uri.startswith(_STORAGE_PREFIXES):
        raise ConfigError(f"kubeflow.serving_dir {uri} is no storageUri KServe can download "
                          f"(one of {', '.join(_STORAGE_PREFIXES)})")
    metadata: dict = {"name": name}
    if kf.namespace:
        metadata["namespace"] = kf.namespace
    predictor: dict = {}
    if percent:  # 0 = no canary: the field left out, a new revision takes all traffic once ready
        metadata["annotations"] = {"serving.kserve.io/deploymentMode": "Serverless"}  # the split is Knative's
        predictor["canaryTrafficPercent"] = percent
    predictor["model"] = {"modelFormat": {"name": "tensorflow", "version": "2"}, "runtime": RUNTIME,
                          "runtimeVersion": TF_SERVING_VERSION, "storageUri": uri}
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": metadata,
            "spec": {"predictor": predictor}}


def manifest_path(config: Config, output: str | None = None) -> str:
    """--output, else kubeflow.kserve_path, else <work_dir>/kubeflow/inferenceservice.yaml (beside the IR)."""
    default = os.path.join(os.path.dirname(config.work.compiled_pipeline), "inferenceservice.yaml")
    return os.path.abspath(output or config.kubeflow.kserve_path or default)


def write_manifest(config: Config, output: str | None = None, canary_percent: int | None = None) -> str:
    text = ("# KServe InferenceService: `transferline kserve` writes it from the config (docs/kubeflow.md).\n"
            + yaml.safe_dump(manifest(config, canary_percent), sort_keys=False))
    path = manifest_path(config, output)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
