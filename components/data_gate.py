"""The data contract's gate: bad data stops the run before Transform, in words a data owner reads.

TFX's ExampleValidator only reports anomalies. DataGate reads its report (TFDV
anomalies against the checked-in schema) and adds what a schema cannot say:
blank or over-long texts, duplicated rows en masse, no rows at all, and drift
between the newest data span and the one before (TFDV drift comparators). Any
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
from components.csv_files import delimiter_hint, parse_csv, problem, ragged
from components.errors import DataRejected
from components.spans import span_dirs, split_rows


# ---------------------------------------------------------------------------------------- CSV files
def diagnose_csv_files(data_dir: str, pattern: str, max_chars: int | None = None,
                       columns=names.COLUMNS) -> list[dict]:
    """Problems with the CSV files under data_dir/pattern, each naming the file (empty list: none)."""
    files = sorted(fileio.glob(os.path.join(data_dir, pattern)))
    if not files:
        return [problem(data_dir, f"no files match '{pattern}' (expected CSV files such as span-1/data.csv)")]
    found = []
    for path in files:
        found += _diagnose_file(path, list(columns), max_chars)
    return found


def _diagnose_file(path: str, columns: list[str], max_chars: int | None) -> list[dict]:
    try:
        with fileio.open(path, "rb") as f:
            raw = f.read()
    except Exception as e:  # permissions, a directory, a broken link, ...
        return [problem(path, f"cannot be read: {e}")]
    rows, found = parse_csv(raw, path, expected=f"a header line '{','.join(columns)}' and rows")
    if found:
        return found
    header = rows[0]
    if header != columns:
        delimiter = delimiter_hint(header)
        if delimiter:
            return [problem(path, f"uses {delimiter!r} as delimiter; expected commas "
                                  f"(header should be '{','.join(columns)}')", [header[0]])]
        missing = [c for c in columns if c not in header]
        extra = [c for c in header if c not in columns]
        what = "; ".join(filter(None, [f"missing column(s) {missing}" if missing else "",
                                        f"unexpected column(s) {extra}" if extra else ""]))
        return [problem(path, f"has header {header}: {what or 'columns out of order'}; "
                              f"expected exactly '{','.join(columns)}'")]
    body = [r for r in rows[1:] if r]
    if not body:
        return [problem(path, "has a header but no rows")]
    if ragged(rows, path):
        return ragged(rows, path)
    long = [r[0] for r in body if max_chars and len(r[0]) > max_chars]
    if long:
        return [problem(path, f"{len(long)} text(s) are longer than {max_chars:,} characters "
                              "(contract.max_text_chars)", long)]
    return []


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
    """Files that are empty or hold only a header (cheap: reads at most two lines of each file)."""
    found = []
    for path in sorted(fileio.glob(os.path.join(data_dir, pattern))):
        with fileio.open(path, "rb") as f:
            lines = [f.readline() for _ in range(2)]
        if not lines[0].strip():
            found.append(problem(path, "is empty: a new file must hold a header line and rows"))
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
                found[(f"feature '{feature}'", f"{reason.short_description}: {reason.description}")].append(split)
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


def _texts(examples) -> list[tuple[str, str]]:
    """(text, label) of every example in every split (undecodable bytes replaced)."""
    return [row for split in artifact_utils.decode_split_names(examples.split_names)
            for row in split_rows(examples, split)]


def _text_problems(rows, max_chars: int, max_duplicate_fraction: float) -> list[dict]:
    found = []
    blank = [t for t, _ in rows if t and not t.strip()]
    if blank:
        found.append(problem(f"feature '{names.TEXT}'", f"{len(blank)} text(s) are only whitespace", blank))
    long = [t for t, _ in rows if len(t) > max_chars]
    if long:
        found.append(problem(f"feature '{names.TEXT}'", f"{len(long)} text(s) are longer than "
                                                          f"{max_chars:,} characters (contract.max_text_chars)", long))
    counts = collections.Counter(rows)
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    if rows and duplicates / len(rows) > max_duplicate_fraction:
        top = [f"{t} ({c}×)" for (t, _), c in counts.most_common(_MAX_EXAMPLES) if c > 1]
        found.append(problem("dataset", f"{duplicates} of {len(rows)} rows ({duplicates / len(rows):.0%}) "
                                        f"repeat another row exactly; more than "
                                        f"{max_duplicate_fraction:.0%} (contract.max_duplicate_fraction)", top))
    return found


# ---------------------------------------------------------------------------------- drift by span
def _span_statistics(folder: str):
    import pandas as pd
    import tensorflow_data_validation as tfdv

    texts, labels = [], []
    for path in sorted(fileio.glob(os.path.join(folder, "*.csv"))):
        with fileio.open(path, "rb") as f:
            for row in csv.DictReader(io.StringIO(f.read().decode("utf-8", "replace"))):
                texts.append(row.get(names.TEXT) or "")
                labels.append(row.get(names.LABEL) or "")
    frame = pd.DataFrame({names.LABEL: labels, "text_length": [len(t) for t in texts]})
    return tfdv.generate_statistics_from_dataframe(frame)


def drift_problems(data_dir: str, label_threshold: float, length_threshold: float) -> list[dict]:
    """TFDV drift between the newest span and the previous one (none with fewer than two spans)."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

    spans = span_dirs(data_dir)
    if len(spans) < 2 or not (label_threshold or length_threshold):
        return []
    newest, previous = sorted(spans)[-1], sorted(spans)[-2]
    schema = schema_pb2.Schema()
    label = schema.feature.add(name=names.LABEL, type=schema_pb2.BYTES)
    if label_threshold:
        label.drift_comparator.infinity_norm.threshold = label_threshold
    length = schema.feature.add(name="text_length", type=schema_pb2.INT)
    if length_threshold:
        length.drift_comparator.jensen_shannon_divergence.threshold = length_threshold
    anomalies = tfdv.validate_statistics(_span_statistics(spans[newest]), schema,
                                         previous_statistics=_span_statistics(spans[previous]))
    found = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        comparators = (r for r in info.reason
                       if anomalies_pb2.AnomalyInfo.Type.Name(r.type).startswith("COMPARATOR_"))
        for reason in comparators:
            knob = "contract.max_label_drift" if feature == names.LABEL else "contract.max_length_drift"
            found.append(problem(f"span-{newest} vs span-{previous}, '{feature}'",
                                 f"{reason.description} ({knob})"))
    return found


