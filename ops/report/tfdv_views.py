"""TFDV's own views of a run's data (anomalies against the schema, Facets statistics), for the HTML pages."""
from __future__ import annotations

import os

from components import names


def splits(uri: str, file_name: str) -> list[tuple[str, str]]:
    """(split, path) for each Split-*/file_name under an artifact, train and eval first."""
    order = {names.TRAIN_SPLIT: 0, names.EVAL_SPLIT: 1}
    found = [d.replace("Split-", "") for d in os.listdir(uri) if d.startswith("Split-")] if os.path.isdir(uri) else []
    return [(n, os.path.join(uri, f"Split-{n}", file_name)) for n in sorted(found, key=lambda n: (order.get(n, 2), n))
            if os.path.exists(os.path.join(uri, f"Split-{n}", file_name))]


def tfdv_sections(outputs) -> list[str]:
    """TFDV's own views of the run's data: anomalies against the schema, and statistics (Facets) per split."""
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.utils import display_util
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    parts = []
    anomalies = outputs.get(names.ANOMALIES)
    for split, path in splits(anomalies[0].uri, "SchemaDiff.pb") if anomalies else []:
        report = anomalies_pb2.Anomalies()
        with open(path, "rb") as f:
            report.ParseFromString(f.read())
        parts.append(f"<h3>Anomalies against the schema: {split} split (TFDV)</h3>")
        parts.append(display_util.get_anomalies_dataframe(report).to_html(table_id=f"anomalies-{split}")
                     if report.anomaly_info or report.HasField("dataset_anomaly_info")
                     else f"<p id='anomalies-{split}'>No anomalies.</p>")
    statistics = outputs.get(names.STATISTICS)
    for split, path in splits(statistics[0].uri, "FeatureStats.pb") if statistics else []:
        parts.append(f"<details><summary>Statistics: {split} split (TFDV): Facets Overview, interactive; loads "
                     f"Facets from the web</summary>{display_util.get_statistics_html(tfdv.load_stats_binary(path))}"
                     "</details>")
    return parts
