"""Which pushed versions serve traffic: the serving dir's rollout state (rollout.mode; README, "Canary").

Without ``<serving_dir>/models.config`` (rollout.mode = replace) TF Serving serves the highest version: it is
`stable`, and there is no canary. With it (written by the Pusher in canary mode, `promote` and `rollback`),
the file is TF Serving's own ModelServerConfig text proto, passed to it as --model_config_file: a `specific`
version policy naming the versions to load, and version_labels `stable` and `canary` (TF Serving 2.16.1,
model_servers/server_core.cc:504-567 UpdateModelVersionLabelMap). tf.io.gfile and protobuf only: no TFX.

TF Serving assigns a label only to a version already AVAILABLE, except a label that is new to the label map
in force, under --allow_version_labels_for_unavailable_models (server_core.cc:515-527). So a canary push adds
the version with a new `canary` label (the previous canary's label is removed with it, by a rollback or a
promote, before the next push: a canary replaced in place names its version with no label until it serves;
`Rollout.canary` reads the config's versions, not only the label). `stable` only ever moves to a version that
has served as canary, so it is AVAILABLE when it moves. A version that has not served yet and must take over at
once (a rollback to an earlier version, a push in replace mode while a config is in force) is named with no
label at all: dropping labels is always legal, and with no `stable` label the highest version listed is stable
(TF Serving's default for a request naming no version). The next canary push labels it `stable` again (a new
label on an AVAILABLE version: legal).

Every change is planned by a pure function (`after_push`, `after_promote`, `after_drop`, `after_rollback`:
a `Change`) and applied by `apply`: the config first (TF Serving stops using a version before its folder
goes), then the versions it sets aside are moved to ``.rolled-back/`` as a rollback moves them.
"""
from __future__ import annotations

import os
from typing import NamedTuple

from components.names import CANARY_LABEL, ROLLOUT_CONFIG, STABLE_LABEL


class Rollout(NamedTuple):
    stable: int | None  # the version answering traffic (None: nothing pushed)
    canary: int | None  # the version on trial beside it (None: no trial)
    config_path: str = ""  # the model config file, '' when the serving dir has none (replace mode)


def describe(state: Rollout) -> str:
    """What serves, in words, for messages: 'serving version 5 alone' / 'nothing pushed'."""
    if state.stable is None:
        return "nothing pushed"
    return f"serving version {state.stable}" + (f", canary {state.canary}" if state.canary is not None else " alone")


def config_path(serving_dir: str) -> str:
    return os.path.join(serving_dir, ROLLOUT_CONFIG)


def read(serving_dir: str) -> Rollout:
    """The serving dir's stable and canary versions (stable = the highest version when there is no config)."""
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from components.serving_dir import served_versions

    path = config_path(serving_dir)
    if not tf.io.gfile.exists(path):
        versions = served_versions(serving_dir)
        return Rollout(versions[-1] if versions else None, None)
    proto = model_server_config_pb2.ModelServerConfig()
    with tf.io.gfile.GFile(path, "r") as f:
        text_format.Parse(f.read(), proto)
    if not proto.model_config_list.config:
        return Rollout(None, None, path)
    model = proto.model_config_list.config[0]
    labels = dict(model.version_labels)
    versions = list(model.model_version_policy.specific.versions)
    if STABLE_LABEL not in labels:  # a rollback's or a replace-mode push's config: the highest listed serves
        return Rollout(max(versions) if versions else None, labels.get(CANARY_LABEL), path)
    stable = labels[STABLE_LABEL]
    others = [v for v in versions if v != stable]
    canary = labels.get(CANARY_LABEL, max(others) if others else None)
    return Rollout(stable, canary, path)


