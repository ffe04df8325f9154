"""The served model as the Trainer's warm start and the Evaluator's baseline. No Resolver.

Open-source Kubeflow cannot run TFX Resolver nodes, so the served model comes from the push destination
itself. ServedModel (before the Trainer) copies the served version under ``<serving_dir>/<version>/`` (the
highest, or the model config's `stable`: components/rollout.py) into its Model artifact, in the layout the Trainer's base_model and the
Evaluator read (``<uri>/Format-Serving``); when nothing is served yet it holds no model. The Trainer
warm-starts from it; ServedModelBaseline (after the Trainer) gives the Evaluator that same model, or, on
the first run, the candidate itself: the Evaluator then compares the candidate with itself, the
no-regression threshold passes trivially and only the absolute bound decides. A KFP output always holds
one artifact, so "no baseline" is expressed this way under both runners alike. Which case happened is
recorded on the artifacts (MLMD custom properties).
"""
import os

from tfx import v1 as tfx
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import io_utils, path_utils

from components.names import BASELINE_PATH, BASELINE_SOURCE, BASELINE_VERSION, CLASS_CHANGE
from components.rollout import read as rollout_state
from components.serving_dir import class_change, model_classes


@component
def ServedModel(
        examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
        model: tfx.dsl.components.OutputArtifact[standard_artifacts.Model],
        serving_dir: tfx.dsl.components.Parameter[str]):
    """Copies the served (stable) version into `model` (nothing when no model is served yet).

    Keyed on the examples: new data takes a fresh copy of what is served now, to warm-start from and
    compare with; a re-run on unchanged data stays fully cached.
    """
    stable = rollout_state(serving_dir).stable  # not a canary on trial (rollout.mode = canary)
    if stable:
        _copy_served(serving_dir, stable, model)
    else:
        model.set_string_custom_property(BASELINE_SOURCE, "none")
        model.set_int_custom_property(BASELINE_VERSION, 0)
        model.set_string_custom_property(BASELINE_PATH, "")


def _copy_served(serving_dir: str, version: int, into) -> None:
    source = os.path.join(serving_dir, str(version))
    io_utils.copy_dir(source, path_utils.serving_model_path(into.uri))
    into.set_string_custom_property(BASELINE_SOURCE, "served")
    into.set_int_custom_property(BASELINE_VERSION, version)
    into.set_string_custom_property(BASELINE_PATH, source)


@component
def ServedModelBaseline(
        candidate: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        served: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        baseline: tfx.dsl.components.OutputArtifact[standard_artifacts.Model],
        serving_dir: tfx.dsl.components.Parameter[str],
        refresh: tfx.dsl.components.Parameter[int] = 0):
    """The Evaluator's baseline: the served model ServedModel copied or, on the first run, the candidate.

    If the served model has changed since that copy (a rollback, another push), PushGate notices and the
    local runner re-runs with `refresh` set to the version served now, which is copied instead: the
    comparison is redone without retraining.
    """
    candidate_dir = path_utils.serving_model_path(candidate.uri)
    if refresh:  # the version served now, instead of ServedModel's stale copy
        served_dir = os.path.join(serving_dir, str(refresh))
        version, served_path = refresh, served_dir
    elif served.get_string_custom_property(BASELINE_SOURCE) == "served":
        served_dir = path_utils.serving_model_path(served.uri)
        version = served.get_int_custom_property(BASELINE_VERSION)
        served_path = served.get_string_custom_property(BASELINE_PATH)
    else:  # nothing served: the candidate is compared with itself
        baseline.set_string_custom_property(BASELINE_SOURCE, "first_model")
        baseline.set_int_custom_property(BASELINE_VERSION, 0)
        baseline.set_string_custom_property(BASELINE_PATH, candidate_dir)
        io_utils.copy_dir(candidate_dir, path_utils.serving_model_path(baseline.uri))
        return
    change = class_change(model_classes(served_dir), model_classes(candidate_dir))
    if change:
        _not_comparable(candidate_dir, version, served_path, change, baseline)
        return
    baseline.set_string_custom_property(BASELINE_SOURCE, "served")
    baseline.set_int_custom_property(BASELINE_VERSION, version)
    baseline.set_string_custom_property(BASELINE_PATH, served_path)
    io_utils.copy_dir(served_dir, path_utils.serving_model_path(baseline.uri))


def _not_comparable(candidate_dir: str, version: int, served_path: str, change: str, baseline) -> None:
    """The served model predicts other classes: TFMA cannot compare the two (its class ids would not line
    up), so the candidate is its own baseline, as a first model is, and PushGate holds it to the references
    instead. The served version is still recorded: PushGate's check that it is still the one served holds."""
    baseline.set_string_custom_property(BASELINE_SOURCE, "classes_changed")
    baseline.set_int_custom_property(BASELINE_VERSION, version)
    baseline.set_string_custom_property(BASELINE_PATH, served_path)
    baseline.set_string_custom_property(CLASS_CHANGE, change)
    io_utils.copy_dir(candidate_dir, path_utils.serving_model_path(baseline.uri))
