"""`transferline study`: its subcommands, `labels` (ops/study/labels.py) and `active` (ops/study/active.py)."""
from __future__ import annotations

from ops.study import active, labels


def register(sub) -> None:
    study_parser = sub.add_parser("study", help="measurements: label efficiency, active learning")
    study_sub = study_parser.add_subparsers(dest="study_command", metavar="STUDY", required=True)
    labels.register(study_sub)
    active.register(study_sub)
