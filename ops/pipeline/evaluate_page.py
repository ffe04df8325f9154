"""`evaluate --html`: the figures as one HTML page, in the report's style (ops/report/html_parts.py)."""
from __future__ import annotations

from ops.report.html_parts import STYLE, e, table


def write_page(r: dict, path: str) -> None:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>transferline evaluate</title>"
             f"<style>{STYLE}</style></head><body><h1>transferline: evaluate</h1>",
             f"<p>Version <code>{e(r['version'])}</code> ({e(r['model'])}) on <code>{e(r['file'])}</code>: "
             f"{r['rows']} row(s), {r['scored_rows']} with a label the model knows.</p>",
             table("summary", ["figure", "value"],
                   [["accuracy", f"{r['accuracy']:.4f}"], ["macro F1", f"{r['macro_f1']:.4f}"]]
                   + [[f"reference: {k}", f"{v:.4f}"] for k, v in r["references"].items() if k != "training_rows"
                      and isinstance(v, float)])]
    if "unavailable" in r["references"]:
        parts.append(f"<p class='no'>References not measured: {e(r['references']['unavailable'])}</p>")
    if r["unknown_labels"]:
        parts.append("<h2>Labels the model does not know</h2><p>Left out of the figures; counted as errors, the "
                     f"accuracy would be {r['accuracy_all_rows']:.4f}.</p>"
                     + table("unknown", ["label", "rows"], [[k, n] for k, n in r["unknown_labels"].items()]))
    parts.append("<h2>Per class</h2>" + table(
        "per-class", ["class", "precision", "recall", "F1", "support"],
        [[c, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1_score']:.3f}", m["support"]]
         for c, m in r["per_class"].items()]))
    parts.append("<h2>Confusion matrix</h2><p>Rows: the true label; columns: the predicted one.</p>" + table(
        "confusion", ["true \\ predicted", *r["classes"]],
        [[c, *row] for c, row in zip(r["classes"], r["confusion_matrix"])]))
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(parts))
