"""`serve --model-config-file`: TF Serving's ModelServerConfig text proto (several models, version policies, labels).

Parsed by protobuf's text_format into tensorflow-serving-api's own message; checked and applied as TF Serving
2.16.1 does. Sources (tensorflow/serving 2.16.1): SC = model_servers/server_core.cc, SV = model_servers/server.cc,
FS = sources/storage_path/file_system_storage_path_source.cc, PU = util/proto_util.h. Pure: no TensorFlow.
"""
from __future__ import annotations

import os
import tempfile
from typing import NamedTuple

from components.errors import ConfigError

TENSORFLOW = "tensorflow"  # kTensorFlowModelPlatform: the one platform of the default platform config map


class ModelConfigError(ConfigError):
    """A model config file TF Serving would refuse: the message is TF Serving's (one line)."""


class ModelEntry(NamedTuple):
    """One `config { ... }` of the model_config_list."""
    name: str
    base_path: str
    policy: str = "latest"  # latest | all | specific (model_version_policy; unset = latest, FS:256-258)
    num_versions: int = 1  # latest { num_versions }
    versions: tuple = ()  # specific { versions }
    labels: tuple = ()  # version_labels as sorted (label, version) pairs: hashable, comparable
    platform: str = TENSORFLOW


def single(name: str, base_path: str) -> list[ModelEntry]:
    """No config file: --model_name over --model_base_path, latest version (BuildSingleModelConfig, SV:74-87)."""
    return [ModelEntry(name, base_path)]


def parse(text: str, path: str) -> list[ModelEntry] | None:
    """The file's models; None for an empty config (CONFIG_NOT_SET: "Taking no action", SC:470-475)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as e:  # TF Serving says only "Invalid protobuf file" (PU:27-39): we add where
        where = f"line {e.GetLine()} column {e.GetColumn()}: " if e.GetLine() is not None else ""
        message = str(e).split(" : ", 1)[-1]
        raise ModelConfigError(f"Invalid protobuf file: '{path}': {where}{message}") from None
    choice = proto.WhichOneof("config")
    if choice is None:
        return None
    if choice == "custom_model_config":
        raise ModelConfigError(f"{path}: ModelServer does not yet support custom model config.")  # SV:66-72
    entries = []
    for c in proto.model_config_list.config:
        policy = c.model_version_policy.WhichOneof("policy_choice") or "latest"
        entries.append(ModelEntry(
            c.name, c.base_path, policy, max(c.model_version_policy.latest.num_versions, 1),  # FS:147-148
            tuple(c.model_version_policy.specific.versions), tuple(sorted(c.version_labels.items())),
            _platform(c)))
    return entries


def read(path: str) -> list[ModelEntry] | None:
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        raise ModelConfigError(f"cannot read the model config file {path}: {e.strerror}") from None
    return parse(text, path)


def _platform(c) -> str:
    """GetPlatform (SC:46-76): model_platform, or the deprecated model_type; neither is an error at validate()."""
    if c.model_type:  # MODEL_TYPE_UNSPECIFIED = 0
        if c.model_platform:
            return "\0both"
        return TENSORFLOW if c.model_type == 1 else "\0type"
    return c.model_platform


def validate(entries: list[ModelEntry]) -> None:
    """ValidateModelConfigList (SC:87-123), then each model's platform (GetPlatform, CreateStoragePathRoutes:
    SC:46-76,611-626; checked at load there, before any model here: a bad entry loads nothing)."""
    names = set()
    for e in entries:
        if e.name in names:
            raise ModelConfigError(f"Illegal to list model {e.name} multiple times in config list")
        names.add(e.name)
    for e in entries:  # no --model_config_list_root_dir: every base path must be absolute (or a URI)
        if not (os.path.isabs(e.base_path) or "://" in e.base_path):
            raise ModelConfigError(f"Expected model {e.name} to have an absolute path or URI; got "
                                   f"base_path()={e.base_path}")
    for e in entries:
        if e.platform == "\0both":
            raise ModelConfigError("Illegal setting both ModelServerConfig::model_type (deprecated) and "
                                   f"ModelServerConfig::model_platform, model name is {e.name}")
        if e.platform == "\0type":
            raise ModelConfigError("ModelServerConfig::model_type choice 2 not supported.")
        if not e.platform:
            raise ModelConfigError("Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
                                   f"ModelServerConfig::model_platform, model name is {e.name}")
        if e.platform != TENSORFLOW:
            raise ModelConfigError(f"Model {e.name} requests unsupported platform {e.platform}")


def aspired(entry: ModelEntry, on_disk: list[int]) -> tuple[list[int], int]:
    """The policy (FS:89-198): (candidate versions, newest first; how many of them to serve). `latest` serves the
    N highest that load (a version that fails is skipped, as `serve` always did); `all` and `specific` each
    listed version (FS:89-107, 160-198)."""
    newest_first = sorted(set(on_disk), reverse=True)
    if entry.policy == "all":
        return newest_first, len(newest_first)
    if entry.policy == "specific":
        wanted = [v for v in newest_first if v in set(entry.versions)]
        return wanted, len(wanted)
    return newest_first, entry.num_versions


def missing_specific(entry: ModelEntry, on_disk: list[int]) -> list[int]:
    """`specific` versions not on disk: TF Serving warns of each (FS:185-193)."""
    return sorted(set(entry.versions) - set(on_disk)) if entry.policy == "specific" else []


def resolve_labels(entries: list[ModelEntry], available: dict, current: dict | None,
                   allow_unavailable: bool) -> dict[str, dict[str, int]]:
    """UpdateModelVersionLabelMap (SC:504-567): the new label map {model: {label: version}}, or TF Serving's
    FAILED_PRECONDITION. ``available``: {model: versions AVAILABLE now}; ``current``: the label map in force
    (None before the first config). A label must name an AVAILABLE version, unless allow_unavailable
    (--allow_version_labels_for_unavailable_models) and the label is new or keeps its version (SC:515-527)."""
    labels: dict[str, dict[str, int]] = {}
    for e in entries:
        for label, version in e.labels:
            allowed = False
            if allow_unavailable:
                before = (current or {}).get(e.name, {}).get(label)
                allowed = before is None or before == version
            if not allowed and version not in available.get(e.name, ()):
                raise ModelConfigError(f"Request to assign label to version {version} of model {e.name}, which is "
                                       "not currently available for inference")
            labels.setdefault(e.name, {})[label] = version
    return labels


def version_for_label(labels: dict, model: str, label: str) -> int | None:
    """GetModelVersionForLabel (SC:822-841): None = `Unrecognized servable version label: <label>`."""
    return labels.get(model, {}).get(label)


def to_text(models: list[ModelEntry]) -> str:
    """The ModelServerConfig text proto for these models (protobuf's own printer)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    proto.model_config_list.SetInParent()  # an empty list is a config that unloads everything, not "no config"
    for m in models:
        c = proto.model_config_list.config.add(name=m.name, base_path=m.base_path, model_platform=m.platform)
        if m.policy == "specific":
            c.model_version_policy.specific.versions.extend(m.versions)
        elif m.policy == "all":
            c.model_version_policy.all.SetInParent()
        elif m.num_versions != 1:
            c.model_version_policy.latest.num_versions = m.num_versions
        c.version_labels.update(dict(m.labels))
    return text_format.MessageToString(proto)


def write_model_config(path: str, models: list[ModelEntry]) -> None:
    """Writes the file atomically (a temporary file beside it, then a rename): a server polling it reads the old
    file or the new one, never half of one."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".model-config-", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(to_text(models))
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from a server running as another user
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
