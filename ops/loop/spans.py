"""The spans an operator lands, accepts or withdraws: `transferline add-span FILE`, `accept-span N`, `remove-span N`.

add-span checks a labelled CSV as the next run would, by the DataGate's own functions on the splits the next
run's ExampleGen will make (the data contract, one class, blank or duplicated texts within and across spans and
the test set, leakage into the gate splits, and the drift of the training data as a whole with it:
components/data_gate.py split_problems, drift_problems), then renames it into place as span-N/, whole. A label
the contract does not know is refused unless --allow-new-classes, which also adds it to the schema (backup and
diff). A drift the operator means (--accept REASON, or accept-span later) is recorded in the span folder, which
the DataGate reads, and in MLMD; so the run that follows, and every later one, does not judge that span again.
remove-span moves a span aside (never deletes it), recorded too.
"""
from __future__ import annotations

import csv
import getpass
import json
import os
import shutil
import socket
import time

from components import names
from components.errors import DataRejected, NotFound, UserError
from ops.args import add_config_args, config_from, refuse_repository_write, say
from ops.loop.label_next import HELPER_COLUMNS


def register(sub) -> None:
    p = sub.add_parser("add-span", help="check a labelled CSV as the next run would and land it as the next "
                                        "span-N/ (then `transferline run` trains on it)")
    add_config_args(p, data="data root (span-N/ folders) to add to (paths.data_dir)")
    p.add_argument("file", metavar="FILE", help="CSV with columns text,label (label-next's guess,score are dropped)")
    p.add_argument("--allow-new-classes", action="store_true",
                   help="labels the data contract lacks are new classes: add them to the schema (backup + diff)")
    p.add_argument("--accept", metavar="REASON", help="land it even if it moves the training data beyond the drift "
                                                      "thresholds; the reason is recorded (as accept-span does)")
    p.set_defaults(func=add_span_command)
    p = sub.add_parser("accept-span", help="accept span-N's drift, with a reason (recorded in MLMD): runs no "
                                           "longer judge its drift")
    add_config_args(p, data="data root (span-N/ folders) (paths.data_dir)")
    p.add_argument("span", type=int, metavar="N", help="the span number")
    p.add_argument("--reason", required=True, help="why the change is intended; recorded with who and when")
    p.set_defaults(func=accept_span_command)
    p = sub.add_parser("remove-span", help="withdraw span-N: moved aside to <data>/.removed/ (never deleted), "
                                           "recorded in MLMD")
    add_config_args(p, data="data root (span-N/ folders) (paths.data_dir)")
    p.add_argument("span", type=int, metavar="N", help="the span number")
    p.add_argument("--reason", default="", help="why; recorded with who and when")
    p.set_defaults(func=remove_span_command)


# ---------------------------------------------------------------------------------------- add-span
def add_span_command(args) -> int:
    print(add_span(config_from(args), args.file, log=say, allow_new_classes=args.allow_new_classes,
                   accept=args.accept))
    return 0


def next_span(existing) -> int:
    """The number after the highest span (1 when there is none)."""
    return max(existing, default=0) + 1


