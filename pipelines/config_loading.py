"""Reading the config: defaults, then a TOML file (relative paths against its folder), then
``section.key=value`` overrides; every value checked against its knob's type and rules (one line naming
the knob when it is wrong). The knobs themselves: pipelines/config.py."""
from __future__ import annotations

import dataclasses
import os
import typing

try:
    import tomllib
except ImportError:  # Python 3.10: the TFX 1.16 image (kubeflow/Dockerfile)
    import tomli as tomllib

from components.errors import ConfigError
from components.modes import TRAINER_MODES
from pipelines import beam_args
from pipelines.config import ACTIVE_STRATEGIES, ROLLOUT_MODES, Config


def _coerce(value: typing.Any, typ: typing.Any, name: str) -> typing.Any:
    """Checks/converts a TOML or CLI value to the field's declared type."""
    origin = typing.get_origin(typ)
    if origin is list:
        (item,) = typing.get_args(typ)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        return [_coerce(v, item, name) for v in value]
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if typ in (int, float):
        try:
            if isinstance(value, bool):
                raise ValueError
            return typ(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected {typ.__name__}, got {value!r}") from None
    if typ is str:
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{name}: unsupported type {typ}")


def _apply(obj: typing.Any, values: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    known = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"unknown setting '{name}'; known here: {', '.join(sorted(known))}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"'{name}' is a section; give it as [{name}] in the file")
            _apply(current, value, f"{name}.")
        else:
            setattr(obj, key, _coerce(value, hints[key], name))


def _path_knobs(config: Config) -> dict[str, list[str]]:
    """section -> its knobs that name local files or folders (marked with config.path())."""
    sections = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return {name: [f.name for f in dataclasses.fields(value) if f.metadata.get("path")]
            for name, value in sections.items() if dataclasses.is_dataclass(value)}


def _resolve_paths(values: dict, base_dir: str) -> dict:
    """The file's values with its relative local paths (knobs marked path() in pipelines/config.py) made
    absolute against ``base_dir``: a config file's paths are relative to the file."""
    for section, keys in _path_knobs(Config()).items():
        for key in keys:
            value = values.get(section, {}).get(key) if isinstance(values.get(section), dict) else None
            if isinstance(value, str) and value and "://" not in value and not os.path.isabs(value):
                values[section][key] = os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))
    return values


