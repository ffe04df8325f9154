"""The served model as warm start and baseline, the push gate, and an atomic push. No Resolver.

Open-source Kubeflow cannot run TFX Resolver nodes, so the served model comes from the push destination
itself. ServedModel (before the Trainer) copies the newest complete version under
``<serving_dir>/<version>/`` into its Model artifact, in the layout the Trainer's base_model and the
Evaluator read (``<uri>/Format-Serving``); when nothing is served yet it holds no model. The Trainer
warm-starts from it; ServedModelBaseline (after the Trainer) gives the Evaluator that same model, or, on
the first run, the candidate itself: the Evaluator then compares the candidate with itself, the
no-regression threshold passes trivially and only the absolute bound decides. A KFP output always holds
one artifact, so "no baseline" is expressed this way under both runners alike. Which case happened is
recorded on the artifacts (MLMD custom properties).
"""
import hashlib
import json
import os
import time

from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.utils import io_utils, path_utils, proto_utils

from components.serving_dir import served_versions
from components.spans import DATA_FINGERPRINT, SPANS

BASELINE_SOURCE = "baseline_source"    # "served", "first_model" (baseline) or "none" (nothing served)
BASELINE_VERSION = "baseline_version"  # the served version number, 0 for first_model
BASELINE_PATH = "baseline_path"        # what was copied


@component
def ServedModel(
        examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
        model: tfx.dsl.components.OutputArtifact[standard_artifacts.Model],
        serving_dir: tfx.dsl.components.Parameter[str]):
    """Copies the newest served version into `model` (nothing when no model is served yet).

    Keyed on the examples: new data takes a fresh copy of what is served now, to warm-start from and
    compare with; a re-run on unchanged data stays fully cached.
    """
    versions = served_versions(serving_dir)
    if versions:
        _copy_served(serving_dir, versions[-1], model)
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
    if refresh:
        _copy_served(serving_dir, refresh, baseline)
        return
    if served.get_string_custom_property(BASELINE_SOURCE) == "served":
        source = path_utils.serving_model_path(served.uri)
        baseline.set_string_custom_property(BASELINE_SOURCE, "served")
        baseline.set_int_custom_property(BASELINE_VERSION, served.get_int_custom_property(BASELINE_VERSION))
        baseline.set_string_custom_property(BASELINE_PATH, served.get_string_custom_property(BASELINE_PATH))
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


PROVENANCE = os.path.join("assets.extra", "transferline.json")  # in each pushed version; TF Serving ignores it
TRAINING_FINGERPRINT = "training_fingerprint"  # the data (chosen spans, test set) and the training config
SAME_TRAINING = "same_training"
ROLLED_BACK = "rolled_back"


def provenance(model_dir: str) -> dict:
    """What the Pusher recorded in a pushed version (spans, training fingerprint, ...); {} if nothing."""
    path = os.path.join(model_dir, PROVENANCE)
    if not fileio.exists(path):
        return {}
    with fileio.open(path, "r") as f:
        return json.loads(f.read())


def _rolled_back_fingerprints(serving_dir: str) -> set[str]:
    aside = os.path.join(serving_dir, ".rolled-back")
    names = fileio.listdir(aside) if fileio.exists(aside) else []
    return {provenance(os.path.join(aside, n.rstrip("/"))).get(TRAINING_FINGERPRINT) for n in names} - {None}


