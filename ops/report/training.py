"""The report's Training section: the mode and why, each phase with its per-epoch curves, the warm start, the
knobs, and the most confident mistakes on the gate data. Read from the Trainer's model_run (training.json,
warm_start.json; components/trainer.py), never from logs."""
from __future__ import annotations

import json
import os

from components import names
from ops.report.html_parts import e as _e, png as _png, table as _table

PHASES = (("phase1", "phase 1"), ("phase2", "phase 2 (fine-tune)"))
CURVES = (("loss", "loss"), ("val_loss", "eval loss"), ("accuracy", "accuracy"), ("val_accuracy", "eval accuracy"))


def read_training(model_run_uri: str) -> dict:
    """training.json with warm_start.json folded in ({} when the Trainer wrote neither)."""
    record = {}
    for name in (names.TRAINING_FILE, names.WARM_START_FILE):
        path = os.path.join(model_run_uri, name)
        if os.path.exists(path):
            with open(path) as f:
                data = json.load(f)
            record.update(data if name == names.TRAINING_FILE else {"warm_start": data})
    return record


def _curves_png(record: dict) -> str:
    """Loss and accuracy per epoch, train and eval, the phases one after the other (a line where phase 2 starts)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    start = 0
    for phase, title in PHASES:
        history = record.get(phase, {}).get("history", {})
        if not history:
            continue
        for ax, keys in zip(axes, (("loss", "val_loss"), ("accuracy", "val_accuracy"))):
            for key in keys:
                values = history.get(key, [])
                ax.plot(range(start + 1, start + len(values) + 1), values, marker="o", markersize=3,
                        label=f"{title}: {dict(CURVES)[key]}")
            if start:
                ax.axvline(start + 0.5, color="#999", linestyle="--")
        start += len(history.get("loss", []))
    for ax, what in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_title(what)
        ax.legend(fontsize=7)
    data = _png(fig)
    plt.close(fig)
    return data


def _epoch_rows(record: dict) -> list[list]:
    rows = []
    for phase, title in PHASES:
        history = record.get(phase, {}).get("history", {})
        best = record.get(phase, {}).get("best_epoch")
        for i in range(len(history.get("loss", []))):
            rows.append([title, i + 1, *(f"{history[k][i]:.4f}" if k in history else "-" for k, _ in CURVES),
                         "kept" if i + 1 == best else ""])
    return rows


def training_section(outputs, mistakes) -> list[str]:
    """`mistakes`: ops/report/mistakes.py's confident_mistakes() for this run's candidate, or None."""
    out = ["<h2>Training</h2>"]
    if not outputs.get(names.MODEL_RUN):
        return out + ["<p>No training in this run.</p>"]
    record = read_training(outputs[names.MODEL_RUN][0].uri)
    if not record:
        return out + ["<p>The Trainer recorded nothing about its training.</p>"]
    warm = record.get("warm_start", {})
    rows = [["mode", record.get("mode", "-")], ["why", record.get("why", "-")],
            ["training examples", record.get("n_train", "-")], ["eval examples", record.get("n_eval", "-")],
            ["phase 2 (fine-tuning)", record.get("decision") or "not run"],
            ["warm start", warm.get("reason", "-")]]
    if warm.get("encoder"):
        rows.append(["encoder warm start", warm["encoder"]])
    out += [_table("training", ["", ""], rows),
            "<h3>Phases</h3>",
            _table("phases", ["phase", "epochs run", "best epoch (weights kept)", "eval accuracy (best epoch)",
                              "eval accuracy", "eval loss"],
                   [[title, p["epochs"], p["best_epoch"], f"{p['eval_accuracy_best_epoch']:.4f}",
                     f"{p.get('accuracy', float('nan')):.4f}", f"{p.get('loss', float('nan')):.4f}"]
                    for phase, title in PHASES if (p := record.get(phase))])]
    epochs = _epoch_rows(record)
    if epochs:
        out += ["<h3>Per epoch</h3>",
                f"<img id='training-curves' alt='training curves' src='data:image/png;base64,{_curves_png(record)}'>",
                _table("epochs", ["phase", "epoch", *(t for _, t in CURVES), ""], epochs)]
    else:
        out.append("<p>No per-epoch history recorded (a model trained before it was kept).</p>")
    if record.get("knobs"):
        out += ["<h3>Knobs ([trainer])</h3>",
                _table("knobs", ["knob", "value"], [[f"trainer.{k}", v] for k, v in sorted(record["knobs"].items())])]
    if mistakes is not None:
        out += mistakes_html(mistakes)
    return out


def mistakes_html(m: dict) -> list[str]:
    return [f"<h3>The {len(m['rows'])} most confident mistakes on the gate data</h3>",
            f"<p id='mistakes-note'>Scored here, by the candidate model's {_e(names.SERVING_DEFAULT)} signature on "
            f"the gate data ({_e(', '.join(m['splits']))} splits, {m['scored']} rows): {m['wrong']} wrong, accuracy "
            f"{m['accuracy']:.4f} (TFX's Evaluator writes TFMA's metrics and plots, not per-example predictions).</p>",
            _table("mistakes", ["score", "predicted", "label", "split", "text"],
                   [[f"{r['score']:.4f}", r["predicted"], r["label"], r["split"], r["text"]] for r in m["rows"]])]
