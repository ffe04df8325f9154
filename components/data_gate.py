"""The data contract's gate: bad data stops the run before Transform, in words a data owner reads.

TFX's ExampleValidator only reports anomalies. DataGate reads its report (TFDV
anomalies against the checked-in schema) and adds what a schema cannot say:
blank or over-long texts, duplicated rows en masse, no rows at all, drift
between the newest data span and the one before (TFDV drift comparators), and
leakage: gate rows (eval and test splits) whose text is also a training text,
above contract.max_leakage_fraction (below it, the count is passed on for the
summary). Unknown labels are shown quoted, with file and line. Any
problem raises DataRejected: the run stops there under every runner, nothing is
trained or pushed, and MLMD records the failed DataGate execution.

diagnose_csv_files names the file and the problem for ingest errors that make
CsvExampleGen fail deep inside Beam (non-UTF-8 bytes, ...) or read no rows.
"""
import collections
import csv
import io
import os
from typing import TypedDict

from tfx import v1 as tfx
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts

from components import names
from components.csv_checks import (diagnose_bytes, duplicate_columns, leakage, leakage_problem, listed,
                                   locate_values, one_class_problem, problem, unknown_label_problem)
from components.errors import DataRejected
from components.span_folders import span_file_glob
from components.spans import span_data_dirs, split_rows

# ---------------------------------------------------------------------------------------- CSV files
def _read(path: str) -> bytes:
    with fileio.open(path, "rb") as f:
        return f.read()


def diagnose_csv_files(data_dir: str, pattern: str, max_chars: int | None = None,
                       columns=names.COLUMNS) -> list[dict]:
    """Problems with the CSV files under data_dir/pattern, each naming the file (empty list: none)."""
    files = sorted(fileio.glob(os.path.join(data_dir, pattern)))
    if not files:
        return [problem(data_dir, f"no files match '{pattern}' (expected CSV files such as span-1/data.csv)")]
    found = []
    for path in files:
        try:
            raw = _read(path)
        except Exception as e:  # permissions, a directory, a broken link, ...
            found.append(problem(path, f"cannot be read: {e}"))
            continue
        found += diagnose_bytes(path, raw, columns, max_chars)
    return found


def rejection_for(error: Exception, data_dir: str, pattern: str, test_data_dir: str,
                  max_chars: int) -> DataRejected | None:
    """A failure deep inside TFX/Beam caused by the user's CSV files, as DataRejected naming them; else None."""
    rejected = DataRejected.from_message(str(error))
    if rejected:
        return rejected
    try:
        problems = diagnose_csv_files(data_dir, pattern, max_chars)
        if test_data_dir:
            problems += diagnose_csv_files(test_data_dir, "*.csv", max_chars)
    except Exception:  # the diagnosis must never hide the original error
        return None
    return DataRejected(problems) if problems else None


def _files_without_rows(data_dir: str, pattern: str) -> list[dict]:
    """Files that are empty, hold only a header, or name a column twice (TFX's reader keeps the last one
    silently). Cheap: reads at most two lines of each file."""
    found = []
    for path in sorted(fileio.glob(os.path.join(data_dir, pattern))):
        with fileio.open(path, "rb") as f:
            lines = [f.readline() for _ in range(2)]
        twice = duplicate_columns(next(csv.reader([lines[0].decode("utf-8", "replace")]), []))
        if not lines[0].strip():
            found.append(problem(path, "is empty: a new file must hold a header line and rows"))
        elif twice:
            found.append(problem(path, f"has column(s) [{listed(twice)}] more than once: which one is meant is "
                                       f"not knowable; expected exactly '{','.join(names.COLUMNS)}'"))
        elif not lines[1].strip():
            found.append(problem(path, "has a header but no rows"))
    return found


