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
has served as canary, so it is AVAILABLE when it moves.
"""
from __future__ import annotations

import os
from typing import NamedTuple

from components.names import CANARY_LABEL, ROLLOUT_CONFIG, STABLE_LABEL


class Rollout(NamedTuple):
    stable: int | None  # the version answering traffic (None: nothing pushed)
    canary: int | None  # the version on trial beside it (None: no trial)
    config_path: str = ""  # the model config file, '' when the serving dir has none (replace mode)


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
    stable = labels.get(STABLE_LABEL)
    others = [v for v in model.model_version_policy.specific.versions if v != stable]
    canary = labels.get(CANARY_LABEL, max(others) if others else None)
    return Rollout(stable, canary, path)


def config_text(serving_dir: str, model_name: str, stable: int | None, canary: int | None,
                canary_labelled: bool = True) -> str:
    """The ModelServerConfig serving `stable` (and `canary` beside it) from ``serving_dir``."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    c = proto.model_config_list.config.add(name=model_name, base_path=serving_dir, model_platform="tensorflow")
    versions = [v for v in (stable, canary) if v is not None]
    c.model_version_policy.specific.versions.extend(sorted(versions))
    if stable is not None:
        c.version_labels[STABLE_LABEL] = stable
    if canary is not None and canary_labelled:
        c.version_labels[CANARY_LABEL] = canary
    return text_format.MessageToString(proto)


def write(serving_dir: str, model_name: str, stable: int | None, canary: int | None,
          canary_labelled: bool = True) -> str:
    """Writes the serving dir's model config whole (a temporary file, then a rename: a server polling it reads
    the old file or the new one); returns its path."""
    import tensorflow as tf

    path = config_path(serving_dir)
    temporary = os.path.join(serving_dir, f".{ROLLOUT_CONFIG}.tmp-{os.getpid()}")
    with tf.io.gfile.GFile(temporary, "w") as f:
        f.write(config_text(serving_dir, model_name, stable, canary, canary_labelled))
    tf.io.gfile.rename(temporary, path, overwrite=True)
    return path
