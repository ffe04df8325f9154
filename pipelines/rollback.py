"""`transferline rollback`: make an earlier pushed version the served one, and record who, when and why.

TF Serving serves the highest version number under its base path. Rolling back therefore moves the
newer versions out of the way, into ``<serving_dir>/.rolled-back/<version>/`` (a rename: atomic on a
local or mounted filesystem, and TF Serving ignores folders whose name is not a number), and TF Serving
unloads them and serves the target within its polling interval. Nothing is deleted: a version can be
moved back by hand. Each rollback is an MLMD execution (type ``transferline.Rollback``) in the pipeline's
context, and a line in ``<work_dir>/reports/rollbacks.jsonl``.
"""
from __future__ import annotations

import getpass
import json
import os
import socket
import time
from dataclasses import asdict, dataclass

from ml_metadata.proto import metadata_store_pb2

from pipelines.config import Config, ConfigError

ROLLED_BACK = ".rolled-back"
EXECUTION_TYPE = "transferline.Rollback"


@dataclass
class Rollback:
    from_version: int
    to_version: int
    moved: list[int]
    user: str
    host: str
    time: str
    reason: str
    mlmd_execution_id: int = 0


def rollback(config: Config, reason: str, to_version: int | None = None) -> Rollback:
    """Moves every version newer than the target aside; the target defaults to the previous version."""
    from tfx.dsl.io import fileio

    from components.serving_dir import served_versions

    if not reason.strip():
        raise ConfigError("say why: --reason \"...\" is recorded with the rollback")
    serving_dir = config.serving_dir
    versions = served_versions(serving_dir)
    if len(versions) < 2 and to_version is None:
        raise ConfigError(f"nothing to roll back to: {serving_dir} holds {len(versions)} version(s) "
                          f"({', '.join(map(str, versions)) or 'none'})")
    target = versions[-2] if to_version is None else to_version
    if target not in versions[:-1]:
        raise ConfigError(f"version {target} is not an earlier version under {serving_dir}; "
                          f"the versions are {', '.join(map(str, versions))} (served: {versions[-1]})")
    moved = [v for v in versions if v > target]
    aside = os.path.join(serving_dir, ROLLED_BACK)
    fileio.makedirs(aside)
    for v in reversed(moved):  # newest first: the served version only ever steps down
        fileio.rename(os.path.join(serving_dir, str(v)), os.path.join(aside, f"{v}-{int(time.time())}"))
    record = Rollback(from_version=versions[-1], to_version=target, moved=moved, user=getpass.getuser(),
                      host=socket.gethostname(), time=time.strftime("%Y-%m-%dT%H:%M:%S%z"), reason=reason)
    record.mlmd_execution_id = _record_in_mlmd(config, record)
    log = os.path.join(config.paths.work_dir, "reports", "rollbacks.jsonl")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a") as f:
        f.write(json.dumps(asdict(record)) + "\n")
    return record


def _record_in_mlmd(config: Config, record: Rollback) -> int:
    import ml_metadata as mlmd

    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = config.metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = mlmd.MetadataStore(connection)
    execution_type = metadata_store_pb2.ExecutionType(name=EXECUTION_TYPE)
    type_id = store.put_execution_type(execution_type)
    execution = metadata_store_pb2.Execution(type_id=type_id,
                                             last_known_state=metadata_store_pb2.Execution.COMPLETE)
    for key, value in asdict(record).items():
        if key == "mlmd_execution_id":
            continue
        if isinstance(value, int):
            execution.custom_properties[key].int_value = value
        else:
            execution.custom_properties[key].string_value = ",".join(map(str, value)) if isinstance(
                value, list) else value
    [execution_id] = store.put_executions([execution])
    pipeline = store.get_context_by_type_and_name("pipeline", config.pipeline_name)
    if pipeline is not None:  # attach it to the pipeline, beside its runs
        store.put_attributions_and_associations(
            [], [metadata_store_pb2.Association(execution_id=execution_id, context_id=pipeline.id)])
    return execution_id


def rollbacks(metadata_path: str) -> list[dict]:
    """Every recorded rollback, oldest first, from MLMD."""
    import ml_metadata as mlmd

    if not os.path.exists(metadata_path):
        return []
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    store = mlmd.MetadataStore(connection)
    try:
        executions = store.get_executions_by_type(EXECUTION_TYPE)
    except Exception:  # the type was never registered: no rollback yet
        return []
    return [{k: (v.int_value if v.HasField("int_value") else v.string_value)
             for k, v in e.custom_properties.items()} for e in sorted(executions, key=lambda e: e.id)]
