"""Reports for a rejected run: where it stopped (MLMD) and TFDV's own HTML for statistics and anomalies."""
from __future__ import annotations

import os

from pipelines.config import Config
from pipelines.summary import connect, run_contexts, run_outputs


def write_rejection_report(config: Config, rejected) -> tuple[str, str | None]:
    """(the component the latest run stopped at, the HTML report's path or None)."""
    if not os.path.exists(config.metadata_path):
        return "", None
    store = connect(config.metadata_path)
    runs = run_contexts(store, config.pipeline_name)
    if not runs:
        return "", None
    states, outputs = run_outputs(store, runs[-1])
    stopped = ", ".join(f"{c} ({s})" for c, s in states.items() if s in ("FAILED", "RUNNING")) or ""
    report_dir = os.path.join(config.paths.work_dir, "reports", runs[-1].name)
    html = _tfdv_html(outputs, rejected, report_dir)
    return stopped, html


def _tfdv_html(outputs, rejected, report_dir: str) -> str | None:
    import html as html_lib

    parts = ["<html><head><meta charset='utf-8'><title>transferline: data rejected</title></head><body>",
             "<h1>The data was rejected</h1><ul>"]
    for p in rejected.problems:
        examples = "".join(f"<li><code>{html_lib.escape(e)}</code></li>" for e in p["examples"])
        parts.append(f"<li><b>{html_lib.escape(p['where'])}</b>: {html_lib.escape(p['problem'])}"
                     f"{f'<ul>{examples}</ul>' if examples else ''}</li>")
    parts.append("</ul>")
    parts += tfdv_sections(outputs)
    parts.append("</body></html>")
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, "data.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return path


def splits(uri: str, file_name: str) -> list[tuple[str, str]]:
    """(split, path) for each Split-*/file_name under an artifact, train and eval first."""
    order = {"train": 0, "eval": 1}
    names = [d.replace("Split-", "") for d in os.listdir(uri) if d.startswith("Split-")] if os.path.isdir(uri) else []
    return [(n, os.path.join(uri, f"Split-{n}", file_name)) for n in sorted(names, key=lambda n: (order.get(n, 2), n))
            if os.path.exists(os.path.join(uri, f"Split-{n}", file_name))]


def tfdv_sections(outputs) -> list[str]:
    """TFDV's own views of the run's data: anomalies against the schema, and statistics (Facets) per split."""
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.utils import display_util
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    parts = []
    anomalies = outputs.get("ExampleValidator.anomalies")
    for split, path in splits(anomalies[0].uri, "SchemaDiff.pb") if anomalies else []:
        report = anomalies_pb2.Anomalies()
        with open(path, "rb") as f:
            report.ParseFromString(f.read())
        parts.append(f"<h3>Anomalies against the schema: {split} split (TFDV)</h3>")
        parts.append(display_util.get_anomalies_dataframe(report).to_html(table_id=f"anomalies-{split}")
                     if report.anomaly_info or report.HasField("dataset_anomaly_info")
                     else f"<p id='anomalies-{split}'>No anomalies.</p>")
    statistics = outputs.get("StatisticsGen.statistics")
    for split, path in splits(statistics[0].uri, "FeatureStats.pb") if statistics else []:
        parts.append(f"<details><summary>Statistics: {split} split (TFDV): Facets Overview, interactive; loads "
                     f"Facets from the web</summary>{display_util.get_statistics_html(tfdv.load_stats_binary(path))}"
                     "</details>")
    return parts
