"""Canary rollout (rollout.mode = canary; components/rollout.py): the Pusher's model config, `promote`, `rollback`
dropping the canary, the stable version as "the served model" everywhere, and `versions`.

The units work on a temporary serving dir of tiny fake version folders (no TF model) and a real MLMD SQLite
file. After every state change the written config is handed to the project's TF Serving emulation
(ops/serving/model_config.py: ValidateModelConfigList, UpdateModelVersionLabelMap of server_core.cc 2.16.1,
SC:504-567) with the label map in force and the versions then loaded, as TF Serving would apply it (SC:455-470:
the labels are updated before the new versions load). The real pipeline, `serve` and the verdict: tests/test_canary_e2e.py.
"""
import json
import os
import sys

import pytest

from components import names, rollout
from components.errors import NotFound, UserError
from ops.serving import model_config
from pipelines.config_loading import load_config

MODEL = "transferline"


def _version(serving_dir, version, training="t"):
    """A fake complete version: saved_model.pb, fingerprint.pb and the Pusher's provenance."""
    path = os.path.join(serving_dir, str(version))
    os.makedirs(os.path.join(path, "assets.extra"))
    for name, data in (("saved_model.pb", b"graph"), ("fingerprint.pb", str(version).encode())):
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
    with open(os.path.join(path, names.PROVENANCE), "w") as f:
        json.dump({"version": version, "pushed_at": f"2026-12-0{version // 100}T00:00:00+0000",
                   names.SPANS: "1", names.TRAINING_FINGERPRINT: f"{training}{version}"}, f)
    return path


class TFServing:
    """TF Serving's side of the model config file: the label map in force and the versions loaded. `poll`
    applies the file as ServerCore::ReloadConfig does: labels first (resolve_labels = UpdateModelVersionLabelMap,
    against the versions loaded *before* this config), then the specific versions on disk load."""

    def __init__(self, serving_dir, allow_unavailable=True):
        self.serving_dir, self.allow = serving_dir, allow_unavailable
        self.labels, self.loaded = None, []

    def poll(self, text=None):
        path = rollout.config_path(self.serving_dir)
        entries = model_config.parse(text, path) if text is not None else model_config.read(path)
        model_config.validate(entries)
        self.labels = model_config.resolve_labels(entries, {MODEL: set(self.loaded)}, self.labels, self.allow)
        [entry] = entries
        on_disk = [int(n) for n in os.listdir(self.serving_dir) if n.isdigit()]
        wanted, n = model_config.aspired(entry, on_disk)
        self.loaded = sorted(wanted[:n])
        return self.labels.get(MODEL, {})


def _config(work_dir, mode="canary"):
    return load_config(None, [f"paths.work_dir={work_dir}", f"rollout.mode={mode}"])


def _push(serving_dir, version, mode="canary"):
    """A push of ``version`` as the Pusher makes it: in canary mode what is served is pinned, the folder
    appears, then components.pusher._roll_out."""
    from tfx.types import standard_artifacts

    from components.pusher import MODEL_NAME, ROLLOUT_MODE, _roll_out

    if mode == "canary":
        rollout.pin(serving_dir, MODEL)
    _version(serving_dir, version)
    pushed = standard_artifacts.PushedModel()
    _roll_out(serving_dir, version, {ROLLOUT_MODE: mode, MODEL_NAME: MODEL}, pushed, placed_now=True)
    return pushed.get_string_custom_property(names.PUSHED_AS), pushed.get_int_custom_property(names.REPLACED_CANARY)


def _aside(serving_dir):
    folder = os.path.join(serving_dir, names.ROLLED_BACK_DIR)
    return sorted(int(n.split("-")[0]) for n in os.listdir(folder)) if os.path.isdir(folder) else []