def add_span(config, path: str, log=lambda m: None, allow_new_classes: bool = False, accept: str | None = None) -> str:
    """Checks ``path`` as a run would (same checks and messages), then renames it into place as span-N/."""
    from components.csv_checks import with_line_breaks
    from components.data_gate import diagnose_csv_files, drift_problems, problem
    from components.span_folders import span_file_glob
    from components.spans import span_data_dirs, span_dirs
    from pipelines.pipeline import label_names

    if not os.path.isfile(path):
        raise NotFound(f"no such file: {path}")
    if accept is not None and not accept.strip():
        raise UserError("say why: --accept \"...\" is recorded with the span")
    data_dir = config.paths.data_dir
    refuse_repository_write(data_dir, "the data dir")
    number = next_span(span_dirs(data_dir))
    staging = os.path.join(data_dir, f".staging-span-{number}")  # not span-*: no run reads it half-written
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    staged = os.path.join(staging, os.path.basename(path) if path.endswith(".csv") else "labels.csv")
    files = span_file_glob(config.data.file_pattern)
    spans = {**span_data_dirs(data_dir, files), number: staging}  # what the next run reads, the new span staged
    rows, new_classes = [], []
    try:
        problems = _stage(path, staged) or diagnose_csv_files(staging, "*.csv", config.contract.max_text_chars)
        if not problems:
            with open(staged, newline="", encoding="utf-8") as f:
                rows = [(r[names.TEXT], r[names.LABEL]) for r in csv.DictReader(f)]
            unlabelled = [t for t, lab in rows if not lab.strip()]
            if unlabelled:
                problems.append(problem(f"feature '{names.LABEL}'", f"{len(unlabelled)} row(s) have no label; "
                                        "label every row (or delete the rows you cannot label)", unlabelled))
            known = label_names(config.paths.schema_file)
            new_classes = sorted({lab for _, lab in rows if lab.strip()} - set(known))
            if new_classes and not allow_new_classes:
                problems.append(problem(f"feature '{names.LABEL}'", f"new class(es) {', '.join(new_classes)}: not "
                                        f"in the data contract ({config.paths.schema_file}); if they are meant to "
                                        "be there: `transferline add-span FILE --allow-new-classes`",
                                        [t for t, lab in rows if lab in new_classes]))
            problems += _schema_problems(config, rows, known + new_classes)  # new classes: said once, above
            problems += _next_run_problems(config, spans, files)
        if not problems and accept is None:
            problems += drift_problems(data_dir, config.contract.max_label_drift, config.contract.max_length_drift,
                                       files, config.data.train_spans, spans,
                                       accept_hint="`transferline add-span FILE --accept REASON`")
        if problems:
            raise DataRejected(problems)
        if accept is not None:
            _write_acceptance(staging, number, accept)
        os.rename(staging, os.path.join(data_dir, f"span-{number}"))  # atomic: the span appears whole
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    landed = os.path.join(data_dir, f"span-{number}")
    log(f"{len(rows)} labelled row(s) landed as span-{number}; `transferline run` trains on it")
    breaks = with_line_breaks(t for t, _ in rows)
    if breaks:
        log(f"note: {breaks} text(s) hold line breaks (quoted newlines in the CSV): kept as they are")
    if new_classes:
        from ops.pipeline.schema import add_classes

        diff, backup = add_classes(config.paths.schema_file, new_classes)
        log(f"new class(es) {', '.join(new_classes)} added to the data contract {config.paths.schema_file} "
            f"(backup: {backup}):\n{diff}")
    if accept is not None:
        _record(config, "accepted", number, accept)
    return landed


