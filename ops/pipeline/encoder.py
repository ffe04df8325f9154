"""`transferline encoder build [--name use-m3|minilm-l6] | check`: build an embedded encoder, check a handle."""
from __future__ import annotations

from components.encoder import DEFAULT_EMBEDDED, EMBEDDED_MODELS
from ops.args import add_config_args, config_from, say


def register(sub) -> None:
    enc = sub.add_parser("encoder", help="the sentence encoder: build the embedded one, check a handle")
    enc_sub = enc.add_subparsers(dest="encoder_command", metavar="ACTION", required=True)
    p = enc_sub.add_parser("build", help="build an embedded encoder's SavedModel (idempotent); prints its path")
    add_config_args(p, work_dir=None)
    p.add_argument("--force", action="store_true", help="rebuild even if a build exists")
    p.add_argument("--name", choices=sorted(EMBEDDED_MODELS), default=DEFAULT_EMBEDDED,
                   help=f"which embedded encoder (default {DEFAULT_EMBEDDED}; the handle embedded:NAME uses it)")
    p.set_defaults(func=build_command)
    p = enc_sub.add_parser("check", help="load an encoder handle and check it embeds strings")
    add_config_args(p, work_dir=None)
    p.set_defaults(func=check_command)


def build_command(args) -> int:
    from components.encoder import main_build

    return main_build(config_from(args).encoder.cache_dir or None, force=args.force, name=args.name)


def check_command(args) -> int:
    from components.encoder import load_encoder

    config = config_from(args)
    encoder = load_encoder(config.encoder.handle, config.encoder.cache_dir or None, log=say)
    import tensorflow as tf

    dim = encoder(tf.constant(["contract probe"])).shape[1]
    print(f"ok: {config.encoder.handle} embeds strings into {dim}-d float32 vectors")
    return 0