# ----------------------------------------------------------------------------------------- the lifecycle
def test_canary_lifecycle_every_config_passes_tf_servings_label_rule(tmp_path):
    from ops.pipeline.promote import promote
    from ops.pipeline.rollback import drop_canary, rollback

    config = _config(str(tmp_path / "work"))
    serving = config.serving_dir
    server = TFServing(serving)

    # The first push in canary mode: stable alone (TF Serving starting on this file needs
    # --allow_version_labels_for_unavailable_models for any label: nothing is loaded yet).
    assert _push(serving, 100) == ("stable", 0)
    assert rollout.read(serving)[:2] == (100, None)
    assert server.poll() == {"stable": 100} and server.loaded == [100]

    # A candidate lands as canary beside stable: a new label.
    assert _push(serving, 200) == ("canary", 0)
    assert rollout.read(serving)[:2] == (100, 200)
    assert server.poll() == {"stable": 100, "canary": 200} and server.loaded == [100, 200]

    # Another candidate while 200 is on trial: 200 is set aside, 300 is named unlabelled (moving `canary` to a
    # version not loaded yet is refused even with allow_unavailable: the negative control below).
    assert _push(serving, 300) == ("canary", 200)
    assert rollout.read(serving)[:2] == (100, 300) and _aside(serving) == [200]
    labelled = rollout.config_text(serving, MODEL, 100, 300, canary_labelled=True)
    with pytest.raises(model_config.ModelConfigError, match="version 300 .* not currently available"):
        _refused(serving, labelled, {"stable": 100, "canary": 200}, [100, 200])
    assert server.poll() == {"stable": 100} and server.loaded == [100, 300]

    # promote: stable moves to the canary, loaded all through its trial.
    done = promote(config, "canary agrees with stable")
    assert (done.from_version, done.to_version) == (100, 300)
    assert rollout.read(serving)[:2] == (300, None)
    assert server.poll() == {"stable": 300} and server.loaded == [300]
    assert os.path.isdir(os.path.join(serving, "100"))  # kept, for a rollback

    # A canary dropped by `rollback`: config back to stable alone, the canary's folder set aside.
    assert _push(serving, 400) == ("canary", 0)
    assert server.poll() == {"stable": 300, "canary": 400}
    dropped = rollback(config, "canary disagrees")
    assert (dropped.canary, dropped.from_version, dropped.to_version, dropped.moved) == (400, 400, 300, [400])
    assert rollout.read(serving)[:2] == (300, None) and _aside(serving) == [200, 400]
    assert server.poll() == {"stable": 300} and server.loaded == [300]

    # rollback without a canary, in canary mode: the target served alone, unlabelled (it is not loaded).
    back = rollback(config, "stable regressed")
    assert (back.from_version, back.to_version, back.moved, back.canary) == (300, 100, [300], 0)
    assert rollout.read(serving)[:2] == (100, None)
    assert server.poll() == {} and server.loaded == [100]

    # The next canary push labels the served version `stable` again: a new label on a loaded version.
    assert _push(serving, 500) == ("canary", 0)
    assert server.poll() == {"stable": 100, "canary": 500} and server.loaded == [100, 500]
    promote(config, "500 is good")
    assert rollout.read(serving)[:2] == (500, None)
    with pytest.raises(NotFound, match="no canary on trial"):  # promoted: no canary left to drop
        drop_canary(config, "again")
    assert server.poll() == {"stable": 500}


def test_rollback_to_an_earlier_version_while_a_canary_is_on_trial(tmp_path):
    """`rollback --to V` with a canary on trial: stable and canary both move aside, V is served alone."""
    from ops.pipeline.rollback import rollback

    config = _config(str(tmp_path / "work"))
    serving = config.serving_dir
    server = TFServing(serving)
    for v in (100, 200, 300):
        _push(serving, v, "replace")
    _push(serving, 400)
    assert server.poll() == {"stable": 300, "canary": 400}
    with pytest.raises(NotFound, match="not an earlier version"):
        rollback(config, "r", to_version=400)
    done = rollback(config, "both bad", to_version=200)
    assert (done.from_version, done.to_version, done.moved, done.canary) == (300, 200, [300, 400], 0)
    assert rollout.read(serving)[:2] == (200, None) and _aside(serving) == [300, 400]
    assert server.poll() == {} and server.loaded == [200]


def _refused(serving_dir, text, labels, loaded):
    server = TFServing(serving_dir)
    server.labels, server.loaded = {MODEL: labels}, loaded
    server.poll(text)


def test_a_label_moved_to_a_version_not_loaded_is_refused(tmp_path):
    """The negative control: the emulation refuses what TF Serving refuses, so the lifecycle's acceptance means
    something. Moving `stable` straight to a new version (what a naive replace-mode rewrite would write)."""
    serving = str(tmp_path)
    for v in (100, 200):
        _version(serving, v)
    server = TFServing(serving)
    server.poll(rollout.config_text(serving, MODEL, 100, None))
    with pytest.raises(model_config.ModelConfigError, match="version 200 of model transferline, which is not"):
        server.poll(rollout.config_text(serving, MODEL, 200, None))
    # ... while the same versions unlabelled are accepted (a rollback's or a replace-mode push's config).
    assert server.poll(rollout.config_text(serving, MODEL, 200, None, stable_labelled=False)) == {}
    assert server.loaded == [200]


