"""Every knob of transferline, in one typed config.

Defaults run offline on this repository's data with the embedded encoder.
A TOML file overrides them (``--config FILE``), and CLI flags override the file
(``--set section.key=value`` for any knob, or the named flags of each command).
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field

from components.encoder import EMBEDDED

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says which knob and why."""


@dataclass
class EncoderConfig:
    # 'embedded' (offline USE-multilingual-v3 port), a local SavedModel path, or a TF-Hub URL,
    # e.g. https://tfhub.dev/google/universal-sentence-encoder-multilingual/3 in production.
    handle: str = EMBEDDED
    # Where the embedded encoder is built ('' = $TRANSFERLINE_CACHE or ~/.cache/transferline).
    cache_dir: str = ""


@dataclass
class PathsConfig:
    # Training data root: CSV files (text,label) under span-N/ folders.
    data_dir: str = os.path.join(REPO_ROOT, "data", "trec")
    # Pipeline root, MLMD database and run reports live here.
    work_dir: str = os.path.join(REPO_ROOT, "work")


@dataclass
class Config:
    pipeline_name: str = "transferline"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


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


def load_config(path: str | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Defaults, then the TOML file at ``path``, then ``section.key=value`` overrides."""
    config = Config()
    if path:
        try:
            with open(path, "rb") as f:
                _apply(config, tomllib.load(f))
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
    return config


def to_toml(config: Config) -> str:
    """The config as TOML (what `transferline config` prints), for a starting file."""
    lines: list[str] = []

    def emit(obj, section):
        scalars = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)
                   if not dataclasses.is_dataclass(getattr(obj, f.name))]
        if section:
            lines.append(f"\n[{section}]")
        for k, v in scalars:
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
