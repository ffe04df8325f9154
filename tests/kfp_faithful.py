"""Runs a compiled KFP IR task by task the way the open-source KFP v2 driver and launcher really do.

Emulated from kubeflow/pipelines at 7b70c7b95f (VERSION 2.17.0; spot-checked at tags 2.4.1, 2.5.0, 2.14.3,
2.15.0), paths under backend/src/v2/ (../shared/KFP-CONTRACT.md has the full list):
- inputs come from an emulated MLMD record, not from the producer's declaration: name = the decimal id,
  type = {"instanceSchema": ""} (metadata/client.go:253-258, 1141-1145), metadata = properties and custom
  properties after KFP's value conversions (bool→0/1, list→{"list"}, struct→{"struct"}, null fails the
  *producer*), plus display_name and store_session_info (converter.go:138-221, client.go:1214-1274);
- outputs as provisioned (driver/driver.go:733-802): `<root>/<pipeline>/<run>/<task>/<uuid>/<key>`, the
  IR's type, name = key from 2.15, `executor-logs` from 2.5 (PUBLISH_LOGS default true);
- outputFile: /tmp/kfp_outputs/output_metadata.json up to 2.14, `/gcs/<bucket>/…/<uuid>/` from 2.15;
- the executor's output file parsed strictly (unknown fields fail), only uri/metadata/custom_path
  merged, executor-logs never (component/launcher_v2.go:789-806, 1188-1237);
- before the command, every input downloaded to `/gcs/<bucket>/<key>` with DownloadBlob's rule: a
  zero-byte `…/` marker becomes an empty file and a child below it fails (objectstore/object_store.go:
  146-268, kubeflow/pipelines#13476);
- parameters from the IR's constants, type-checked; the pipeline root from the run, else the
  kfp-launcher ConfigMap, else minio://mlpipeline/v2/artifacts (never the spec's defaultPipelineRoot).

A pod's filesystem is a temp dir per task (`/gcs/…`, `/tmp/…` mapped under it). The bucket is a local
directory (LocalBucket) standing in for gs://standin-bucket: artifact URIs are its local paths, so TFX
reads and writes them with its local filesystem, and the markers TF's GCS filesystem would have written
are synthesized: every directory under an artifact lists as a zero-byte `<dir>/` object until deleted.
What this cannot prove: TF's real GCS filesystem (which markers it writes, gs:// auth, consistency),
the GCS client's listing and deletes (GcsStore), the real image and Python 3.10, Argo/Kubernetes
(pod specs, retries, volumes), KFP's cache and UI. Tasks run as the IR's command and args in a process
forked from a pre-imported interpreter (tests/zygote.py), not in a fresh `python` each.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field

BUCKET = "standin-bucket"
KFP_COMMIT = "7b70c7b95f6832772efd6fd0029a4024491a0f44"
MINIO_DEFAULT_ROOT = "minio://mlpipeline/v2/artifacts"  # launcher's default without run root or ConfigMap
LAUNCHER_OUTPUTS = ("executor-logs",)


@dataclass(frozen=True)
class KfpVersion:
    name: str
    executor_logs: bool       # driver adds executor-logs (>= 2.5.0, PUBLISH_LOGS=true)
    output_names: bool        # output artifacts named by key (>= 2.15.0)
    output_file_in_root: bool  # outputFile under /gcs/<task root>/ (>= 2.15.0) vs /tmp/kfp_outputs/


VERSIONS = {v.name: v for v in (KfpVersion("<=2.4", False, False, False),
                                KfpVersion("2.5-2.14", True, False, False),
                                KfpVersion(">=2.15", True, True, True))}


class LaunchError(Exception):
    """What KFP's driver or launcher fails with, outside the task's own code."""


# ---- the bucket stand-in -------------------------------------------------------------------------------------

class LocalBucket:
    """A local directory standing in for gs://standin-bucket, with TF's GCS directory markers synthesized.

    Deleted markers are remembered in a file beside the directory, so the task's process and the
    harness see the same listing."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self._deleted = self.root + ".deleted-markers"

    def key(self, path: str) -> str:
        return os.path.relpath(path.rstrip("/"), self.root) + ("/" if path.endswith("/") else "")

    def deleted(self) -> set[str]:
        if not os.path.exists(self._deleted):
            return set()
        with open(self._deleted) as f:
            return set(f.read().split("\n")) - {""}

    def list(self, uri: str) -> list[tuple[str, int]]:
        uri = uri.rstrip("/")
        if os.path.isfile(uri):
            return [(uri, os.path.getsize(uri))]
        objects, gone = [], self.deleted()
        for d, dirs, files in os.walk(uri):
            if d + "/" not in gone:
                objects.append((d + "/", 0))
            objects += [(os.path.join(d, f), os.path.getsize(os.path.join(d, f))) for f in files]
        return sorted(objects, key=lambda o: self.key(o[0]))  # GCS lists keys in lexicographic order

    def delete(self, object_uri: str) -> None:
        if object_uri.endswith("/"):
            with open(self._deleted, "a") as f:
                f.write(object_uri + "\n")
        else:
            os.remove(object_uri)

    def markers(self, uri: str) -> list[str]:
        return [k for k, size in self.list(uri) if k.endswith("/")]