# ----------------------------------------------------------------------------------- TFDV artifacts
def _anomaly_problems(anomalies) -> list[dict]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found = collections.defaultdict(list)  # (where, what) -> splits
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        path = os.path.join(artifact_utils.get_split_uri([anomalies], split), "SchemaDiff.pb")
        if not fileio.exists(path):
            continue
        report = anomalies_pb2.Anomalies()
        with fileio.open(path, "rb") as f:
            report.ParseFromString(f.read())
        for feature, info in sorted(report.anomaly_info.items()):
            for reason in info.reason:
                # repr: a name with an invisible character (a BOM) shows it escaped, '\ufefftext'.
                found[(f"feature {feature!r}", f"{reason.short_description}: {reason.description}")].append(split)
        if report.HasField("dataset_anomaly_info"):
            for reason in report.dataset_anomaly_info.reason:
                found[("dataset", f"{reason.short_description}: {reason.description}")].append(split)
    return [problem(f"{where} ({', '.join(splits)} split{'s' if len(splits) > 1 else ''})", what)
            for (where, what), splits in found.items()]


def _example_counts(statistics) -> dict[str, int]:
    from tensorflow_metadata.proto.v0 import statistics_pb2

    counts = {}
    for split in artifact_utils.decode_split_names(statistics.split_names):
        path = os.path.join(artifact_utils.get_split_uri([statistics], split), "FeatureStats.pb")
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        with fileio.open(path, "rb") as f:
            stats.ParseFromString(f.read())
        counts[split] = sum(d.num_examples for d in stats.datasets)
    return counts


def _texts(examples) -> dict[str, list[tuple[str, str]]]:
    """split -> (text, label) of every example in it (undecodable bytes replaced)."""
    return {split: split_rows(examples, split) for split in artifact_utils.decode_split_names(examples.split_names)}


def _allowed_labels(schema) -> list[str]:
    """The label's string domain in the schema ImportSchemaGen imported."""
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils

    parsed = io_utils.parse_pbtxt_file(os.path.join(schema.uri, "schema.pbtxt"), schema_pb2.Schema())
    feature = next(f for f in parsed.feature if f.name == names.LABEL)
    return list(next(d for d in parsed.string_domain if d.name == (feature.domain or names.LABEL)).value)


def _quote_unknown_labels(found: list[dict], rows: dict, allowed: list[str], files: list[str]) -> list[dict]:
    """TFDV's unexpected-label anomalies, rewritten with each value quoted and its file and line."""
    prefix = f"feature '{names.LABEL}' ("
    if not any(p["where"].startswith(prefix) and p["problem"].startswith("Unexpected string values") for p in found):
        return found
    places = None
    out = []
    for p in found:
        if p["where"].startswith(prefix) and p["problem"].startswith("Unexpected string values"):
            splits = [s for s in rows if s in p["where"][len(prefix):]] or list(rows)
            counts = collections.Counter(label for s in splits for _, label in rows[s] if label not in allowed)
            if places is None:
                places = locate_values({f: _read(f) for f in files}, names.LABEL, counts)
            p = unknown_label_problem(p["where"], counts, allowed, places) if counts else p
        out.append(p)
    return out


def split_problems(rows: dict[str, list[tuple[str, str]]], max_chars: int, max_duplicate_fraction: float,
                   max_leakage_fraction: float) -> tuple[list[dict], dict[str, list[str]]]:
    """(problems, leaked gate texts per split) of a run's rows, split -> (text, label): fewer than two classes
    to train on, leakage into the gate splits, and text_problems over every row. The DataGate calls it on the
    ExampleGen's splits; add-span on the splits the next run will make (components/spans.planned_splits)."""
    gate = {s: [t for t, _ in r] for s, r in rows.items() if s in names.gate_splits()}
    leaked = leakage((t for t, _ in rows.get(names.TRAIN_SPLIT, [])), gate)
    found = [p for p in [one_class_problem(rows.get(names.TRAIN_SPLIT, [])),
                         leakage_problem(leaked, sum(map(len, gate.values())), max_leakage_fraction)] if p]
    return found + text_problems([r for split in rows.values() for r in split], max_chars,
                                 max_duplicate_fraction), leaked