def load_config(path: str | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Defaults, then the TOML file at ``path`` (relative paths in it: relative to the file), then
    ``section.key=value`` overrides."""
    config = Config()
    if path:
        try:
            with open(path, "rb") as f:
                _apply(config, _resolve_paths(tomllib.load(f), os.path.dirname(os.path.abspath(path))))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override '{item}' is not of the form section.key=value")
        *sections, leaf = key.strip().split(".")
        nested: dict = {leaf: value}
        for s in reversed(sections):
            nested = {s: nested}
        _apply(config, nested)
    validate(config)
    return config


def validate(config: Config) -> None:
    """Value checks the types alone cannot express; raises ConfigError naming the knob."""
    checks = [
        (config.beam.direct_running_mode in beam_args.DIRECT_RUNNING_MODES,
         f"beam.direct_running_mode must be one of {', '.join(beam_args.DIRECT_RUNNING_MODES)}"),
        (config.beam.auto_in_memory_max_rows >= 0, "beam.auto_in_memory_max_rows must be >= 0"),
        (config.beam.direct_num_workers >= 0, "beam.direct_num_workers must be >= 0 (0 = one per CPU)"),
        (config.data.train_buckets > 0 and config.data.eval_buckets > 0,
         "data.train_buckets and data.eval_buckets must be > 0"),
        (config.data.min_eval_rows >= 0, "data.min_eval_rows must be >= 0 (0 = no floor)"),
        (config.data.train_spans >= 0, "data.train_spans must be >= 0 (0 = all spans)"),
        (config.data.file_pattern.startswith("span-*/") and len(config.data.file_pattern) > 7,
         "data.file_pattern must be span-*/<files>, e.g. span-*/*.csv (data lands in span-N/ folders)"),
        (0.0 <= config.gate.min_accuracy <= 1.0, "gate.min_accuracy must be within [0, 1] (0 = off)"),
        (-1.0 <= config.gate.reference_margin <= 1.0, "gate.reference_margin must be within [-1, 1]"),
        (config.gate.max_accuracy_drop >= 0.0, "gate.max_accuracy_drop must be >= 0"),
        (0.0 <= config.trainer.dropout < 1.0, "trainer.dropout must be within [0, 1)"),
        (min(config.trainer.hidden_units, config.trainer.batch_size, config.trainer.max_epochs) > 0,
         "trainer.hidden_units, batch_size and max_epochs must be > 0"),
        (config.trainer.learning_rate > 0, "trainer.learning_rate must be > 0"),
        (config.trainer.mode in TRAINER_MODES, f"trainer.mode must be one of {', '.join(TRAINER_MODES)}"),
        (config.trainer.wide_l2 >= 0, "trainer.wide_l2 must be >= 0"),
        (config.trainer.fine_tune_learning_rate > 0, "trainer.fine_tune_learning_rate must be > 0"),
        (min(config.trainer.fine_tune_batch_size, config.trainer.fine_tune_max_epochs) > 0,
         "trainer.fine_tune_batch_size and fine_tune_max_epochs must be > 0"),
        (config.trainer.fine_tune_patience >= 0 and config.trainer.early_stopping_patience >= 0,
         "trainer.fine_tune_patience and early_stopping_patience must be >= 0"),
        (min(config.trainer.auto_fine_tune_min_examples, config.trainer.auto_wide_deep_min_examples) >= 0,
         "trainer.auto_fine_tune_min_examples and auto_wide_deep_min_examples must be >= 0"),
        (config.transform.ngram_max >= 1 and config.transform.ngram_vocab_size >= 1,
         "transform.ngram_max and transform.ngram_vocab_size must be >= 1"),
        (config.contract.max_text_chars > 0, "contract.max_text_chars must be > 0"),
        (0.0 <= config.contract.max_duplicate_fraction <= 1.0, "contract.max_duplicate_fraction must be within [0, 1]"),
        (0.0 <= config.contract.max_leakage_fraction <= 1.0, "contract.max_leakage_fraction must be within [0, 1]"),
        (config.contract.max_label_drift >= 0 and config.contract.max_length_drift >= 0,
         "contract.max_label_drift and max_length_drift must be >= 0 (0 = off)"),
        (0 <= config.serve.port < 65536, "serve.port must be within 0..65535 (0 = any free port)"),
        (config.serve.poll_seconds > 0 and config.serve.max_body_bytes > 0,
         "serve.poll_seconds and serve.max_body_bytes must be > 0"),
        (config.serve.max_instances > 0 and config.serve.predict_chunk > 0,
         "serve.max_instances and serve.predict_chunk must be > 0"),
        (bool(config.study.sizes) and all(n >= 0 for n in config.study.sizes),
         "study.sizes must be a non-empty list of sizes >= 0 (0 = all the training data)"),
        (config.study.seeds > 0, "study.seeds must be > 0"),
        (0.0 < config.request_log.sample_rate <= 1.0, "request_log.sample_rate must be within (0, 1]"),
        (min(config.request_log.max_file_bytes, config.request_log.max_files, config.request_log.queue_requests) > 0,
         "request_log.max_file_bytes, max_files and queue_requests must be > 0"),
        (config.monitor.window_hours > 0, "monitor.window_hours must be > 0"),
        (0 < config.monitor.min_requests <= 200, "monitor.min_requests must be within 1..200"),
        (0.0 <= config.monitor.low_confidence <= 1.0 and config.monitor.long_text_chars > 0,
         "monitor.low_confidence must be within [0, 1] and monitor.long_text_chars > 0"),
        (0.0 < config.monitor.topic_quantile < 0.5, "monitor.topic_quantile must be within (0, 0.5)"),
        (0.0 <= config.monitor.max_off_topic_increase <= 1.0, "monitor.max_off_topic_increase must be within [0, 1]"),
        (1 <= config.monitor.topic_neighbours < config.monitor.topic_sample,
         "monitor.topic_neighbours must be >= 1 and below monitor.topic_sample"),
        (config.active.strategy in ACTIVE_STRATEGIES,
         f"active.strategy must be one of {', '.join(ACTIVE_STRATEGIES)}"),
        (0.0 < config.active.near_duplicate <= 1.0, "active.near_duplicate must be within (0, 1] (1 = exact only)"),
        (min(config.active.pool_factor, config.active.start, config.active.step, config.active.rounds,
             config.active.seeds) > 0, "active.pool_factor, start, step, rounds and seeds must be > 0"),
        (config.trainer.eval_every_examples >= 0 and config.trainer.cache_in_memory_max_mb >= 0,
         "trainer.eval_every_examples and trainer.cache_in_memory_max_mb must be >= 0"),
        (config.rollout.mode in ROLLOUT_MODES, f"rollout.mode must be one of {', '.join(ROLLOUT_MODES)}"),
        (min(config.rollout.shadow_queue, config.rollout.min_requests, config.rollout.min_labelled) > 0,
         "rollout.shadow_queue, min_requests and min_labelled must be > 0"),
        (0.0 <= config.rollout.min_agreement <= 1.0 and 0.0 <= config.rollout.max_class_shift <= 1.0,
         "rollout.min_agreement and rollout.max_class_shift must be within [0, 1]"),
        (config.rollout.max_latency_ratio > 0 and config.rollout.promote_after_hours >= 0,
         "rollout.max_latency_ratio must be > 0 and rollout.promote_after_hours >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def to_toml(config: Config, comments: bool = False) -> str:
    """The config as TOML (what `transferline config` prints), for a starting file; ``comments``: each knob's
    comment from pipelines/config.py above it, as in docs/configuration.md."""
    import textwrap

    from pipelines.config_docs import knob_comments

    lines: list[str] = []

    def emit(obj, section):
        scalars = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)
                   if not dataclasses.is_dataclass(getattr(obj, f.name))]
        if section:
            lines.append(f"\n[{section}]")
        said = knob_comments(type(obj)) if comments else {}
        for k, v in scalars:
            if said.get(k):
                lines.extend(textwrap.wrap(said[k], 100, initial_indent="# ", subsequent_indent="# "))
            if isinstance(v, bool):
                lines.append(f"{k} = {str(v).lower()}")
            elif isinstance(v, (int, float)):
                lines.append(f"{k} = {v}")
            elif isinstance(v, list):
                lines.append(f"{k} = [{', '.join(repr(x) if not isinstance(x, str) else _q(x) for x in v)}]")
            else:
                lines.append(f"{k} = {_q(v)}")
        for f in dataclasses.fields(obj):
            sub = getattr(obj, f.name)
            if dataclasses.is_dataclass(sub):
                emit(sub, f"{section}.{f.name}" if section else f.name)

    emit(config, "")
    return "\n".join(lines).lstrip() + "\n"


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