def _stage(source: str, staged: str) -> list[dict]:
    """Copies the file, without label-next's helper columns; a file that cannot be read: diagnosed as is."""
    from components.data_gate import diagnose_csv_files

    try:
        with open(source, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            drop = [c for c in HELPER_COLUMNS if c in header]
            if not drop:
                shutil.copyfile(source, staged)
                return []
            rows = [{k: v for k, v in r.items() if k not in drop} for r in reader]
    except (UnicodeDecodeError, csv.Error):
        return diagnose_csv_files(os.path.dirname(os.path.abspath(source)), os.path.basename(source))
    with open(staged, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, [c for c in header if c not in drop])
        writer.writeheader()
        writer.writerows(rows)
    return []


def _schema_problems(config, rows, classes: list[str]) -> list[dict]:
    """TFDV against the checked-in schema (its label domain as ``classes``), worded as the DataGate words
    ExampleValidator's anomalies."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    from components.data_gate import problem

    schema = tfdv.load_schema_text(config.paths.schema_file)
    label = next(d for d in schema.string_domain if d.name == names.LABEL)
    del label.value[:]
    label.value.extend(classes)
    frame = pd.DataFrame({names.TEXT: [t or None for t, _ in rows], names.LABEL: [lab or None for _, lab in rows]})
    anomalies = tfdv.validate_statistics(tfdv.generate_statistics_from_dataframe(frame), schema)
    return [problem(f"feature '{feature}'", f"{reason.short_description}: {reason.description}")
            for feature, info in sorted(anomalies.anomaly_info.items()) for reason in info.reason]


def _next_run_problems(config, spans: dict[int, str], files: str) -> list[dict]:
    """What the next run's DataGate will find in its splits beyond the schema: one class, duplicates within
    and across the spans and the test set, leakage into the gate splits. The splits are made as the run's
    ExampleGen makes them (components/spans.planned_splits), and judged by the DataGate's own function."""
    from components.data_gate import split_problems
    from components.spans import planned_splits

    rows = planned_splits(config.paths.data_dir, spans, config.data.train_spans, files, config.paths.test_data_dir,
                          config.data.train_buckets, config.data.eval_buckets, config.data.min_eval_rows)
    return split_problems(rows, config.contract.max_text_chars, config.contract.max_duplicate_fraction,
                          config.contract.max_leakage_fraction)[0]


# ---------------------------------------------------------------------------------------- accept, remove
def _span_folder(config, number: int) -> str:
    refuse_repository_write(config.paths.data_dir, "the data dir")
    folder = os.path.join(config.paths.data_dir, f"span-{number}")
    if not os.path.isdir(folder):
        from components.spans import span_dirs

        have = sorted(span_dirs(config.paths.data_dir))
        raise NotFound(f"no span-{number}/ under {config.paths.data_dir} (spans: "
                       f"{', '.join(map(str, have)) or 'none'})")
    return folder


def _who(reason: str) -> dict:
    return {"user": getpass.getuser(), "host": socket.gethostname(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "reason": reason}


def _write_acceptance(folder: str, number: int, reason: str) -> None:
    with open(os.path.join(folder, names.ACCEPTED_FILE), "w", encoding="utf-8") as f:
        json.dump({"span": number, **_who(reason)}, f)


def _record(config, what: str, number: int, reason: str, **extra) -> int:
    from pipelines.run_history import SPAN_ACCEPTED_EXECUTION_TYPE, SPAN_REMOVED_EXECUTION_TYPE, record_event

    os.makedirs(config.paths.work_dir, exist_ok=True)
    kind = SPAN_ACCEPTED_EXECUTION_TYPE if what == "accepted" else SPAN_REMOVED_EXECUTION_TYPE
    from pipelines.mlmd_store import connect

    return record_event(connect(config.metadata_path, writable=True), config.pipeline_name, kind,
                        {"span": number, "data_dir": config.paths.data_dir, **_who(reason), **extra})


def accept_span_command(args) -> int:
    config = config_from(args)
    if not args.reason.strip():
        raise UserError("say why: --reason \"...\" is recorded with the span")
    folder = _span_folder(config, args.span)
    _write_acceptance(folder, args.span, args.reason)
    execution = _record(config, "accepted", args.span, args.reason)
    say(f"span-{args.span} accepted (MLMD execution {execution}): runs no longer judge its drift")
    print(folder)
    return 0


def remove_span_command(args) -> int:
    from pipelines.work_lock import exclusive

    config = config_from(args)
    folder = _span_folder(config, args.span)
    aside = os.path.join(config.paths.data_dir, names.REMOVED_SPANS_DIR, f"span-{args.span}-{int(time.time())}")
    with exclusive(config.paths.work_dir):  # not while a run reads the spans
        os.makedirs(os.path.dirname(aside), exist_ok=True)
        os.rename(folder, aside)
        execution = _record(config, "removed", args.span, args.reason, moved_to=aside)
    say(f"span-{args.span} withdrawn (MLMD execution {execution}): moved to {aside}; the next run trains without it")
    print(aside)
    return 0