@component
def DataGate(
        statistics: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleStatistics],
        anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
        examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
        data_dir: tfx.dsl.components.Parameter[str],
        file_pattern: tfx.dsl.components.Parameter[str],
        max_text_chars: tfx.dsl.components.Parameter[int],
        max_duplicate_fraction: tfx.dsl.components.Parameter[float],
        max_label_drift: tfx.dsl.components.Parameter[float],
        max_length_drift: tfx.dsl.components.Parameter[float],
) -> TypedDict("GateOutput", {"rows": int}):
    """Halts the run (DataRejected) when the data breaks the contract; else passes the row count on."""
    counts = _example_counts(statistics)
    if not sum(counts.values()):
        raise DataRejected(diagnose_csv_files(data_dir, file_pattern, max_text_chars) or [
            problem(data_dir, f"no data rows in the files matching '{file_pattern}'")])
    empty = _files_without_rows(data_dir, file_pattern)
    if empty:
        raise DataRejected(empty)
    found = _anomaly_problems(anomalies)
    if any("Column dropped" in p["problem"] or "New column" in p["problem"] for p in found):
        # Broken columns: name the file and the cause (a wrong delimiter, say) before TFDV's view of it.
        raise DataRejected(diagnose_csv_files(data_dir, file_pattern, max_text_chars) + found)
    rows = _texts(examples)
    found += (_text_problems(rows, max_text_chars, max_duplicate_fraction)
              + drift_problems(data_dir, max_label_drift, max_length_drift))
    if found:
        raise DataRejected(found)
    return {"rows": len(rows)}
