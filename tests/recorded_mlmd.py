"""A run recorded in an in-memory MLMD store, shaped as TFX's LocalDagRunner records one (contexts
pipeline > pipeline_run, one node context per component, OUTPUT events keyed by output name), for
reading tests that need no pipeline run."""
import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2 as pb

PIPELINE = "transferline"


class RecordedRuns:
    def __init__(self):
        config = pb.ConnectionConfig()
        config.fake_database.SetInParent()
        self.store = mlmd.MetadataStore(config)
        s = self.store
        self.types = {name: s.put_context_type(pb.ContextType(name=name)) for name in ("pipeline", "pipeline_run", "node")}
        self.execution_type = s.put_execution_type(pb.ExecutionType(name="tfx.Component"))
        examples = pb.ArtifactType(name="Examples")
        examples.properties["split_names"] = pb.STRING
        self.artifact_types = {"Examples": s.put_artifact_type(examples)}
        [self.pipeline] = s.put_contexts([pb.Context(type_id=self.types["pipeline"], name=PIPELINE)])
        self.nodes = {}

    def _node(self, component):
        if component not in self.nodes:
            [self.nodes[component]] = self.store.put_contexts(
                [pb.Context(type_id=self.types["node"], name=f"{PIPELINE}.{component}")])
        return self.nodes[component]

    def run(self, run_id, components, execution_properties=None):
        """components: {component: (state name, {output key: (type name, uri, {custom property: value})})};
        execution_properties: {component: {custom property: string}} (e.g. the ``interrupted`` mark)."""
        s = self.store
        [run] = s.put_contexts([pb.Context(type_id=self.types["pipeline_run"], name=run_id)])
        s.put_parent_contexts([pb.ParentContext(child_id=run, parent_id=self.pipeline)])
        for component, (state, outputs) in components.items():
            execution = pb.Execution(type_id=self.execution_type,
                                     last_known_state=pb.Execution.State.Value(state))
            for name, value in (execution_properties or {}).get(component, {}).items():
                execution.custom_properties[name].string_value = value
            artifacts_and_events = []
            for key, (type_name, uri, props) in outputs.items():
                if type_name not in self.artifact_types:
                    self.artifact_types[type_name] = s.put_artifact_type(pb.ArtifactType(name=type_name))
                artifact = pb.Artifact(type_id=self.artifact_types[type_name], uri=uri)
                for name, value in props.items():
                    if name == "split_names":
                        artifact.properties[name].string_value = value
                    elif isinstance(value, int):
                        artifact.custom_properties[name].int_value = value
                    elif isinstance(value, float):
                        artifact.custom_properties[name].double_value = value
                    else:
                        artifact.custom_properties[name].string_value = value
                event = pb.Event(type=pb.Event.OUTPUT)
                event.path.steps.add().key = key
                event.path.steps.add().index = 0
                artifacts_and_events.append((artifact, event))
            execution_id, artifact_ids, _ = s.put_execution(execution, artifacts_and_events, [])
            contexts = (run, self._node(component))
            s.put_attributions_and_associations(
                [pb.Attribution(artifact_id=a, context_id=c) for a in artifact_ids for c in contexts],
                [pb.Association(execution_id=execution_id, context_id=c) for c in contexts])
        return run

    def rollback(self, **properties):
        """A `transferline rollback` as ops/pipeline/rollback.py records it (from_version, to_version, moved
        "v1,v2", user, host, time, reason): an execution in the pipeline's context."""
        from pipelines.run_history import ROLLBACK_EXECUTION_TYPE, record_event

        return record_event(self.store, PIPELINE, ROLLBACK_EXECUTION_TYPE, properties)
