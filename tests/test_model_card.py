"""Model cards (components/model_card.py, written by the Pusher) and the report's Training section.

The card is checked against the Model Card Toolkit's own JSON schema (tests/data/model_card.schema.json, copied
from model-card-toolkit 2.0.0, Apache-2.0: tests/data/model_card.schema.source.txt), once as written and once
"closed" (every object refusing keys the schema does not name), since the schema itself leaves nested objects open.
"""
import copy
import json
import os

import pytest

from conftest import REPO, run_cli

SCHEMA = os.path.join(REPO, "tests", "data", "model_card.schema.json")


def _validate(card):
    import jsonschema

    with open(SCHEMA) as f:
        schema = json.load(f)
    jsonschema.Draft7Validator(schema).validate(card)
    closed = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if "properties" in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(closed)
    jsonschema.Draft7Validator(closed).validate(card)


def _card(**overrides):
    from components import names
    from components.model_card import build_card

    training = {"mode": "fine_tune", "why": "auto: 4363 training examples >= 400", "n_train": 4363, "n_eval": 1089,
                "phase1": {"epochs": 12, "best_epoch": 9, "eval_accuracy_best_epoch": 0.88, "accuracy": 0.881,
                           "loss": 0.4}, "phase2": {"epochs": 3, "best_epoch": 2, "eval_accuracy_best_epoch": 0.9,
                                                    "accuracy": 0.9012345678901234, "loss": 0.3},
                "decision": "phase 2 kept: eval accuracy 0.8810 -> 0.9012", "phase_kept": 2,
                "warm_start": {"warm_start": False, "reason": "no served model: fresh start"},
                "knobs": {"hidden_units": 256, "dropout": 0.3}}
    args = dict(name="transferline", version="1765000000", date="2026-12-07", path="/srv/models/1765000000",
                classes=["HUM", "LOC", "NUM"], info={"mode": "fine_tune", "encoder_handle": "/cache/use"},
                training=training, gate={names.SPANS: "1,2", names.BASELINE_VERSION: 0, names.CLASS_CHANGE: "",
                                         names.MAJORITY_ACCURACY: 0.2272, names.TFIDF_ACCURACY: 0.8188},
                overall={"accuracy": 0.9081183112, "example_count": 1589.0, "macro_f1": 0.91243},
                per_class={c: {"precision": 0.9 + i / 100, "recall": 0.8 + i / 100, "f1_score": 0.85 + i / 1000}
                           for i, c in enumerate(["HUM", "LOC", "NUM"])},
                max_text_chars=1000)
    args.update(overrides)
    return build_card(**args), args


def test_card_follows_the_model_card_toolkit_schema_and_keeps_the_numbers():
    from components.model_card import card_page, metrics_of

    card, args = _card()
    _validate(card)
    overall, per_class = metrics_of(card)
    assert overall["accuracy"] == args["overall"]["accuracy"]  # exactly: the value is the float's repr
    assert overall["examples"] == 1589 and overall["macro F1"] == args["overall"]["macro_f1"]
    assert overall["accuracy of the reference: majority class"] == 0.2272
    assert overall["accuracy of the reference: TF-IDF(1-2-grams)+LR"] == 0.8188
    assert per_class == args["per_class"]
    details = card["model_details"]
    assert details["version"] == {"name": "1765000000", "date": "2026-12-07",
                                  "diff": "the first model: nothing was served before it"}
    assert "training mode: fine_tune (auto: 4363" in details["documentation"]
    assert "phase 2 (fine-tuning): phase 2 kept" in details["documentation"]
    assert "warm start: no served model: fresh start" in details["documentation"]
    assert "references" not in details  # a local encoder path is no URI
    data = {d["name"]: d["description"] for d in card["model_parameters"]["data"]}
    assert data["train"].startswith("span(s) 1,2: 4363 rows")
    assert "held-out test set (500 rows)" in data["gate data"]
    limits = " ".join(x["description"] for x in card["considerations"]["limitations"])
    assert "HUM, LOC, NUM" in limits and "at most 1000 characters" in limits
    page = card_page(card)
    assert "<td>accuracy</td><td>0.9081</td>" in page and "<td>LOC</td><td>0.9100</td>" in page
    assert page.count("<li>") == 7  # users, use case, four limitations, one risk


