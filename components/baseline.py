"""ServedModelBaseline: the model TF Serving serves now, as the Evaluator's baseline. No Resolver.

Open-source Kubeflow cannot run TFX Resolver nodes, so the baseline comes from
the push destination itself: the newest complete version under
``<serving_dir>/<version>/`` is copied into this component's Model artifact, in
the layout the Evaluator reads (``<uri>/Format-Serving``). When nothing is
served yet (the first run) the candidate is copied instead: the Evaluator then
compares the candidate with itself, the no-regression threshold passes
trivially and only the absolute bound decides. A KFP output always holds one
artifact, so "no baseline" is expressed this way under both runners alike.
Which case happened is recorded on the artifact (MLMD custom properties).
"""
import os

from tfx import v1 as tfx
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import standard_artifacts
from tfx.utils import io_utils, path_utils

BASELINE_SOURCE = "baseline_source"    # "served" or "first_model"
BASELINE_VERSION = "baseline_version"  # the served version number, 0 for first_model
BASELINE_PATH = "baseline_path"        # what was copied


def served_versions(serving_dir: str) -> list[int]:
    """Complete model versions under a TF Serving base directory, oldest first."""
    if not fileio.exists(serving_dir):
        return []
    versions = []
    for name in fileio.listdir(serving_dir):
        name = name.rstrip("/")
        if name.isdigit() and fileio.exists(os.path.join(serving_dir, name, "saved_model.pb")):
            versions.append(int(name))
    return sorted(versions)


@component
def ServedModelBaseline(
        candidate: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        baseline: tfx.dsl.components.OutputArtifact[standard_artifacts.Model],
        serving_dir: tfx.dsl.components.Parameter[str],
        refresh: tfx.dsl.components.Parameter[int] = 0):
    """Copies the newest served version (or, on the first run, the candidate) into `baseline`.

    Cached like any component (on the candidate and the parameters), so a re-run on unchanged
    data stays fully cached. If the served model has changed since, PushGate notices and the
    runner re-runs with `refresh` set to the served version, which takes a fresh copy.
    """
    versions = served_versions(serving_dir)
    if versions:
        source = os.path.join(serving_dir, str(versions[-1]))
        baseline.set_string_custom_property(BASELINE_SOURCE, "served")
        baseline.set_int_custom_property(BASELINE_VERSION, versions[-1])
    else:
        source = path_utils.serving_model_path(candidate.uri)
        baseline.set_string_custom_property(BASELINE_SOURCE, "first_model")
        baseline.set_int_custom_property(BASELINE_VERSION, 0)
    baseline.set_string_custom_property(BASELINE_PATH, source)
    io_utils.copy_dir(source, path_utils.serving_model_path(baseline.uri))


BLESSED = "blessed"
REASON = "reason"  # why PushGate did or did not let the model through
STALE = "stale_baseline"
ALREADY_SERVED = "already_served"


def _fingerprint(model_dir: str) -> bytes:
    """The SavedModel's fingerprint.pb (hashes of graph, signatures and checkpoint); b"" if absent."""
    path = os.path.join(model_dir, "fingerprint.pb")
    if not fileio.exists(path):
        return b""
    with fileio.open(path, "rb") as f:
        return f.read()


@component
def PushGate(
        model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing],
        baseline: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        gate: tfx.dsl.components.OutputArtifact[standard_artifacts.ModelBlessing],
        serving_dir: tfx.dsl.components.Parameter[str]):
    """Lets the Pusher push only a model the Evaluator blessed against what is served *now*.

    A compare-and-swap at the push boundary: if the version served now is not the one
    the candidate was compared with (a cached comparison, another pipeline pushed, a
    rollback), the model is held back with reason "stale_baseline" instead of pushed.
    A model that is already the served one is not pushed again ("already_served").
    """
    versions = served_versions(serving_dir)
    served_now = versions[-1] if versions else 0
    compared_with = baseline.get_int_custom_property(BASELINE_VERSION)
    candidate = _fingerprint(path_utils.serving_model_path(model.uri))
    served = _fingerprint(os.path.join(serving_dir, str(served_now))) if served_now else b""
    if not blessing.get_int_custom_property(BLESSED):
        reason = "not_blessed"
    elif served_now != compared_with:
        reason = STALE
    elif candidate and candidate == served:
        reason = ALREADY_SERVED
    else:
        reason = "ok"
    gate.set_int_custom_property(BLESSED, int(reason == "ok"))
    gate.set_string_custom_property(REASON, reason)
    gate.set_int_custom_property("served_version", served_now)
    gate.set_int_custom_property(BASELINE_VERSION, compared_with)