def text_problems(rows, max_chars: int, max_duplicate_fraction: float) -> list[dict]:
    found = []
    blank = [t for t, _ in rows if t and not t.strip()]
    if blank:
        found.append(problem(f"feature '{names.TEXT}'", f"{len(blank)} text(s) are only whitespace", blank))
    nul = [t for t, _ in rows if "\x00" in t]
    if nul:  # refused: invisible in every viewer; a binary file or a UTF-16 export (docs/own-data.md)
        found.append(problem(f"feature '{names.TEXT}'", f"{len(nul)} text(s) hold a NUL byte", nul))
    long = [t for t, _ in rows if len(t) > max_chars]
    if long:
        found.append(problem(f"feature '{names.TEXT}'", f"{len(long)} text(s) are longer than "
                                                          f"{max_chars:,} characters (contract.max_text_chars)", long))
    counts = collections.Counter(rows)
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    if rows and duplicates / len(rows) > max_duplicate_fraction:
        top = [f"{t} ({c}×)" for (t, _), c in counts.most_common(3) if c > 1]
        found.append(problem("dataset", f"{duplicates} of {len(rows)} rows ({duplicates / len(rows):.0%}) "
                                        f"repeat another row exactly; more than "
                                        f"{max_duplicate_fraction:.0%} (contract.max_duplicate_fraction)", top))
    return found


# ---------------------------------------------------------------------------------- drift of the whole
def _span_rows(folder: str, files: str) -> list[tuple[str, int]]:
    """(label, text length) of every row of a span folder's files."""
    rows = []
    for path in sorted(fileio.glob(os.path.join(folder, files))):
        with fileio.open(path, "rb") as f:
            rows += [(row.get(names.LABEL) or "", len(row.get(names.TEXT) or ""))
                     for row in csv.DictReader(io.StringIO(f.read().decode("utf-8-sig", "replace")))]
    return rows


def _rows_statistics(rows: list[tuple[str, int]]):
    """TFDV statistics of the label and the text length over the given rows."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    frame = pd.DataFrame({names.LABEL: [label for label, _ in rows], "text_length": [n for _, n in rows]})
    return tfdv.generate_statistics_from_dataframe(frame)


def acceptance(span_folder: str) -> dict | None:
    """The recorded acceptance of a span (`transferline accept-span`, or add-span --accept): who, when, why."""
    import json

    path = os.path.join(span_folder, names.ACCEPTED_FILE)
    if not fileio.exists(path):
        return None
    with fileio.open(path, "r") as f:
        return json.loads(f.read())


def drift_problems(data_dir: str, label_threshold: float, length_threshold: float, files: str = "*.csv",
                   window: int = 0, spans: dict[int, str] | None = None, accept_hint: str = "") -> list[dict]:
    """TFDV drift of the training data as a whole: the training data with the newest span (the spans a run
    reads: the newest `window`, 0 = all) against the training data without it, row-weighted. A small span (a
    20-row active-learning batch, a few rows of a newly adopted class) moves the whole little and passes;
    a large one-sided export is still caught. A span with a recorded acceptance is not judged again.
    ``spans``: span number -> folder (default: the span folders with data under data_dir); ``accept_hint``: how
    to accept the change, in words (default: `transferline accept-span N`)."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

    spans = spans if spans is not None else span_data_dirs(data_dir, files)
    numbers = sorted(spans)
    if len(numbers) < 2 or not (label_threshold or length_threshold):
        return []
    newest = numbers[-1]
    if acceptance(spans[newest]):
        return []
    after = numbers[-window:] if window else numbers
    before = numbers[:-1][-window:] if window else numbers[:-1]
    schema = schema_pb2.Schema()
    label = schema.feature.add(name=names.LABEL, type=schema_pb2.BYTES)
    if label_threshold:
        label.drift_comparator.infinity_norm.threshold = label_threshold
    length = schema.feature.add(name="text_length", type=schema_pb2.INT)
    if length_threshold:
        length.drift_comparator.jensen_shannon_divergence.threshold = length_threshold
    rows = {n: _span_rows(spans[n], files) for n in after + before}  # a span in both is read once
    anomalies = tfdv.validate_statistics(_rows_statistics([r for n in after for r in rows[n]]), schema,
                                         previous_statistics=_rows_statistics([r for n in before for r in rows[n]]))
    accept_hint = accept_hint or f"`transferline accept-span {newest} --reason ...`"
    found = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        comparators = (r for r in info.reason
                       if anomalies_pb2.AnomalyInfo.Type.Name(r.type).startswith("COMPARATOR_"))
        for reason in comparators:
            knob = "contract.max_label_drift" if feature == names.LABEL else "contract.max_length_drift"
            found.append(problem(
                f"the training data with span-{newest} vs without it ({_span_list(before)}), '{feature}'",
                f"{reason.description} ({knob}; if the change is intended: {accept_hint}, or "
                f"`transferline remove-span {newest}`)"))
    return found


