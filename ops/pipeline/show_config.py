"""`transferline config`: the effective config as TOML (defaults, the config file, then --set), a starting file,
each knob under its comment from pipelines/config.py."""
from __future__ import annotations

from ops.args import add_config_args, config_from


def register(sub) -> None:
    p = sub.add_parser("config", help="print the effective config as TOML, each knob with its comment "
                                      "(a starting config file)")
    add_config_args(p, work_dir=None)
    p.add_argument("--bare", action="store_true", help="the TOML alone, without the comments")
    p.set_defaults(func=command)


def command(args) -> int:
    from pipelines.config_loading import to_toml

    print(to_toml(config_from(args), comments=not args.bare), end="")
    return 0
