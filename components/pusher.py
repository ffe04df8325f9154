"""The Pusher's executor: TFX's Pusher, but a version appears under the push destination whole or not at all."""
import json
import os
import time

from absl import logging

from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components import model_card, rollout
from components.names import (ALREADY_PRESENT, BASELINE_VERSION, CLASS_CHANGE, EVALUATION_URI, MAJORITY_ACCURACY,
                              MODEL_CARD, MODEL_CARD_HTML, MODEL_INFO, MODEL_TRAINING, PROVENANCE, PUSHED_AS,
                              REFERENCE_EXAMPLES, REFERENCE_MARGIN, REPLACED_CANARY, SPANS, STAGING_PREFIX,
                              TFIDF_ACCURACY, TRAINING_FINGERPRINT)
from components.serving_dir import model_classes, model_fingerprint, provenance, served_versions

# The Pusher's custom_config keys: contract.max_text_chars, for the model card; rollout.mode and the TF Serving
# model name (serve.model_name), for the serving dir's model config (components/rollout.py).
MAX_TEXT_CHARS = "max_text_chars"
ROLLOUT_MODE = "rollout_mode"
MODEL_NAME = "model_name"


def _json(path: str) -> dict:
    if not fileio.exists(path):
        return {}
    with fileio.open(path) as f:
        return json.loads(f.read())


def card_for(model_path: str, gate, *, name: str, version: str, date: str, path: str, max_text_chars: int) -> dict:
    """The model card of `model_path` pushed as `version` (components/model_card.py), from the model's own
    assets.extra and the push gate's record (`gate`: PushGate's ModelBlessing artifact)."""
    props = {key: getter(key) for key, getter in (
        (SPANS, gate.get_string_custom_property), (BASELINE_VERSION, gate.get_int_custom_property),
        (CLASS_CHANGE, gate.get_string_custom_property), (MAJORITY_ACCURACY, gate.get_float_custom_property),
        (TFIDF_ACCURACY, gate.get_float_custom_property), (REFERENCE_EXAMPLES, gate.get_int_custom_property),
        (REFERENCE_MARGIN, gate.get_float_custom_property)) if gate.has_custom_property(key)}
    classes = model_classes(model_path)
    evaluation = gate.get_string_custom_property(EVALUATION_URI) if gate.has_custom_property(EVALUATION_URI) else ""
    overall, per_class = model_card.gate_metrics(evaluation, classes) if evaluation else ({}, {})
    return model_card.build_card(name=name, version=version, date=date, path=path, classes=classes,
                                 info=_json(os.path.join(model_path, MODEL_INFO)),
                                 training=_json(os.path.join(model_path, MODEL_TRAINING)), gate=props,
                                 overall=overall, per_class=per_class, max_text_chars=max_text_chars)


def already_pushed(base: str, model_path: str) -> str | None:
    """The version under `base` that already holds this model (same SavedModel fingerprint, or the Pusher's
    provenance naming this very model path), else None. A push killed after its rename, then run again
    (its cached PushGate approval reused), finds its own earlier version here."""
    fingerprint = model_fingerprint(model_path)
    for version in reversed(served_versions(base)):
        folder = os.path.join(base, str(version))
        if (fingerprint and model_fingerprint(folder) == fingerprint) or provenance(folder).get("model") == model_path:
            return str(version)
    return None