def test_replace_mode_with_a_config_left_by_canary_mode(tmp_path):
    """Replace mode writes no config; one left by an earlier canary mode is rewritten to serve the new version
    alone (unlabelled: `stable` cannot move to a version not loaded), a canary on trial set aside."""
    serving = str(tmp_path / "serving")
    assert _push(serving, 100, "replace") == ("stable", 0)
    assert not os.path.exists(rollout.config_path(serving)) and rollout.read(serving) == (100, None, "")
    server = TFServing(serving)
    _push(serving, 200)
    assert server.poll() == {"stable": 100, "canary": 200}
    assert _push(serving, 300, "replace") == ("stable", 200)
    assert rollout.read(serving)[:2] == (300, None) and _aside(serving) == [200]
    assert server.poll() == {} and server.loaded == [300]


def test_switching_to_canary_mode_pins_stable_before_the_new_version_appears(tmp_path):
    """A serving dir served in replace mode (no config): before a canary's folder appears, the Pusher writes a
    config naming what is served now, so the new highest number is never read as stable, even for a moment."""
    serving = str(tmp_path / "serving")
    _push(serving, 100, "replace")
    _version(serving, 200)  # without the pin, the highest version is stable
    assert rollout.read(serving).stable == 200
    os.rename(os.path.join(serving, "200"), str(tmp_path / "200"))
    rollout.pin(serving, MODEL)
    os.rename(str(tmp_path / "200"), os.path.join(serving, "200"))  # the Pusher's rename, after the pin
    assert rollout.read(serving)[:2] == (100, None)
    assert TFServing(serving).poll() == {"stable": 100}
    rollout.pin(serving, MODEL)  # a config in force is left alone
    assert rollout.read(serving)[:2] == (100, None)


def test_a_push_run_again_after_its_config_was_written_changes_nothing(tmp_path):
    serving = str(tmp_path / "serving")
    _push(serving, 100)
    _push(serving, 200)
    with open(rollout.config_path(serving)) as f:
        before = f.read()
    assert rollout.after_push(rollout.read(serving), 200, "canary") is None  # already the canary
    assert rollout.after_push(rollout.read(serving), 100, "canary") is None  # already stable
    with open(rollout.config_path(serving)) as f:
        assert f.read() == before


def test_a_served_version_found_again_by_a_canary_mode_push_stays_stable(tmp_path):
    """A run switched to canary mode whose Pusher (its custom_config changed) finds its model already served
    (replace mode pushed it): it stays stable, not made a canary of the version below it."""
    from tfx.types import standard_artifacts

    from components.pusher import MODEL_NAME, ROLLOUT_MODE, _roll_out

    serving = str(tmp_path / "serving")
    for v in (100, 200):
        _push(serving, v, "replace")
    pushed = standard_artifacts.PushedModel()
    _roll_out(serving, 200, {ROLLOUT_MODE: "canary", MODEL_NAME: MODEL}, pushed, placed_now=False)
    assert pushed.get_string_custom_property(names.PUSHED_AS) == "stable"
    assert rollout.read(serving)[:2] == (200, None)


# ----------------------------------------------------------------------------------------- MLMD and the ledger
def _pipeline_context(metadata_path):
    from ml_metadata.proto import metadata_store_pb2

    from pipelines.mlmd_store import connect

    store = connect(metadata_path, writable=True)
    type_id = store.put_context_type(metadata_store_pb2.ContextType(name="pipeline"))
    [context_id] = store.put_contexts([metadata_store_pb2.Context(type_id=type_id, name=MODEL)])
    return context_id


