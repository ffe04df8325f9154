"""What happened around the runs, from MLMD: the operators' events (rollbacks, spans accepted or removed;
ops/ records them with record_event) and runs whose process died (a killed run stays RUNNING in MLMD until a
later run marks it)."""
from __future__ import annotations

import os

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from components.names import INTERRUPTED
from pipelines.mlmd_store import connect, run_contexts

# MLMD execution types of the operators' events, each attached to the pipeline's context beside its runs.
ROLLBACK_EXECUTION_TYPE = "transferline.Rollback"        # `transferline rollback` (also: a canary dropped)
PROMOTE_EXECUTION_TYPE = "transferline.Promote"          # `transferline promote`: stable moved to the canary
SPAN_ACCEPTED_EXECUTION_TYPE = "transferline.SpanAccepted"  # `accept-span`, `add-span --accept`
SPAN_REMOVED_EXECUTION_TYPE = "transferline.SpanRemoved"    # `remove-span`
_STATE = metadata_store_pb2.Execution.State


def events(store: mlmd.MetadataStore, execution_type: str) -> list[dict]:
    """Every recorded event of one type, oldest first, as its properties (plus its MLMD execution id)."""
    try:
        executions = store.get_executions_by_type(execution_type)
    except Exception:  # noqa: BLE001  (the type was never registered: no such event yet)
        return []
    return [{**{k: (v.int_value if v.HasField("int_value") else v.string_value)
                for k, v in e.custom_properties.items()}, "mlmd_execution_id": e.id}
            for e in sorted(executions, key=lambda e: e.id)]


def rollbacks(store: mlmd.MetadataStore) -> list[dict]:
    """Every recorded `transferline rollback` (ops/pipeline/rollback.py), oldest first."""
    return [{k: v for k, v in e.items() if k != "mlmd_execution_id"} for e in events(store, ROLLBACK_EXECUTION_TYPE)]


def promotions(store: mlmd.MetadataStore) -> list[dict]:
    """Every recorded `transferline promote` (ops/pipeline/promote.py), oldest first."""
    return [{k: v for k, v in e.items() if k != "mlmd_execution_id"} for e in events(store, PROMOTE_EXECUTION_TYPE)]


def record_event(store: mlmd.MetadataStore, pipeline_name: str, execution_type: str, properties: dict) -> int:
    """Records an operator's event as a COMPLETE MLMD execution with ``properties`` (int, or str; lists
    comma-joined), attached to the pipeline's context where it exists; returns the execution id.
    ``store``: ``connect(metadata_path, writable=True)``."""
    type_id = store.put_execution_type(metadata_store_pb2.ExecutionType(name=execution_type))
    execution = metadata_store_pb2.Execution(type_id=type_id, last_known_state=metadata_store_pb2.Execution.COMPLETE)
    for key, value in properties.items():
        if isinstance(value, int):
            execution.custom_properties[key].int_value = value
        else:
            execution.custom_properties[key].string_value = ",".join(map(str, value)) if isinstance(
                value, list) else str(value)
    [execution_id] = store.put_executions([execution])
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is not None:
        store.put_attributions_and_associations(
            [], [metadata_store_pb2.Association(execution_id=execution_id, context_id=pipeline.id)])
    return execution_id


_UNFINISHED = ("NEW", "RUNNING")


def dead_component(states: dict[str, str], marked: str, lock_held: bool) -> str:
    """The component a run was in when its process died: one marked so by a later run (``marked``), or,
    while no process holds the work dir's lock, one still NEW/RUNNING (a live run holds the lock)."""
    if marked:
        return marked
    if lock_held:
        return ""
    return next((c for c, s in states.items() if s in _UNFINISHED), "")


def interrupted_component(store: mlmd.MetadataStore, run_context, lock_held: bool) -> str:
    node_type = store.get_context_type("node")
    states, marked = {}, ""
    for execution in store.get_executions_by_context(run_context.id):
        node = next(c for c in store.get_contexts_by_execution(execution.id) if c.type_id == node_type.id)
        states[node.name.split(".", 1)[1]] = _STATE.Name(execution.last_known_state)
        if INTERRUPTED in execution.custom_properties:
            marked = node.name.split(".", 1)[1]
    return dead_component(states, marked, lock_held)


def mark_interrupted(metadata_path: str, pipeline_name: str) -> list[tuple[str, str]]:
    """Under the work dir's lock (so no run is alive): every execution an earlier run left NEW or RUNNING
    ended with its process. Marks it CANCELED with an ``interrupted`` property; returns [(run id, component)]."""
    if not os.path.exists(metadata_path):
        return []
    store = connect(metadata_path, writable=True)
    marked = []
    for run in run_contexts(store, pipeline_name):
        node_type = store.get_context_type("node")
        for execution in store.get_executions_by_context(run.id):
            if _STATE.Name(execution.last_known_state) not in _UNFINISHED:
                continue
            node = next(c for c in store.get_contexts_by_execution(execution.id) if c.type_id == node_type.id)
            execution.last_known_state = _STATE.CANCELED
            execution.custom_properties[INTERRUPTED].string_value = (
                "its process ended before it finished (killed?); marked by a later run")
            store.put_executions([execution])
            marked.append((run.name, node.name.split(".", 1)[1]))
    return marked