class AtomicPusherExecutor(pusher_executor.Executor):
    """TFX's Pusher, but a version appears under the push destination whole or not at all.

    TFX's own Pusher copies straight into ``<base>/<version>/``, so a run killed mid-copy leaves a partial
    version TF Serving may try to load. This one copies into ``<base>/.staging-<version>/`` and renames it
    into place (atomic on a local or mounted filesystem; on gs:// a rename is a copy, so TFX's ordering,
    saved_model.pb last, is kept too). Staging folders left by a killed push are removed first.

    Idempotent: a model already under the push destination (a push killed between its rename and MLMD's
    record, then run again) is recorded as pushed under its existing version and not copied again. The
    rename is the last step; TFX's archive copy of the model into the PushedModel artifact is left out
    (the InfraBlessing artifact already holds it), so nothing follows the version's appearance but
    the record.

    It pushes only what the servability gate blessed (components/servability.py; InfraValidator on
    Kubeflow): the model from the InfraBlessing, with its TF Serving warmup file.

    rollout.mode = canary (custom_config ROLLOUT_MODE): once the version is in place, the serving dir's model
    config names it canary beside stable (the first version: stable); components/rollout.py `after_push`. In
    replace mode a config left by an earlier canary mode is rewritten to serve the new version alone. The
    PushedModel records which (PUSHED_AS) and any canary still on trial it set aside (REPLACED_CANARY).

    Each version it writes carries its model card (assets.extra/model_card.json and .html;
    components/model_card.py), written into the staging folder, so it appears with the version.
    """

    def Do(self, input_dict, output_dict, exec_properties):
        self._log_startup(input_dict, output_dict, exec_properties)
        pushed = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        # Both gates: the push gate's ModelBlessing and the servability gate's InfraBlessing, which also holds
        # the model with its warmup file (TFX's GetModelPath reads it from there when no `model` is wired).
        if not input_dict.get(standard_component_specs.INFRA_BLESSING_KEY):
            logging.warning("no infra_blessing wired: nothing is pushed without the servability gate")
            self._MarkNotPushed(pushed)
            return
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(pushed)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        base = destination.filesystem.base_directory
        fileio.makedirs(base)
        custom = json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null") or {}
        existing = already_pushed(base, model_path)
        if existing:
            pushed.set_int_custom_property(ALREADY_PRESENT, 1)
            _roll_out(base, int(existing), custom, pushed, placed_now=False)
            self._MarkPushed(pushed, pushed_destination=os.path.join(base, existing), pushed_version=existing)
            return
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
        pipeline = self._context.pipeline_info if self._context else None
        try:  # what the model is, for people; a card that cannot be made must not keep a blessed model back
            card = card_for(model_path, gate, name=pipeline.id if pipeline else "transferline", version=version,
                            date=time.strftime("%Y-%m-%d"), path=final, max_text_chars=custom.get(MAX_TEXT_CHARS, 0))
        except Exception as e:  # noqa: BLE001  (said in the log; the version is pushed without its card)
            logging.warning("the model card of version %s was not written: %s", version, e)
        else:
            with fileio.open(os.path.join(staging, MODEL_CARD), "w") as f:
                f.write(json.dumps(card, indent=1))
            with fileio.open(os.path.join(staging, MODEL_CARD_HTML), "w") as f:
                f.write(model_card.card_page(card))
        with fileio.open(os.path.join(staging, PROVENANCE), "w") as f:  # what PushGate and people read later
            f.write(json.dumps({"version": int(version), "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                "model": model_path, SPANS: gate.get_string_custom_property(SPANS),
                                TRAINING_FINGERPRINT: gate.get_string_custom_property(TRAINING_FINGERPRINT),
                                "compared_with_version": gate.get_int_custom_property(BASELINE_VERSION)}))
        io_utils.copy_file(os.path.join(model_path, "saved_model.pb"), os.path.join(staging, "saved_model.pb"))
        if custom.get(ROLLOUT_MODE) == "canary":
            rollout.pin(base, custom.get(MODEL_NAME, "transferline"))  # the new version is not stable by being highest
        fileio.rename(staging, final)  # the version appears whole (replace mode: served from now on)
        _roll_out(base, int(version), custom, pushed, placed_now=True)  # canary mode: the model config names it
        self._MarkPushed(pushed, pushed_destination=final, pushed_version=version)


def _roll_out(base: str, version: int, custom: dict, pushed, placed_now: bool) -> None:
    """Applies rollout.after_push for ``version`` and records it. ``placed_now``: this push renamed it into
    place (else it was found there: it may already be served, and is taken as the serving dir says)."""
    mode = custom.get(ROLLOUT_MODE, "replace")
    now = rollout.before_push(base, version) if placed_now else rollout.read(base)
    change = rollout.after_push(now, version, mode)
    rollout.apply(base, custom.get(MODEL_NAME, "transferline"), change)
    canary = change.canary == version if change else (mode == "canary" and now.canary == version)
    pushed.set_string_custom_property(PUSHED_AS, "canary" if canary else "stable")
    pushed.set_int_custom_property(REPLACED_CANARY, (change.aside[0] if change and change.aside else 0))
    if change:
        logging.info("rollout (%s): version %s pushed as %s; model config %s", mode, version,
                     "canary" if canary else "stable", change)