def _span_list(numbers: list[int]) -> str:
    return "span " + ", ".join(map(str, numbers)) if len(numbers) == 1 else "spans " + ", ".join(map(str, numbers))


@component
def DataGate(
        statistics: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleStatistics],
        anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
        examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
        schema: tfx.dsl.components.InputArtifact[standard_artifacts.Schema],
        data_dir: tfx.dsl.components.Parameter[str],
        file_pattern: tfx.dsl.components.Parameter[str],
        test_data_dir: tfx.dsl.components.Parameter[str],
        max_text_chars: tfx.dsl.components.Parameter[int],
        max_duplicate_fraction: tfx.dsl.components.Parameter[float],
        max_label_drift: tfx.dsl.components.Parameter[float],
        max_length_drift: tfx.dsl.components.Parameter[float],
        max_leakage_fraction: tfx.dsl.components.Parameter[float],
        train_spans: tfx.dsl.components.Parameter[int] = 0,
) -> TypedDict("GateOutput", {"rows": int, "gate_rows": int, "leaked_rows": int, "eval_rows": int}):
    """Halts the run (DataRejected) when the data breaks the contract; else passes the row counts on:
    all rows, the gate's (eval + test splits), and how many gate rows are also training texts."""
    test_pattern = span_file_glob(file_pattern)
    counts = _example_counts(statistics)
    if not sum(counts.values()):
        raise DataRejected(diagnose_csv_files(data_dir, file_pattern, max_text_chars) or [
            problem(data_dir, f"no data rows in the files matching '{file_pattern}'")])
    empty = _files_without_rows(data_dir, file_pattern) + (
        _files_without_rows(test_data_dir, test_pattern) if test_data_dir else [])
    if empty:
        raise DataRejected(empty)
    rows = _texts(examples)
    files = sorted(fileio.glob(os.path.join(data_dir, file_pattern)))
    if test_data_dir:
        files += sorted(fileio.glob(os.path.join(test_data_dir, test_pattern)))
    found = _quote_unknown_labels(_anomaly_problems(anomalies), rows, _allowed_labels(schema), files)
    if any("Column dropped" in p["problem"] or "New column" in p["problem"] for p in found):
        # Broken columns: name the file and the cause (a wrong delimiter, a BOM) before TFDV's view of it.
        raise DataRejected(diagnose_csv_files(data_dir, file_pattern, max_text_chars)
                           + (diagnose_csv_files(test_data_dir, test_pattern, max_text_chars) if test_data_dir else [])
                           + found)
    content, leaked = split_problems(rows, max_text_chars, max_duplicate_fraction, max_leakage_fraction)
    found += content + drift_problems(data_dir, max_label_drift, max_length_drift, test_pattern, train_spans)
    if found:
        raise DataRejected(found)
    gate_rows = sum(len(r) for split, r in rows.items() if split in names.gate_splits())
    return {"rows": sum(map(len, rows.values())), "gate_rows": gate_rows,
            "leaked_rows": sum(map(len, leaked.values())), "eval_rows": len(rows.get(names.EVAL_SPLIT, []))}
