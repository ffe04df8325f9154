"""PushGate: lets the Pusher push only a model the Evaluator blessed against what is served *now* (the stable
version: components/rollout.py; a canary on trial is never the baseline)."""
import os

from tfx import v1 as tfx
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components.gate_rules import decide, training_fingerprint
from components.names import (ACCURACY_METRIC, BASELINE_SOURCE, BASELINE_VERSION, BLESSED, CLASS_CHANGE, CANDIDATE_ACCURACY, DATA_FINGERPRINT,
                              EVALUATION_URI, MAJORITY_ACCURACY, REASON, REFERENCE_EXAMPLES, REFERENCE_MARGIN,
                              SERVED_VERSION, SPANS, TFIDF_ACCURACY, TRAINING_FINGERPRINT, GateReason)
from components.rollout import read as rollout_state
from components.serving_dir import model_fingerprint, provenance, rolled_back_provenance


def evaluated_accuracy(evaluation_uri: str) -> float:
    """The candidate's accuracy on the whole gate data, as the Evaluator (TFMA) measured it."""
    import tensorflow_model_analysis as tfma

    for metrics in tfma.load_metrics(evaluation_uri):
        if not metrics.slice_key.single_slice_keys:  # the overall slice
            for kv in metrics.metric_keys_and_values:
                if kv.key.name == ACCURACY_METRIC and not kv.key.model_name == "baseline" and not kv.key.is_diff:
                    return kv.value.double_value.value
    raise ValueError(f"no {ACCURACY_METRIC} for the candidate in {evaluation_uri}")


@component
def PushGate(
        model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing],
        baseline: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
        evaluation: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation],
        references: tfx.dsl.components.InputArtifact[standard_artifacts.ModelEvaluation],
        gate: tfx.dsl.components.OutputArtifact[standard_artifacts.ModelBlessing],
        serving_dir: tfx.dsl.components.Parameter[str],
        config_fingerprint: tfx.dsl.components.Parameter[str],
        beat_references: tfx.dsl.components.Parameter[bool],
        reference_margin: tfx.dsl.components.Parameter[float]):
    """Passes the Evaluator's blessing on to the Pusher only when `decide` says OK (see there)."""
    blessed = bool(blessing.get_int_custom_property(BLESSED))
    accuracy = evaluated_accuracy(evaluation.uri) if blessed else 0.0
    measured = {name: references.get_float_custom_property(name) for name in (MAJORITY_ACCURACY, TFIDF_ACCURACY)}
    served_now = rollout_state(serving_dir).stable or 0  # stable: a canary on trial is not "the served model"
    served_dir = os.path.join(serving_dir, str(served_now))
    compared_with = baseline.get_int_custom_property(BASELINE_VERSION)
    training = training_fingerprint(examples.get_string_custom_property(DATA_FINGERPRINT), config_fingerprint)
    reason = decide(
        blessed=blessed, served_now=served_now,
        compared_with=compared_with, candidate=model_fingerprint(path_utils.serving_model_path(model.uri)),
        served=model_fingerprint(served_dir) if served_now else b"",
        served_training=provenance(served_dir).get(TRAINING_FINGERPRINT) if served_now else None,
        training=training,
        rolled_back_trainings={p.get(TRAINING_FINGERPRINT) for p in rolled_back_provenance(serving_dir)} - {None},
        accuracy=accuracy, references=measured if beat_references else None, margin=reference_margin,
        comparable=baseline.get_string_custom_property(BASELINE_SOURCE) != "classes_changed")
    gate.set_int_custom_property(BLESSED, int(reason in (GateReason.OK, GateReason.OK_CLASSES_CHANGED)))
    gate.set_string_custom_property(REASON, reason)
    gate.set_int_custom_property(SERVED_VERSION, served_now)
    gate.set_int_custom_property(BASELINE_VERSION, compared_with)
    gate.set_string_custom_property(TRAINING_FINGERPRINT, training)
    gate.set_string_custom_property(SPANS, examples.get_string_custom_property(SPANS))
    if blessed:
        gate.set_float_custom_property(CANDIDATE_ACCURACY, accuracy)
    gate.set_float_custom_property(REFERENCE_MARGIN, reference_margin)
    gate.set_string_custom_property(CLASS_CHANGE, baseline.get_string_custom_property(CLASS_CHANGE))
    # What the Pusher's model card quotes (components/model_card.py): TFMA's output and the references.
    gate.set_string_custom_property(EVALUATION_URI, evaluation.uri)
    for name, value in measured.items():
        gate.set_float_custom_property(name, value)
    gate.set_int_custom_property(REFERENCE_EXAMPLES, references.get_int_custom_property(REFERENCE_EXAMPLES))
