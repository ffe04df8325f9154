"""The model card of a pushed version: what the model is, what it was trained and gated on, how it did, and what
it is not for. JSON in the Model Card Toolkit's schema v0.0.2, and the same as an HTML page.

The Pusher (components/pusher.py) writes both into each version's assets.extra/ (TF Serving ignores the
folder), from what it has: the model's own assets.extra (model.json, the Trainer's training.json), its label
vocabulary, and the push gate's record (spans, what it was compared with, the references, TFMA's output).
The Model Card Toolkit itself is not used: model-card-toolkit 2.0.0's generated protos need protobuf <= 3.20
(TFX 1.16 runs 4.25) and it pins TFMA < 0.42. tests/test_model_card.py validates the JSON against its schema.
"""
from __future__ import annotations

import json
import os

from components import names
from components.html_page import STYLE, e, table

SCHEMA_VERSION = "0.0.2"
OVERALL = "overall"  # the slice name of a metric on the whole gate data
CLASS_SLICE = "label = "  # the slice name prefix of a per-class metric
PER_CLASS = ("precision", "recall", "f1_score")


def gate_metrics(evaluation_uri: str, classes: list[str]) -> tuple[dict, dict]:
    """(overall, per class) for the candidate on the gate data as the Evaluator (TFMA) recorded them: overall
    accuracy, example_count, macro_f1 (and baseline_accuracy when compared with a served model); per class
    precision, recall, f1_score (TFMA's class ids index the model's label vocabulary, `classes`)."""
    import tensorflow_model_analysis as tfma

    overall, per_class = {}, {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue
        for kv in slice_metrics.metric_keys_and_values:
            key, value = kv.key, kv.value.double_value.value
            if key.is_diff or not kv.value.HasField("double_value"):
                continue
            if key.model_name == "baseline":
                if key.name == names.ACCURACY_METRIC:
                    overall["baseline_accuracy"] = value
            elif key.sub_key.HasField("class_id"):
                cid = key.sub_key.class_id.value
                per_class.setdefault(classes[cid] if cid < len(classes) else str(cid), {})[key.name] = value
            elif key.name in (names.ACCURACY_METRIC, names.EXAMPLE_COUNT_METRIC):
                overall["accuracy" if key.name == names.ACCURACY_METRIC else "example_count"] = value
    f1 = [v["f1_score"] for v in per_class.values() if "f1_score" in v]
    if f1:
        overall["macro_f1"] = sum(f1) / len(f1)
    return overall, per_class


def _metric(kind: str, value: float, slice_name: str = OVERALL) -> dict:
    return {"type": kind, "value": repr(float(value)), "slice": slice_name}  # repr: the recorded number, exactly


def build_card(*, name: str, version: str, date: str, path: str, classes: list[str], info: dict, training: dict,
               gate: dict, overall: dict, per_class: dict, max_text_chars: int) -> dict:
    """The card as a dict in the schema. `info`: the model's model.json; `training`: its training.json;
    `gate`: the PushGate's custom properties (names.*); `overall`, `per_class`: gate_metrics()."""
    spans, n_train, n_eval = gate.get(names.SPANS, ""), training.get("n_train", 0), training.get("n_eval", 0)
    count = int(overall.get("example_count", 0))
    mode, warm = training.get("mode", info.get("mode", "?")), training.get("warm_start", {})
    handle = info.get("encoder_handle", "")
    baseline = gate.get(names.BASELINE_VERSION, 0)
    diff = (f"the classes changed ({gate.get(names.CLASS_CHANGE)}): not compared with served version {baseline}"
            if gate.get(names.CLASS_CHANGE) else
            f"replaces served version {baseline}" + (f" (its accuracy on the same gate data: "
                                                     f"{overall['baseline_accuracy']:.4f})"
                                                     if "baseline_accuracy" in overall else "")
            if baseline else "the first model: nothing was served before it")
    documentation = [f"training mode: {mode} ({training.get('why', 'not recorded')})",
                     f"phase 2 (fine-tuning): {training.get('decision') or 'not run'}",
                     f"warm start: {warm.get('reason', 'not recorded')}"
                     + (f"; {warm['encoder']}" if warm.get("encoder") else ""),
                     f"encoder: {handle}",
                     *(f"{phase}: {training[phase]['epochs']} epoch(s), best epoch {training[phase]['best_epoch']}, "
                       f"eval accuracy {training[phase].get('accuracy', float('nan')):.4f}"
                       for phase in ("phase1", "phase2") if phase in training)]
    metrics = [_metric(kind, overall[key]) for key, kind in
               (("accuracy", "accuracy"), ("macro_f1", "macro F1"), ("example_count", "examples"))
               if key in overall]
    metrics += [_metric(kind, values[kind], CLASS_SLICE + c) for c, values in sorted(per_class.items())
                for kind in PER_CLASS if kind in values]
    metrics += [_metric(f"accuracy of the reference: {label}", gate[key]) for key, label in names.REFERENCE_NAMES.items()
                if gate.get(key) is not None]
    hp = training.get("knobs", {})
    return {
        "schema_version": SCHEMA_VERSION,
        "model_details": {
            "name": name,
            "overview": f"Sorts a text into one of {len(classes)} classes ({', '.join(classes)}): a {mode} model on "
                        "a sentence encoder, trained and pushed by transferline.",
            "documentation": "\n".join(documentation),
            "version": {"name": version, "date": date, "diff": diff},
            **({"references": [{"reference": handle}]} if handle.startswith(("http://", "https://")) else {}),
            "path": path,
        },
        "model_parameters": {
            "model_architecture": f"{mode}: encoder -> Dense({hp.get('hidden_units', '?')}, relu) -> "
                                  f"Dropout({hp.get('dropout', '?')}) -> Dense({len(classes)}) -> softmax"
                                  + (" (+ a linear map of TF-IDF n-grams)" if mode == "wide_deep" else "")
                                  + (" (the encoder fine-tuned too)" if training.get("phase_kept") == 2 else ""),
            "data": [{"name": "train", "description": f"span(s) {spans}: {n_train} rows (the train part of the "
                                                      "spans' hash split)"},
                     {"name": "eval", "description": f"{n_eval} rows: early stopping, the phase-2 decision, and "
                                                     "part of the gate data"},
                     {"name": "gate data", "description": f"{count} rows: the eval split"
                                                          + (f" plus the held-out test set ({count - n_eval} rows)"
                                                             if count > n_eval else "")
                                                          + "; the metrics below are TFMA's on it"}],
            "input_format": f"{names.TEXT}: string[batch] (signature {names.SERVING_DEFAULT})",
            "output_format": f"{names.PROBABILITIES} over the classes in this order: {', '.join(classes)}; "
                             f"{names.TOP_CLASS}: the top class; {names.TOP_SCORE}: its probability",
            "output_format_map": [{"key": names.PROBABILITIES, "value": f"float32[batch, {len(classes)}]"},
                                  {"key": names.CLASSES, "value": f"string[batch, {len(classes)}]"},
                                  {"key": names.TOP_CLASS, "value": "string[batch]"},
                                  {"key": names.TOP_SCORE, "value": "float32[batch]"}],
        },
        "quantitative_analysis": {"performance_metrics": metrics},
        "considerations": {
            "users": [{"description": "Services that call it through TF Serving (REST :predict, signature "
                                      f"{names.SERVING_DEFAULT}) and people using `transferline predict`."}],
            "use_cases": [{"description": f"Sorting texts like its training texts into the {len(classes)} classes "
                                          f"it was trained on: {', '.join(classes)}."}],
            "limitations": [
                {"description": f"It knows only the classes {', '.join(classes)}: any other text is still put into "
                                "one of them (there is no 'none of these')."},
                {"description": f"Trained on {n_train} texts from span(s) {spans}"
                                + (f", each at most {max_text_chars} characters (contract.max_text_chars refuses "
                                   "longer ones)" if max_text_chars else "")
                                + ": texts unlike them (longer, another domain or language) were neither trained "
                                  "nor measured on."},
                {"description": f"Measured on {count} gate examples; a small class's per-class figures are noisy."},
                {"description": f"The {names.TOP_SCORE} is a softmax probability, not calibrated: a ranking of how "
                                "sure the model is, not the chance that it is right."}],
            "ethical_considerations": [{
                "name": "It repeats its training labels' judgements, biases included; nothing here measures how it "
                        "treats groups of people.",
                "mitigation_strategy": "Read the per-class figures and the run report's most confident mistakes "
                                       "before relying on a class."}],
        },
    }


def metrics_of(card: dict) -> tuple[dict, dict]:
    """(overall {type: value}, per class {class: {type: value}}) read back from a card's performance metrics."""
    overall, per_class = {}, {}
    for m in card["quantitative_analysis"]["performance_metrics"]:
        if m["slice"] == OVERALL:
            overall[m["type"]] = float(m["value"])
        elif m["slice"].startswith(CLASS_SLICE):
            per_class.setdefault(m["slice"][len(CLASS_SLICE):], {})[m["type"]] = float(m["value"])
    return overall, per_class


def card_sections(card: dict, level: int = 2) -> list[str]:
    """The card as HTML sections (headings at `level`): its own page's body, and the run report's section."""
    h, d, p = f"h{level}", card["model_details"], card["model_parameters"]
    overall, per_class = metrics_of(card)
    c = card["considerations"]
    return [f"<p id='card-overview'>{e(d['overview'])}</p>",
            f"<{h}>Model details</{h}>",
            table("card-details", ["", ""],
                  [["name", d["name"]], ["version", d["version"]["name"]], ["pushed", d["version"]["date"]],
                   ["compared with", d["version"]["diff"]], ["path", d.get("path", "")],
                   ["architecture", p["model_architecture"]],
                   *(line.split(": ", 1) for line in d["documentation"].splitlines())]),
            f"<{h}>Data</{h}>", table("card-data", ["data", "what"], [[x["name"], x["description"]] for x in p["data"]]),
            f"<p>In: {e(p['input_format'])}. Out: {e(p['output_format'])}.</p>",
            f"<{h}>Quantitative analysis (gate data, TFMA)</{h}>",
            table("card-metrics", ["metric", "value"],
                  [[k, f"{v:.0f}" if k == "examples" else f"{v:.4f}"] for k, v in overall.items()]),
            table("card-per-class", ["class", "precision", "recall", "F1"],
                  [[name, *(f"{v.get(k, float('nan')):.4f}" for k in PER_CLASS)] for name, v in per_class.items()]),
            f"<{h}>Considerations</{h}>",
            "<ul id='card-considerations'>" + "".join(
                f"<li><b>{e(kind)}</b>: {e(x['description'])}</li>"
                for kind in ("users", "use_cases", "limitations") for x in c.get(kind, []))
            + "".join(f"<li><b>risk</b>: {e(x['name'])} {e(x['mitigation_strategy'])}</li>"
                      for x in c.get("ethical_considerations", [])) + "</ul>"]


def card_page(card: dict) -> str:
    d = card["model_details"]
    return "\n".join([f"<!doctype html><html><head><meta charset='utf-8'><title>Model card: {e(d['name'])} "
                      f"version {e(d['version']['name'])}</title><style>{STYLE}</style></head><body>",
                      f"<h1>Model card: {e(d['name'])}, version <code>{e(d['version']['name'])}</code></h1>",
                      *card_sections(card), "</body></html>"])


def read_card(version_dir: str) -> dict | None:
    """A pushed version's model card (None for a version pushed before cards were written)."""
    import tensorflow as tf

    path = os.path.join(version_dir, names.MODEL_CARD)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