@component
def PushGate(
        model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing],
        baseline: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
        examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
        gate: tfx.dsl.components.OutputArtifact[standard_artifacts.ModelBlessing],
        serving_dir: tfx.dsl.components.Parameter[str],
        config_fingerprint: tfx.dsl.components.Parameter[str]):
    """Lets the Pusher push only a model the Evaluator blessed against what is served *now*.

    A compare-and-swap at the push boundary: if the version served now is not the one the candidate was
    compared with (a cached comparison, another pipeline pushed, a rollback), the model is held back
    ("stale_baseline"). Also held back: a model that is already the served one ("already_served"); one
    trained on the very data and config of the served model ("same_training": a scheduled run that found
    no new data, on Kubeflow where nothing is cached); and one trained like a version that was rolled
    back ("rolled_back": a rollback sticks until the data or the config change).
    """
    versions = served_versions(serving_dir)
    served_now = versions[-1] if versions else 0
    compared_with = baseline.get_int_custom_property(BASELINE_VERSION)
    candidate = _fingerprint(path_utils.serving_model_path(model.uri))
    served_dir = os.path.join(serving_dir, str(served_now))
    served = _fingerprint(served_dir) if served_now else b""
    data = examples.get_string_custom_property(DATA_FINGERPRINT)
    training = hashlib.sha256(f"{data}/{config_fingerprint}".encode()).hexdigest()[:16]
    if not blessing.get_int_custom_property(BLESSED):
        reason = "not_blessed"
    elif served_now != compared_with:
        reason = STALE
    elif candidate and candidate == served:
        reason = ALREADY_SERVED
    elif served_now and provenance(served_dir).get(TRAINING_FINGERPRINT) == training:
        reason = SAME_TRAINING
    elif training in _rolled_back_fingerprints(serving_dir):
        reason = ROLLED_BACK
    else:
        reason = "ok"
    gate.set_int_custom_property(BLESSED, int(reason == "ok"))
    gate.set_string_custom_property(REASON, reason)
    gate.set_int_custom_property("served_version", served_now)
    gate.set_int_custom_property(BASELINE_VERSION, compared_with)
    gate.set_string_custom_property(TRAINING_FINGERPRINT, training)
    gate.set_string_custom_property(SPANS, examples.get_string_custom_property(SPANS))


STAGING_PREFIX = ".staging-"  # TF Serving ignores version folders whose name is not a number


class AtomicPusherExecutor(pusher_executor.Executor):
    """TFX's Pusher, but a version appears under the push destination whole or not at all.

    TFX's own Pusher copies straight into ``<base>/<version>/``, so a run killed mid-copy leaves a partial
    version TF Serving may try to load. This one copies into ``<base>/.staging-<version>/`` and renames it
    into place (atomic on a local or mounted filesystem; on gs:// a rename is a copy, so TFX's ordering,
    saved_model.pb last, is kept too). Staging folders left by a killed push are removed first.
    """

    def Do(self, input_dict, output_dict, exec_properties):
        self._log_startup(input_dict, output_dict, exec_properties)
        pushed = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(pushed)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        base = destination.filesystem.base_directory
        fileio.makedirs(base)
        for name in fileio.listdir(base):
            if name.rstrip("/").startswith(STAGING_PREFIX):
                fileio.rmtree(os.path.join(base, name.rstrip("/")))
        version = str(int(time.time()))
        while fileio.exists(os.path.join(base, version)):  # two pushes within a second
            version = str(int(version) + 1)
        staging, final = os.path.join(base, STAGING_PREFIX + version), os.path.join(base, version)
        io_utils.copy_dir(model_path, staging, deny_regex_patterns=[r"saved_model\.pb"])
        gate = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_BLESSING_KEY])
        fileio.makedirs(os.path.dirname(os.path.join(staging, PROVENANCE)))
        with fileio.open(os.path.join(staging, PROVENANCE), "w") as f:  # what PushGate and people read later
            f.write(json.dumps({"version": int(version), "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                "model": model_path, SPANS: gate.get_string_custom_property(SPANS),
                                TRAINING_FINGERPRINT: gate.get_string_custom_property(TRAINING_FINGERPRINT),
                                "compared_with_version": gate.get_int_custom_property(BASELINE_VERSION)}))
        io_utils.copy_file(os.path.join(model_path, "saved_model.pb"), os.path.join(staging, "saved_model.pb"))
        fileio.rename(staging, final)
        io_utils.copy_dir(model_path, pushed.uri)  # the archive copy TFX's Pusher keeps
        self._MarkPushed(pushed, pushed_destination=final, pushed_version=version)
