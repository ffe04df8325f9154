"""The most confident mistakes of a run's candidate on the gate data, for the report's Training section.

Scored here with the model's serving signature on the gate rows of the run's Examples artifact (the eval split
plus the held-out test set, as the Evaluator reads them): TFX's Evaluator writes TFMA's metrics and plots but no
per-example predictions.
"""
from __future__ import annotations

from components import names


def confident_mistakes(model_uri: str, examples, n: int = 20) -> dict:
    """{"rows": the n wrong predictions with the highest score (score, predicted, label, split, text),
    "scored", "wrong", "accuracy", "splits"}; `model_uri` is the Trainer's Model artifact's."""
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import path_utils

    from components.spans import split_rows
    from ops.pipeline.scoring import Model, scored as score_rows

    artifact = standard_artifacts.Examples()
    artifact.set_mlmd_artifact(examples)
    present = artifact_utils.decode_split_names(artifact.split_names)
    splits = [s for s in names.gate_splits() if s in present]
    rows = ({"split": split, names.TEXT: text, names.LABEL: label}
            for split in splits for text, label in split_rows(artifact, split))
    model = Model(path_utils.serving_model_path(model_uri))
    scored = [{"score": score, "predicted": top, "label": row[names.LABEL], "split": row["split"],
               "text": row[names.TEXT]} for row, top, score, _ in score_rows(model, rows, names.TEXT)]
    wrong = sorted((r for r in scored if r["predicted"] != r["label"]), key=lambda r: -r["score"])
    return {"rows": wrong[:n], "scored": len(scored), "wrong": len(wrong), "splits": splits,
            "accuracy": 1 - len(wrong) / len(scored) if scored else float("nan")}
