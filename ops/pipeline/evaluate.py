"""`transferline evaluate FILE`: a served version scored on a labelled file, beside the references.

Accuracy, macro F1, a per-class table and the confusion matrix are scikit-learn's (sklearn.metrics), on the
rows whose label the model knows; rows with another label are counted and named, not scored. The references
are the pipeline's own (components/references.py): the majority class and TF-IDF + LR, trained on the train
split of the run that trained this version (found through its provenance and MLMD, as `monitor` finds it)
with the pipeline's seed, then scored on the same rows of the file.
"""
from __future__ import annotations

import collections
import json
import os

from components import names
from components.errors import NotFound, UserError
from ops.args import add_config_args, config_from, say
from ops.pipeline.scoring import Model, scored, served_model_dir
from ops.pipeline.table_file import KINDS, TableFile, require_column, text_column


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score a labelled CSV / JSON Lines file with a served version, beside "
                       "the references")
    add_config_args(p)
    p.add_argument("file", metavar="FILE", help="a labelled CSV (with a header) or JSON Lines file; - for stdin")
    p.add_argument("--label-column", metavar="L", help=f"the column holding the labels (default {names.LABEL})")
    p.add_argument("--text-column", metavar="C", help=f"the column holding the texts (default {names.TEXT})")
    p.add_argument("--format", choices=KINDS[:3], default="auto", help="the file's kind (default: by its extension, "
                   "else its first line)")
    p.add_argument("--version", type=int, metavar="V", help="the served version to evaluate (default: the newest)")
    p.add_argument("--json", action="store_true", help="the figures as one JSON object, for scripts")
    p.add_argument("--html", metavar="OUT", help="also write an HTML page, in the report's style")
    p.set_defaults(func=command)


def command(args) -> int:
    config = config_from(args)
    table = TableFile(args.file, args.format, flag="evaluate")
    if table.kind == "text":
        raise UserError(f"{args.file} is plain text (one text a line): no labels to evaluate against; give a CSV "
                        "with a header or a JSON Lines file, with a text and a label column")
    text = text_column(table, args.text_column)
    label = require_column(table, args.label_column, names.LABEL, "--label-column", "label")
    model_dir = served_model_dir(config.serving_dir, args.version)
    say(f"model {model_dir}")
    model = Model(model_dir)
    texts, truth, predicted = [], [], []
    for row, predicted_label, _, _ in scored(model, table.rows(), text, label="evaluate"):
        texts.append(row[text])
        truth.append("" if row.get(label) is None else str(row[label]))
        predicted.append(predicted_label)
    result = {"file": args.file, "model": model_dir, "version": int(os.path.basename(model_dir)),
              **figures(truth, predicted, model.classes)}
    known = [(t, y) for t, y in zip(texts, truth) if y in model.classes]
    result["references"] = references(config, result["version"], model_dir, known)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(as_text(result))
    if args.html:
        from ops.pipeline.evaluate_page import write_page

        write_page(result, args.html)
        say(f"page: {args.html}")
    return 0


def figures(truth: list[str], predicted: list[str], classes: list[str]) -> dict:
    """sklearn's figures on the rows whose label is one of `classes`; the others counted by label."""
    from sklearn import metrics

    keep = [i for i, y in enumerate(truth) if y in classes]
    unknown = collections.Counter(truth[i] for i in range(len(truth)) if truth[i] not in classes)
    out = {"rows": len(truth), "scored_rows": len(keep), "unknown_labels": dict(unknown.most_common()),
           "classes": classes}
    if not keep:
        raise UserError(f"no row of the file has a label the model knows ({', '.join(classes)}); its labels: "
                        + ", ".join(f"{k!r} ({n})" for k, n in unknown.most_common(10)))
    y, p = [truth[i] for i in keep], [predicted[i] for i in keep]
    precision, recall, f1, support = metrics.precision_recall_fscore_support(y, p, labels=classes, zero_division=0)
    accuracy = metrics.accuracy_score(y, p)
    out.update({
        "accuracy": accuracy,
        # Counted as errors, the rows with unknown labels (the model cannot predict them).
        "accuracy_all_rows": accuracy * len(keep) / len(truth),
        # Over the classes present in the labels or the predictions (sklearn's default).
        "macro_f1": metrics.f1_score(y, p, average="macro", zero_division=0),
        "per_class": {c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1_score": float(f1[i]),
                          "support": int(support[i])} for i, c in enumerate(classes)},
        # Rows: the true label; columns: the predicted one; both in `classes` order.
        "confusion_matrix": metrics.confusion_matrix(y, p, labels=classes).tolist()})
    return out


def references(config, version: int, model_dir: str, rows: list[tuple[str, str]]) -> dict:
    """The pipeline's references trained on this version's training split, scored on rows (text, label):
    {"majority class": acc, "TF-IDF(1-2-grams)+LR": acc, "training_rows": n}, or {"unavailable": why}."""
    from components.references import reference_accuracies
    from components.serving_dir import provenance
    from ops.loop.monitor_checks import training_data

    try:
        _, splits = training_data(config, {"version": version, "path": model_dir, "provenance": provenance(model_dir)})
    except NotFound as e:
        return {"unavailable": str(e)}
    train = list(zip(*splits[names.TRAIN_SPLIT]))
    result = reference_accuracies(train, rows, seed=config.trainer.seed)
    return {**{title: result[key] for key, title in names.REFERENCE_NAMES.items()}, "training_rows": len(train)}


def as_text(r: dict) -> str:
    lines = [f"model: version {r['version']} ({r['model']})",
             f"file: {r['file']}: {r['rows']} row(s), {r['scored_rows']} with a label the model knows",
             f"accuracy {r['accuracy']:.4f}, macro F1 {r['macro_f1']:.4f}"]
    if r["unknown_labels"]:
        lines.append(f"  {r['rows'] - r['scored_rows']} row(s) with labels the model does not know, left out: "
                     + ", ".join(f"{k!r} {n}" for k, n in r["unknown_labels"].items())
                     + f" (counted as errors: accuracy {r['accuracy_all_rows']:.4f})")
    width = max(len(c) for c in r["classes"] + ["class"])
    lines.append(f"\n{'class':<{width}}  precision  recall     F1  support")
    for c, m in r["per_class"].items():
        lines.append(f"{c:<{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1_score']:5.3f}  "
                     f"{m['support']:7d}")
    lines.append("\nconfusion matrix (rows: true label, columns: predicted)")
    cell = max(width, max(len(str(n)) for row in r["confusion_matrix"] for n in row))
    lines.append(" " * width + "".join(f"  {c:>{cell}}" for c in r["classes"]))
    for c, row in zip(r["classes"], r["confusion_matrix"]):
        lines.append(f"{c:<{width}}" + "".join(f"  {n:>{cell}}" for n in row))
    refs = r["references"]
    if "unavailable" in refs:
        lines.append(f"\nreferences: not measured: {refs['unavailable']}")
    else:
        lines.append(f"\nreferences on the same {r['scored_rows']} rows, trained on this version's training split "
                     f"({refs['training_rows']} rows):")
        for title in names.REFERENCE_NAMES.values():
            lines.append(f"  {title:<22} {refs[title]:.4f}  (the model: {r['accuracy'] - refs[title]:+.4f})")
    return "\n".join(lines)