def test_card_says_what_it_replaced():
    from components import names

    card, _ = _card(gate={names.SPANS: "1,2", names.BASELINE_VERSION: 17, names.CLASS_CHANGE: ""},
                    overall={"accuracy": 0.9, "example_count": 10.0, "baseline_accuracy": 0.85},
                    info={"mode": "head", "encoder_handle": "https://tfhub.dev/google/x/3"})
    _validate(card)
    assert card["model_details"]["version"]["diff"] == ("replaces served version 17 (its accuracy on the same gate "
                                                        "data: 0.8500)")
    assert card["model_details"]["references"] == [{"reference": "https://tfhub.dev/google/x/3"}]
    card, _ = _card(gate={names.SPANS: "3", names.BASELINE_VERSION: 17, names.CLASS_CHANGE: "added ABBR"})
    assert card["model_details"]["version"]["diff"] == ("the classes changed (added ABBR): not compared with "
                                                        "served version 17")


@pytest.mark.slow
def test_each_pushed_version_has_a_card_with_the_recorded_gate_metrics(slice_runs):
    from components.model_card import metrics_of, read_card
    from components.names import MODEL_CARD_HTML, REFERENCE_NAMES
    from components.serving_dir import model_classes, served_versions

    versions = served_versions(slice_runs.serving_dir)
    assert versions  # the serving-dir checks still see the version, card and all
    pushed = [slice_runs.summary(i) for i in range(len(slice_runs.results))]
    pushed = [s for s in pushed if s.pushed_path and not s.already_present]
    assert {os.path.basename(s.pushed_path) for s in pushed} == {str(v) for v in versions}
    for s in pushed:
        card = read_card(s.pushed_path)
        _validate(card)
        overall, per_class = metrics_of(card)
        assert overall["accuracy"] == s.metrics["accuracy"]
        assert overall["macro F1"] == pytest.approx(s.metrics["macro_f1"], rel=1e-12)
        assert overall["examples"] == s.metrics["example_count"]
        assert per_class == {c: {k: v[k] for k in ("precision", "recall", "f1_score")} for c, v in s.per_class.items()}
        for key, label in REFERENCE_NAMES.items():
            assert overall[f"accuracy of the reference: {label}"] == s.references[key]
        assert card["model_details"]["version"]["name"] == os.path.basename(s.pushed_path)
        assert f"({', '.join(model_classes(s.pushed_path))})" in card["model_details"]["overview"]
        with open(os.path.join(s.pushed_path, MODEL_CARD_HTML), encoding="utf-8") as f:
            assert f"<td>accuracy</td><td>{s.metrics['accuracy']:.4f}</td>" in f.read()


@pytest.mark.slow
def test_report_has_training_with_epochs_and_mistakes_and_the_card(slice_runs):
    from components.names import TRAINING_FILE
    from test_report import Tables

    result = run_cli("report", "0", "--config", slice_runs.config)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(result.stdout.strip(), encoding="utf-8") as f:
        page = Tables(f.read())
    s = slice_runs.summary(0)
    with open(os.path.join(s.artifacts["Trainer.model_run"], TRAINING_FILE)) as f:
        record = json.load(f)
    _, training = page.rows("training")
    assert training["mode"] == [record["mode"]] and training["training examples"] == [str(record["n_train"])]
    header, *epochs = page.tables["epochs"]
    assert header[:6] == ["phase", "epoch", "loss", "eval loss", "accuracy", "eval accuracy"]
    phases = [p for p in ("phase1", "phase2") if p in record]
    assert len(epochs) == sum(record[p]["epochs"] for p in phases) >= 1
    first = record[phases[0]]["history"]
    assert epochs[0][2:6] == [f"{first[k][0]:.4f}" for k in ("loss", "val_loss", "accuracy", "val_accuracy")]
    assert [r[1] for r in epochs if r[6] == "kept"] == [str(record[p]["best_epoch"]) for p in phases]
    assert page.images["training-curves"].startswith("data:image/png;base64,")
    assert page.rows("knobs")[1]["trainer.seed"] == [str(record["knobs"]["seed"])]

    header, *mistakes = page.tables["mistakes"]
    assert header == ["score", "predicted", "label", "split", "text"]
    scores = [float(r[0]) for r in mistakes]
    assert 1 <= len(mistakes) <= 20 and scores == sorted(scores, reverse=True)
    assert all(r[1] != r[2] and r[3] in ("eval", "test") for r in mistakes)
    note = page.paragraphs["mistakes-note"]
    scored = int(note.split(" rows)")[0].split()[-1])
    assert scored == s.metrics["example_count"]
    # Our scoring agrees with TFMA's on the same rows, to the row.
    accuracy = float(note.split("accuracy ")[1].split()[0])
    assert accuracy == pytest.approx(s.metrics["accuracy"], abs=1.0 / scored + 1e-4)

    _, card_metrics = page.rows("card-metrics")
    assert card_metrics["accuracy"] == [f"{s.metrics['accuracy']:.4f}"]
    assert set(page.rows("card-per-class")[1]) == set(s.per_class)
