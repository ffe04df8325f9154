"""Flags every command shares, declared once, and the config they add up to."""
from __future__ import annotations

import argparse
import os
import sys

from components.names import PROJECT_FILE
from pipelines.config import Config
from pipelines.config_loading import load_config


def say(message: str) -> None:
    """A progress or status line: stderr, so stdout holds only the command's result."""
    print(f"[transferline] {message}", file=sys.stderr, flush=True)


def add_config_args(p: argparse.ArgumentParser, *, work_dir: str | None = "work dir of the runs (MLMD, "
                    "reports; its serving/ holds the models)", data: str | None = None) -> None:
    """--config, --set, --encoder-handle, --cache-dir; --work-dir and --data where the command uses them."""
    p.add_argument("--config", metavar="FILE", help=f"TOML config file (default: ./{PROJECT_FILE} if there is "
                   "one, as `transferline init` writes; see `transferline config`)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any knob, e.g. --set encoder.handle=/path/to/savedmodel (repeatable)")
    p.add_argument("--encoder-handle", metavar="HANDLE",
                   help="'embedded' (default, offline), a SavedModel dir, or a TF-Hub URL")
    p.add_argument("--cache-dir", metavar="DIR", help="where the embedded encoder is built")
    if work_dir:
        p.add_argument("--work-dir", metavar="DIR", help=work_dir)
    if data:
        p.add_argument("--data", metavar="DIR", help=data)


def config_from(args, *extra_overrides: str) -> Config:
    """Defaults < --config FILE < --set and the named flags (each a knob of pipelines/config.py)."""
    overrides = list(args.overrides)
    for flag, knob, path in (("encoder_handle", "encoder.handle", False), ("cache_dir", "encoder.cache_dir", False),
                             ("data", "paths.data_dir", True), ("work_dir", "paths.work_dir", True)):
        value = getattr(args, flag, None)
        if value:
            overrides.append(f"{knob}={os.path.abspath(value) if path else value}")
    path = args.config or (PROJECT_FILE if os.path.isfile(PROJECT_FILE) else None)
    if path and not args.config:
        say(f"config: ./{PROJECT_FILE}")
    config = load_config(path, overrides + list(extra_overrides))
    config.beam.extra_args += getattr(args, "beam_args", [])
    return config


def refuse_repository_write(path: str, what: str) -> None:
    """No command writes into the repository's own files (its vendored data and schema): a project of the
    user's own (`transferline init`) holds data and a schema that commands may change."""
    from components.errors import UserError
    from pipelines.config import REPO_ROOT

    path, ours = os.path.realpath(path), os.path.realpath(REPO_ROOT)
    if path.startswith(ours + os.sep) and not path.startswith(os.path.join(ours, "work") + os.sep):
        raise UserError(f"{what} {os.path.relpath(path, ours)} is part of the transferline repository, which no "
                        "command changes; start a project of your own with `transferline init DIR --train FILE` "
                        "(or pass --config DIR/transferline.toml)")
