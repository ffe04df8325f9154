"""The page for a rejected run: where it stopped (MLMD), the problems, and TFDV's views of the data."""
from __future__ import annotations

import html
import os

from components.errors import DataRejected
from ops.report.tfdv_views import tfdv_sections
from pipelines.config import Config
from pipelines.mlmd_store import connect, run_contexts, run_outputs


def write_rejection_report(config: Config, rejected: DataRejected) -> tuple[str, str | None]:
    """(the component the latest run stopped at, the HTML page's path or None)."""
    if not os.path.exists(config.metadata_path):
        return "", None
    store = connect(config.metadata_path)
    runs = run_contexts(store, config.pipeline_name)
    if not runs:
        return "", None
    states, outputs = run_outputs(store, runs[-1])
    stopped = ", ".join(f"{c} ({s})" for c, s in states.items() if s in ("FAILED", "RUNNING")) or ""
    return stopped, _page(outputs, rejected, config.work.reports(runs[-1].name))


def _page(outputs, rejected: DataRejected, report_dir: str) -> str:
    parts = ["<html><head><meta charset='utf-8'><title>transferline: data rejected</title></head><body>",
             "<h1>The data was rejected</h1><ul>"]
    for p in rejected.problems:
        examples = "".join(f"<li><code>{html.escape(e)}</code></li>" for e in p["examples"])
        parts.append(f"<li><b>{html.escape(p['where'])}</b>: {html.escape(p['problem'])}"
                     f"{f'<ul>{examples}</ul>' if examples else ''}</li>")
    parts.append("</ul>")
    parts += tfdv_sections(outputs)
    parts.append("</body></html>")
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, "data.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
    return path
