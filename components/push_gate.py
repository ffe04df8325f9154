"""PushGate: lets the Pusher push only a model the Evaluator blessed against what is served *now*."""
import os

from tfx import v1 as tfx
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.gate_rules import decide, training_fingerprint
from components.names import (BASELINE_VERSION, BLESSED, DATA_FINGERPRINT, REASON, SERVED_VERSION, SPANS,
                              TRAINING_FINGERPRINT, GateReason)
from components.serving_dir import model_fingerprint, provenance, rolled_back_provenance, served_versions


@component
def PushGate(
        model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing],
        baseline: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
        gate: tfx.dsl.components.OutputArtifact[standard_artifacts.ModelBlessing],
        serving_dir: tfx.dsl.components.Parameter[str],
        config_fingerprint: tfx.dsl.components.Parameter[str]):
    """Passes the Evaluator's blessing on to the Pusher only when `decide` says OK (see there)."""
    versions = served_versions(serving_dir)
    served_now = versions[-1] if versions else 0
    served_dir = os.path.join(serving_dir, str(served_now))
    compared_with = baseline.get_int_custom_property(BASELINE_VERSION)
    training = training_fingerprint(examples.get_string_custom_property(DATA_FINGERPRINT), config_fingerprint)
    reason = decide(
        blessed=bool(blessing.get_int_custom_property(BLESSED)), served_now=served_now,
        compared_with=compared_with, candidate=model_fingerprint(path_utils.serving_model_path(model.uri)),
        served=model_fingerprint(served_dir) if served_now else b"",
        served_training=provenance(served_dir).get(TRAINING_FINGERPRINT) if served_now else None,
        training=training,
        rolled_back_trainings={p.get(TRAINING_FINGERPRINT) for p in rolled_back_provenance(serving_dir)} - {None})
    gate.set_int_custom_property(BLESSED, int(reason == GateReason.OK))
    gate.set_string_custom_property(REASON, reason)
    gate.set_int_custom_property(SERVED_VERSION, served_now)
    gate.set_int_custom_property(BASELINE_VERSION, compared_with)
    gate.set_string_custom_property(TRAINING_FINGERPRINT, training)
    gate.set_string_custom_property(SPANS, examples.get_string_custom_property(SPANS))
