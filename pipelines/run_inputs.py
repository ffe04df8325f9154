"""Has anything a run depends on changed since the last one? Answered before TF, TFX and Beam are imported.

A run is decided by the span files' contents, the held-out test set, the schema, the config, the code and what
is served (a rollback changes what a candidate is compared with). Their fingerprint, with paths taken relative
to the project (the work dir's parent), is recorded in MLMD after each run that finished; when the next `run`
or `retrain` finds the same fingerprint on the latest run, TFX would only find everything cached (a moved
project's TFX cache would even miss: ExampleGen's input_base is an absolute path in its cache key), so the
command says so and exits without importing TF. ml-metadata alone; hashing the data is the cost (~50 ms for
TREC's 5,500 rows).
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os

from components.names import ROLLED_BACK_DIR
from pipelines.config import Config

RUN_INPUTS_EXECUTION_TYPE = "transferline.RunInputs"  # MLMD: a finished run's input fingerprint
# Config sections no run reads (the commands around it have their own): changing them retrains nothing.
_NOT_RUN = ("serve", "request_log", "monitor", "active", "study", "kubeflow", "predict")
_CODE = ("components", "pipelines")  # the packages a run executes
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fingerprint(config: Config, inputs: str | None = None) -> str:
    """``inputs(config)`` (or the one given: taken before the run, which may push) + what is served now."""
    served = hashlib.sha256(json.dumps([sorted(os.listdir(folder)) if os.path.isdir(folder) else []
                                        for folder in (config.serving_dir, os.path.join(
                                            config.serving_dir, ROLLED_BACK_DIR))]).encode())
    return f"{inputs or input_digest(config)}-{served.hexdigest()[:16]}"


def input_digest(config: Config) -> str:
    """The data, test set, schema, config (run sections) and code."""
    digest = hashlib.sha256()
    project = os.path.dirname(os.path.abspath(config.paths.work_dir))

    def add(*parts) -> None:
        digest.update(json.dumps(parts, default=str).encode() + b"\n")

    def where(path: str) -> str:  # relative inside the project, so a moved project keeps its fingerprint
        path = os.path.abspath(path)
        return os.path.relpath(path, project) if path.startswith(project + os.sep) else path

    def files(root: str, pattern: str) -> None:
        for path in sorted(glob.glob(os.path.join(root, pattern))) if root else []:
            with open(path, "rb") as f:
                add("file", os.path.relpath(path, root), hashlib.sha256(f.read()).hexdigest())

    files(config.paths.data_dir, config.data.file_pattern)
    files(config.paths.test_data_dir, "*.csv")
    files(os.path.dirname(config.paths.schema_file), os.path.basename(config.paths.schema_file))
    add("config", _relative(config, where))
    for package in _CODE:
        files(_REPO, os.path.join(package, "*.py"))
    return digest.hexdigest()[:32]


def _relative(config: Config, where) -> dict:
    """The config as a dict, without the sections no run reads, path knobs relative to the project."""
    out = {}
    for section in dataclasses.fields(config):
        if section.name in _NOT_RUN:
            continue
        value = getattr(config, section.name)
        if dataclasses.is_dataclass(value):
            value = {f.name: where(getattr(value, f.name)) if f.metadata.get("path") and getattr(value, f.name)
                     else getattr(value, f.name) for f in dataclasses.fields(value)}
        out[section.name] = value
    return out


def unchanged_since(config: Config, digest: str) -> dict | None:
    """The latest run's recorded inputs when they match ``digest`` (nothing changed since); else None."""
    from pipelines.mlmd_store import connect, run_contexts
    from pipelines.run_history import events

    if not os.path.exists(config.metadata_path):
        return None
    store = connect(config.metadata_path)
    runs = run_contexts(store, config.pipeline_name)
    recorded = [e for e in events(store, RUN_INPUTS_EXECUTION_TYPE) if e.get("pipeline") == config.pipeline_name]
    if not runs or not recorded or recorded[-1].get("run_id") != runs[-1].name:  # a later run failed or died
        return None
    return recorded[-1] if recorded[-1].get("fingerprint") == digest else None


def record(config: Config, digest: str, summary) -> None:
    """After a run that finished (pushed or refused alike): its inputs, and what it decided, for the next."""
    from pipelines.mlmd_store import connect
    from pipelines.run_history import record_event

    record_event(connect(config.metadata_path, writable=True), config.pipeline_name, RUN_INPUTS_EXECUTION_TYPE,
                 {"fingerprint": digest, "run_id": summary.run_id, "pipeline": config.pipeline_name,
                  "gate_reason": summary.gate_reason or "", "pushed": summary.pushed_path or ""})