def install_standin(root: str) -> None:
    """In the task's process: the entrypoint's marker cleanup treats `root` as the bucket."""
    from pipelines import kubeflow_markers

    kubeflow_markers.STORES[os.path.abspath(root) + "/"] = lambda: LocalBucket(root)


def launcher_download(bucket: LocalBucket, name: str, uri: str, pod: str, markers_fixed: bool = False) -> str:
    """objectstore.DownloadBlob of one input: every object under `uri` to <pod>/gcs/<bucket>/<key>.

    `markers_fixed`: a backend with a fix for #13476, assumed to skip zero-byte `…/` objects."""
    local_dir = os.path.join(pod, "gcs", BUCKET, bucket.key(uri))
    for obj, size in bucket.list(uri):
        if markers_fixed and size == 0 and obj.endswith("/"):
            continue
        rel = os.path.relpath(obj.rstrip("/"), uri.rstrip("/"))  # Go's filepath.Rel: "k/model/" -> "model"
        local = os.path.normpath(os.path.join(local_dir, rel))
        where = f"failed to download input artifact {name!r} from remote storage URI gs://{BUCKET}/{bucket.key(uri)}"
        try:
            os.makedirs(os.path.dirname(local), exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise LaunchError(f"{where}: downloadFile(): failed to create local directory "
                              f"{os.path.dirname(local)!r}: mkdir: not a directory") from None
        if os.path.isdir(local):
            raise LaunchError(f"{where}: downloadFile(): unable to open local file {local!r}: is a directory")
        if size == 0 and obj.endswith("/"):
            open(local, "wb").close()  # os.Create + copying zero bytes: an empty *file*
        else:
            try:
                os.link(obj, local)
            except OSError:
                shutil.copyfile(obj, local)
    return local_dir


# ---- the emulated MLMD ----------------------------------------------------------------------------------------

def to_mlmd_value(field_name: str, v):
    """metadata/converter.go StructValueToMLMDValue: what survives the launcher's RecordArtifact."""
    if isinstance(v, bool):
        return ("int", int(v))
    if isinstance(v, str):
        return ("string", v)
    if isinstance(v, (int, float)):
        return ("double", float(v))
    if isinstance(v, list):
        return ("struct", {"list": v})
    if isinstance(v, dict):
        return ("struct", {"struct": v})
    raise LaunchError(f"RecordArtifact: metadata {field_name!r}: unknown/unsupported value type {type(v).__name__}")


@dataclass
class Mlmd:
    next_id: int = 84085  # any id; the SDK fixture's is this one
    records: dict = field(default_factory=dict)

    def record(self, key: str, artifact: dict) -> int:
        """client.go RecordArtifact: metadata to custom properties, display_name/store_session_info added."""
        custom = {k: to_mlmd_value(k, v) for k, v in (artifact.get("metadata") or {}).items()}
        custom.setdefault("display_name", ("string", key))
        custom.setdefault("store_session_info", ("string", json.dumps({"Provider": "gs", "Params": {"fromEnv": "true"}})))
        self.next_id += 1
        self.records[self.next_id] = {"uri": artifact["uri"], "custom": custom}
        return self.next_id

    def runtime_artifact(self, artifact_id: int) -> dict:
        """What the driver hands a consumer (toRuntimeArtifact + OutputArtifact.ToRuntimeArtifact)."""
        rec = self.records[artifact_id]
        metadata = {k: v for k, (kind, v) in rec["custom"].items()}  # int and double are both JSON numbers
        return {"name": str(artifact_id), "type": {"instanceSchema": ""}, "uri": rec["uri"], "metadata": metadata}


def pipeline_root(run_root: str | None, launcher_configmap_root: str | None, spec: dict) -> str:
    """The backend's rule; spec['defaultPipelineRoot'] is deliberately not consulted."""
    del spec
    return run_root or launcher_configmap_root or MINIO_DEFAULT_ROOT
