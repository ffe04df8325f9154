"""The `transferline` command line. Thin: each command lives in its own module, which registers its flags.

A UserError (components/errors.py) exits with its code and one paragraph, never a traceback; anything
else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

# tf.keras must be Keras 2 (tf_keras) before TensorFlow is first imported: TF-Hub layers and
# TF Serving-loadable SavedModels need it (see README, "Install").
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Google client libraries warn about Python 3.11's end of life in every Beam worker process.
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

# Only light modules at import time: TFX takes ~10 s to import, and `--help` should not wait for it.
from components.errors import Busy, DataRejected, KubeflowError, Outcome, StorageError, UserError  # noqa: E402
from ops.kubeflow import check as kubeflow_check, commands as kubeflow_commands  # noqa: E402
from ops.loop import canary, label_next, monitor, spans  # noqa: E402
from ops.loop.verdicts import Drift, NotEnoughTraffic  # noqa: E402
from ops.pipeline import (encoder, evaluate, init, ledger, predict, promote, rollback, run, schema,  # noqa: E402
                          show_config)
from ops.report import page as report  # noqa: E402
from ops.serving import serve  # noqa: E402
from ops.study import command as study  # noqa: E402

COMMANDS = (init, run, rollback, promote, ledger, predict, evaluate, show_config, encoder, schema, report, serve,
            monitor, canary, label_next, spans, study, kubeflow_commands, kubeflow_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transferline",
        description="Text classification by transfer learning, as a TFX pipeline: "
                    "Universal Sentence Encoder embeddings + a small Keras head.",
        epilog=f"exit codes: 0 done; {UserError.exit_code} a usage, config, input or encoder-handle error, or a "
               "path that cannot be written (disk full, read-only); "
               f"{DataRejected.exit_code} the data was rejected (nothing trained or pushed); "
               f"{KubeflowError.exit_code} Kubeflow Pipelines unreachable or refused the request; "
               f"{Busy.exit_code} another run or rollback holds the work dir (nothing done); "
               f"{Drift.exit_code} monitor: drift, canary: fails; {NotEnoughTraffic.exit_code} monitor, canary: not "
               "enough traffic to judge.")
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="print transferline's version and the versions of the stack it runs on")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


class _Version(argparse.Action):
    """`--version`: one unwrapped line (argparse's own action wraps it), from the installed packages' metadata
    (no TensorFlow import)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version())
        parser.exit()


def _version() -> str:
    from importlib import metadata

    def of(package):
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    stack = ", ".join(f"{p} {of(p)}" for p in ("tfx", "tensorflow", "tensorflow-text", "apache-beam", "kfp"))
    return f"transferline {of('transferline')} ({stack}; Python {sys.version.split()[0]})"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Outcome as e:  # a result to act on, not a mistake
        print(f"transferline: {e}", file=sys.stderr)
        return e.exit_code
    except UserError as e:
        print(f"transferline: error: {e.shown()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("transferline: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a full disk or a read-only file system is the machine, not a bug: one line
        storage = StorageError.from_exception(e)
        if storage is None:
            raise
        print(f"transferline: error: {storage}", file=sys.stderr)
        return storage.exit_code


if __name__ == "__main__":
    sys.exit(main())