def test_promote_and_drop_are_recorded_in_mlmd_and_shown_by_versions(tmp_path):
    from ops.pipeline import ledger
    from ops.pipeline.promote import promote, promotions_log
    from ops.pipeline.rollback import drop_canary
    from pipelines.mlmd_store import connect
    from pipelines.run_history import PROMOTE_EXECUTION_TYPE, ROLLBACK_EXECUTION_TYPE, promotions, rollbacks

    config = _config(str(tmp_path / "work"))
    os.makedirs(config.paths.work_dir)
    context_id = _pipeline_context(config.metadata_path)
    serving = config.serving_dir
    for v in (100, 200):
        _push(serving, v)
    promoted = promote(config, "agreement 0.97 over 2 days")
    _push(serving, 300)
    dropped = drop_canary(config, "verdict failed: agreement 0.41")

    store = connect(config.metadata_path)
    [p] = store.get_executions_by_type(PROMOTE_EXECUTION_TYPE)
    [d] = store.get_executions_by_type(ROLLBACK_EXECUTION_TYPE)
    assert (p.id, d.id) == (promoted.mlmd_execution_id, dropped.mlmd_execution_id)
    assert {e.id for e in store.get_executions_by_context(context_id)} == {p.id, d.id}
    assert promotions(store) == [{"from_version": 100, "to_version": 200, "user": promoted.user,
                                  "host": promoted.host, "time": promoted.time,
                                  "reason": "agreement 0.97 over 2 days"}]
    [rb] = rollbacks(store)
    assert (rb["canary"], rb["from_version"], rb["to_version"], rb["moved"]) == (300, 300, 200, "300")
    with open(promotions_log(config)) as f:
        assert [json.loads(line)["to_version"] for line in f] == [200]
    with open(config.work.rollbacks_log) as f:
        assert [json.loads(line)["canary"] for line in f] == [300]

    _push(serving, 400)  # on trial now
    entries = {e.version: e for e in ledger.list_versions(config.metadata_path, MODEL, serving)}
    assert {v: e.state for v, e in entries.items()} == {100: "kept", 200: "served", 300: "rolled_back",
                                                        400: "canary"}
    assert [e.version for e in entries.values() if e.served] == [200]
    assert [(x["from_version"], x["reason"]) for x in entries[200].promotions] == [(100, "agreement 0.97 over 2 days")]
    assert [x["canary"] for x in entries[300].rollbacks] == [300]
    lines = {line.split()[0]: line for line in ledger.format_versions(list(entries.values())).splitlines()}
    assert lines["200"].split()[1] == "SERVED" and lines["400"].split()[1] == "CANARY"
    assert "from 100" in lines["200"] and "canary dropped" in lines["300"]


def test_promote_and_drop_refuse_clearly(tmp_path, capsys):
    from unittest import mock

    from ops import cli
    from ops.pipeline.promote import promote
    from ops.pipeline.rollback import drop_canary

    config = _config(str(tmp_path / "work"))
    _push(config.serving_dir, 100)
    with pytest.raises(UserError, match="say why"):
        promote(config, "  ")
    with pytest.raises(NotFound, match="no canary on trial"):
        promote(config, "why not")
    with pytest.raises(NotFound, match="no canary on trial"):
        drop_canary(config, "why not")
    with mock.patch.object(sys, "argv", ["transferline"]):
        code = cli.main(["promote", "--reason", "r", "--work-dir", config.paths.work_dir])
    assert code == NotFound.exit_code and "no canary on trial" in capsys.readouterr().err
    assert rollout.read(config.serving_dir)[:2] == (100, None)  # nothing changed


# ----------------------------------------------------------------------------------------- "the served model"
def test_the_served_model_is_stable_not_the_highest_version(tmp_path):
    from ops.loop.monitor_checks import served_model
    from ops.pipeline.scoring import newest_served_model, served_model_dir

    config = _config(str(tmp_path / "work"))
    serving = config.serving_dir
    _push(serving, 100)
    _push(serving, 200)  # the canary: the highest number, not the served model
    assert newest_served_model(serving) == served_model_dir(serving) == os.path.join(serving, "100")
    assert served_model_dir(serving, 200) == os.path.join(serving, "200")  # asked for by number
    assert served_model(config)["version"] == 100


def test_runs_says_a_push_was_a_canary():
    from ops.pipeline import ledger
    from ops.pipeline.ledger_entries import RunEntry

    def entry(pushed_as):
        return RunEntry(run_id="r", started="2026-12-07T00:00:00Z", state="COMPLETE", stopped_at=None, spans=[1],
                        trainer_mode="head", accuracy=0.9, references={}, blessed=True, verdict="ok",
                        baseline_source="served", baseline_version=100, pushed_version="200", new_push=True,
                        pushed_as=pushed_as, rolled_back=None)
    assert "200 as canary" in ledger.format_runs([entry("canary")])
    assert "as canary" not in ledger.format_runs([entry("stable")])
