"""Where `predict --file` writes: every input column passed through, then the prediction's own columns.

The prediction columns are predicted_label, predicted_score and p_<class> (one probability a class); should
the input already hold one of those names (a file of earlier predictions scored again), all of them take a
suffix, _2, _3, ..., so that no input column is overwritten.
"""
from __future__ import annotations

import csv
import json
import os

from components.errors import UserError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def prediction_columns(input_columns: list[str], classes: list[str]) -> dict:
    """{"label": name, "score": name, "p": {class: name}}, no name among input_columns."""
    taken = set(input_columns)
    for n in range(1, 1000):
        suffix = "" if n == 1 else f"_{n}"
        cols = {"label": f"predicted_label{suffix}", "score": f"predicted_score{suffix}",
                "p": {c: f"p_{c}{suffix}" for c in classes}}
        if not taken & {cols["label"], cols["score"], *cols["p"].values()}:
            return cols
    raise UserError("the input's columns take every predicted_label_N name; rename them")


def out_format(path: str) -> str:
    kind = FORMATS.get(os.path.splitext(path.lower())[1])
    if not kind:
        raise UserError(f"--out {path}: name it .csv or .jsonl (the format follows the extension)")
    return kind


class Writer:
    """Rows of input columns + predictions, as CSV or JSON Lines, to a stream."""

    def __init__(self, stream, kind: str, input_columns: list[str], columns: dict):
        self.stream, self.kind, self.columns = stream, kind, columns
        if kind == "csv":
            fields = [*input_columns, columns["label"], columns["score"], *columns["p"].values()]
            # Columns are the header's (a JSON Lines input: its first object's keys).
            self._csv = csv.DictWriter(stream, fieldnames=fields, extrasaction="ignore", restval="")
            self._csv.writeheader()

    def write(self, row: dict, label: str, score: float, probabilities) -> None:
        c = self.columns
        out = {**row, c["label"]: label, c["score"]: round(float(score), 6),
               **{name: round(float(p), 6) for name, p in zip(c["p"].values(), probabilities)}}
        if self.kind == "csv":
            self._csv.writerow(out)
        else:
            self.stream.write(json.dumps(out, ensure_ascii=False) + "\n")
