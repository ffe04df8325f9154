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

    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.utils import display_util

    parts = ["<html><head><meta charset='utf-8'><title>transferline: data rejected</title></head><body>",
             "<h1>The data was rejected</h1><ul>"]
    for p in rejected.problems:
        examples = "".join(f"<li><code>{html_lib.escape(e)}</code></li>" for e in p["examples"])
        parts.append(f"<li><b>{html_lib.escape(p['where'])}</b>: {html_lib.escape(p['problem'])}"
                     f"{f'<ul>{examples}</ul>' if examples else ''}</li>")
    parts.append("</ul>")
    statistics = outputs.get("StatisticsGen.statistics")
    if statistics:
        for split in ("train", "eval"):
            path = os.path.join(statistics[0].uri, f"Split-{split}", "FeatureStats.pb")
            if os.path.exists(path):
                parts.append(f"<h2>Statistics: {split} split (TFDV)</h2>")
                parts.append(display_util.get_statistics_html(tfdv.load_stats_binary(path)))
    anomalies = outputs.get("ExampleValidator.anomalies")
    if anomalies:
        from tensorflow_metadata.proto.v0 import anomalies_pb2

        for split in ("train", "eval"):
            path = os.path.join(anomalies[0].uri, f"Split-{split}", "SchemaDiff.pb")
            if os.path.exists(path):
                report = anomalies_pb2.Anomalies()
                with open(path, "rb") as f:
                    report.ParseFromString(f.read())
                parts.append(f"<h2>Anomalies against the schema: {split} split (TFDV)</h2>")
                parts.append(display_util.get_anomalies_dataframe(report).to_html())
    parts.append("</body></html>")
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, "data.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return path
