"""PushGate: lets the Pusher push only a model the Evaluator blessed against what is served *now*."""
import hashlib
import os

from tfx import v1 as tfx
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.names import (BASELINE_VERSION, BLESSED, DATA_FINGERPRINT, REASON, SERVED_VERSION, SPANS,
                              TRAINING_FINGERPRINT, GateReason)
from components.serving_dir import model_fingerprint, provenance, rolled_back_provenance, served_versions


def decide(*, blessed: bool, served_now: int, compared_with: int, candidate: bytes, served: bytes,
           served_training: str | None, training: str, rolled_back_trainings: set) -> str:
    """The gate's decision table, first match wins; returns a GateReason.

    A compare-and-swap at the push boundary: if the version served now is not the one the candidate was
    compared with (a cached comparison, another pipeline pushed, a rollback), the model is held back
    (STALE). Also held back: a model that is already the served one (ALREADY_SERVED); one trained on the
    very data and config of the served model (SAME_TRAINING: a scheduled run that found no new data, on
    Kubeflow where nothing is cached); one trained like a version that was rolled back (ROLLED_BACK: a
    rollback sticks until the data or the config change).
    """
    if not blessed:
        return GateReason.NOT_BLESSED
    if served_now != compared_with:
        return GateReason.STALE
    if candidate and candidate == served:
        return GateReason.ALREADY_SERVED
    if served_now and served_training == training:
        return GateReason.SAME_TRAINING
    if training in rolled_back_trainings:
        return GateReason.ROLLED_BACK
    return GateReason.OK


def training_fingerprint(data_fingerprint: str, config_fingerprint: str) -> str:
    """What decided the model besides the code: the data read and the training config."""
    return hashlib.sha256(f"{data_fingerprint}/{config_fingerprint}".encode()).hexdigest()[:16]


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
