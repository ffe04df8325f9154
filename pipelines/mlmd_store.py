"""The local MLMD store, at its lowest: connecting, this pipeline's runs, one run's executions and outputs.

Below pipelines/runs.py (a run read back whole) and pipelines/run_history.py (rollbacks, dead runs).
"""
from __future__ import annotations

import os

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

from components import names
from components.errors import NotFound
from pipelines import relocate as relocate_

_STATE = metadata_store_pb2.Execution.State


def connect(metadata_path: str, writable: bool = False, relocate: bool = True) -> mlmd.MetadataStore:
    """The local MLMD store (SQLite), read-only unless ``writable``. When the work dir was moved since its
    runs (pipelines/relocate.py), the artifacts it returns carry their paths at the new location."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    sqlite = metadata_store_pb2.SqliteMetadataSourceConfig
    config.sqlite.connection_mode = sqlite.READWRITE_OPENCREATE if writable else sqlite.READONLY
    store = _Store(config)
    store.relocation = relocate_.find(os.path.dirname(os.path.abspath(metadata_path)), store) if relocate else None
    return store


def adopt_move(work_dir: str, metadata_path: str) -> int:
    """Under the work dir's lock: MLMD's paths follow a moved work dir, once (pipelines/relocate.py adopt)."""
    exists = os.path.exists(metadata_path)
    return relocate_.adopt(work_dir, connect(metadata_path, writable=True, relocate=False) if exists else None)


class _Store(mlmd.MetadataStore):
    """MLMD, with the artifacts' paths moved where the work dir moved (``relocation``; None: as recorded)."""
    relocation: relocate_.Relocation | None = None

    def get_artifacts_by_id(self, artifact_ids, *args, **kwargs):
        return self._moved(super().get_artifacts_by_id(artifact_ids, *args, **kwargs))

    def get_artifacts_by_uri(self, uri: str, *args, **kwargs):
        """The artifacts at ``uri``, however MLMD spelled it (the old location or the new one)."""
        if self.relocation is None:
            return super().get_artifacts_by_uri(uri, *args, **kwargs)
        by_uri = super().get_artifacts_by_uri
        found = {a.id: a for u in self.relocation.spellings(uri) for a in by_uri(u, *args, **kwargs)}
        return self._moved(list(found.values()))

    def as_recorded(self, artifact):
        """A copy of a returned artifact with the paths MLMD holds (to put it back without rewriting them)."""
        return super().get_artifacts_by_id([artifact.id])[0]

    def _moved(self, artifacts):
        return [self.relocation.artifact(a) for a in artifacts] if self.relocation else artifacts


def run_contexts(store: mlmd.MetadataStore, pipeline_name: str) -> list:
    """This pipeline's runs, oldest first."""
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return []
    runs = store.get_children_contexts_by_context(pipeline.id)
    return sorted((c for c in runs if c.type == "pipeline_run"),
                  key=lambda c: (c.create_time_since_epoch, c.id))


def pick_run(store: mlmd.MetadataStore, pipeline_name: str, run: str | int | None = None):
    """The run context RUN names: a run id, or an index among the runs, oldest first (default: the latest)."""
    runs = run_contexts(store, pipeline_name)
    if not runs:
        raise NotFound(f"no run of pipeline '{pipeline_name}' recorded yet; run `transferline run` first")
    if run is None:
        return runs[-1]
    names_ = [r.name for r in runs]
    if run in names_:
        return runs[names_.index(run)]
    try:
        return runs[int(run)]
    except (ValueError, IndexError):
        raise NotFound(f"no run '{run}' of pipeline '{pipeline_name}'; give a run id or an index "
                       f"(-1 = latest of {len(runs)}); the latest: {', '.join(names_[-5:])}") from None


def run_outputs(store: mlmd.MetadataStore, run_context) -> tuple[dict[str, str], dict[str, list]]:
    """(component id -> execution state, "Component.key" -> output artifacts) for one run."""
    node_type = store.get_context_type("node")
    states, outputs = {}, {}
    for execution in sorted(store.get_executions_by_context(run_context.id), key=lambda e: e.id):  # run order
        node = next(c for c in store.get_contexts_by_execution(execution.id) if c.type_id == node_type.id)
        component = node.name.split(".", 1)[1]
        states[component] = _STATE.Name(execution.last_known_state)
        events = [e for e in store.get_events_by_execution_ids([execution.id])
                  if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
        by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
        for e in events:
            key = names.output_key(component, e.path.steps[0].key)
            outputs.setdefault(key, []).append(by_id[e.artifact_id])
    return states, outputs


def prop(artifact, name):
    """A custom property's value (string, int or float), None if the artifact has none of that name."""
    if name not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[name]
    return value.double_value if value.WhichOneof("value") == "double_value" else value.string_value or value.int_value