def config_text(serving_dir: str, model_name: str, stable: int | None, canary: int | None,
                canary_labelled: bool = True, stable_labelled: bool = True) -> str:
    """The ModelServerConfig serving `stable` (and `canary` beside it) from ``serving_dir``."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    c = proto.model_config_list.config.add(name=model_name, base_path=serving_dir, model_platform="tensorflow")
    versions = [v for v in (stable, canary) if v is not None]
    c.model_version_policy.specific.versions.extend(sorted(versions))
    if stable is not None and stable_labelled:
        c.version_labels[STABLE_LABEL] = stable
    if canary is not None and canary_labelled:
        c.version_labels[CANARY_LABEL] = canary
    return text_format.MessageToString(proto)


def write(serving_dir: str, model_name: str, stable: int | None, canary: int | None,
          canary_labelled: bool = True, stable_labelled: bool = True) -> str:
    """Writes the serving dir's model config whole (a temporary file, then a rename: a server polling it reads
    the old file or the new one); returns its path."""
    import tensorflow as tf

    path = config_path(serving_dir)
    temporary = os.path.join(serving_dir, f".{ROLLOUT_CONFIG}.tmp-{os.getpid()}")
    with tf.io.gfile.GFile(temporary, "w") as f:
        f.write(config_text(serving_dir, model_name, stable, canary, canary_labelled, stable_labelled))
    tf.io.gfile.rename(temporary, path, overwrite=True)
    return path


# ----------------------------------------------------------------------------------------- state changes
class Change(NamedTuple):
    """The config to write (the versions served and how they are labelled) and the versions to set aside."""
    stable: int | None
    canary: int | None = None
    canary_labelled: bool = True
    stable_labelled: bool = True
    aside: tuple = ()  # versions moved to .rolled-back/ once the config no longer names them


def pin(serving_dir: str, model_name: str) -> None:
    """Canary mode, before a new version folder appears: a serving dir with no config yet (replace mode until
    now) gets one naming what is served now, so the new, higher version is never taken for stable (by TF
    Serving reading the file, or by `read`) between its rename and the push's config."""
    now = read(serving_dir)
    if not now.config_path and now.stable is not None:
        write(serving_dir, model_name, now.stable, None)


def before_push(serving_dir: str, version: int) -> Rollout:
    """The state a push of ``version`` (its folder already in place) applies to: without a config, the highest
    other version is stable (``version`` itself is not served yet as far as the rollout is concerned)."""
    from components.serving_dir import served_versions

    now = read(serving_dir)
    if now.config_path or now.stable != version:
        return now
    others = [v for v in served_versions(serving_dir) if v != version]
    return Rollout(others[-1] if others else None, None)


def after_push(now: Rollout, version: int, mode: str) -> Change | None:
    """What a push of ``version`` changes (None: no config to write). canary: the first version becomes stable,
    a later one canary beside stable (a canary still on trial is set aside, and the new one named unlabelled:
    `canary` cannot move to a version not loaded yet). replace: no config, unless one is in force (an earlier
    canary mode); then the new version is served alone, unlabelled, and a canary on trial is set aside."""
    if mode == "canary":
        if now.stable is None:
            return Change(version)
        if version in (now.stable, now.canary):  # already named (a push run again after the config was written)
            return None
        if now.canary is not None:
            return Change(now.stable, version, canary_labelled=False, aside=(now.canary,))
        return Change(now.stable, version)
    if not now.config_path:
        return None
    return Change(version, stable_labelled=False, aside=tuple(v for v in (now.canary,) if v not in (None, version)))


def after_promote(now: Rollout) -> Change:
    """`promote`: stable moves to the canary (AVAILABLE: it has served as canary), served alone."""
    return Change(now.canary)


def after_drop(now: Rollout) -> Change:
    """`rollback` with a canary on trial: the canary is set aside, stable served alone (its label stays)."""
    return Change(now.stable, aside=(now.canary,))


def after_rollback(target: int) -> Change:
    """`rollback` to an earlier version (not loaded: the config has named only stable): served alone, unlabelled.
    The caller moves the newer versions aside itself."""
    return Change(target, stable_labelled=False)


def apply(serving_dir: str, model_name: str, change: Change | None) -> list[str]:
    """Writes the config of ``change``, then moves its ``aside`` versions to ``.rolled-back/<v>-<time>/``;
    returns where they went."""
    if change is None:
        return []
    write(serving_dir, model_name, change.stable, change.canary, change.canary_labelled, change.stable_labelled)
    return [set_aside(serving_dir, v) for v in change.aside]


def set_aside(serving_dir: str, version: int) -> str:
    """Moves ``<serving_dir>/<version>`` to ``.rolled-back/<version>-<time>/`` (a rename; nothing is deleted)."""
    import time

    import tensorflow as tf

    from components.serving_dir import rolled_back_dir

    aside = rolled_back_dir(serving_dir)
    tf.io.gfile.makedirs(aside)
    target = os.path.join(aside, f"{version}-{int(time.time())}")
    tf.io.gfile.rename(os.path.join(serving_dir, str(version)), target)
    return target
