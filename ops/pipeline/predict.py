"""`transferline predict`: classify texts, or a whole file, with a model under the TF Serving directory.

A file is streamed: read a batch of rows, run the model's serving_default signature on their texts (raw text
in, as TF Serving runs it), write the rows out with the predictions, and on to the next batch; the memory
is the model's plus one batch, whatever the file's length. A glob of files, or --beam-arg, runs the same
as a Beam job instead (predict_beam.py).
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import sys
import time
from typing import Iterable, Iterator

from components import names
from components.errors import ConfigError, NotFound, UserError
from components.serving_dir import served_versions
from ops.args import add_config_args, config_from, say
from ops.pipeline import prediction_out
from ops.pipeline.table_file import KINDS, TableFile, text_column

BATCH = 256         # rows a model call: big enough to keep TF busy, small enough for bounded memory
BEAM_MODES = ("auto", "always", "never")  # predict.beam (pipelines/config.py)
PROGRESS_S = 10.0   # seconds between progress lines on a long file


def register(sub) -> None:
    p = sub.add_parser("predict", help="classify texts, or a CSV / JSON Lines / text file, with a pushed model")
    add_config_args(p)
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    p.add_argument("--file", metavar="FILE", help="a CSV (with a header), JSON Lines or plain-text file (one text "
                   "a line); - for stdin. Streamed: every input column comes out with predicted_label, "
                   "predicted_score and p_<class>")
    p.add_argument("--text-column", metavar="C", help=f"the column holding the texts (default {names.TEXT})")
    p.add_argument("--format", choices=KINDS, default="auto", help="the file's kind (default: by its extension, "
                   "else its first line)")
    p.add_argument("--out", metavar="FILE", help="write the rows with their predictions to FILE.csv or FILE.jsonl "
                   "(default: stdout, in the input's format)")
    p.add_argument("--version", type=int, metavar="V", help="the served version to use (default: the newest)")
    p.add_argument("--json", action="store_true", help="JSON: one object per text, with all probabilities")
    p.add_argument("--beam-arg", dest="beam_args", action="append", default=[], metavar="ARG",
                   help="run --file (a file or a glob, e.g. 'parts/*.csv') as a Beam job with `run`'s runner "
                        "settings plus this arg (repeatable), e.g. --beam-arg=--runner=FlinkRunner; a glob runs "
                        "on Beam without it (predict.beam)")
    p.set_defaults(func=command)


def command(args) -> int:
    config = config_from(args)
    if _on_beam(config, args):
        from ops.pipeline import predict_beam  # Beam's import (~3 s) only where it runs

        return predict_beam.command(config, args)
    if not args.texts and not args.file:
        raise UserError("nothing to classify: give texts as arguments, or --file FILE (- for stdin)")
    table = TableFile(args.file, args.format) if args.file else None
    if table and table.kind != "text" and args.texts:
        raise UserError(f"give texts as arguments or a {table.kind} file, not both")
    if args.text_column and not table:
        raise UserError("--text-column names a column of --file FILE")
    legacy = not args.out and (table is None or table.kind == "text")  # one line a text, as always
    column = text_column(table, args.text_column) if table else names.TEXT
    input_columns = table.columns if table else [names.TEXT]
    kind = prediction_out.out_format(args.out) if args.out else "jsonl" if args.json else table and table.kind
    model_dir = served_model_dir(config.serving_dir, args.version)
    say(f"model {model_dir}")
    model = Model(model_dir)
    rows = _chain([{names.TEXT: t} for t in args.texts], table.rows() if table else [])
    if legacy:
        for row, label, score, probs in scored(model, rows, column, label="predict"):
            print(json.dumps({"text": row[names.TEXT], "label": label, "score": score,
                              "probabilities": dict(zip(model.classes, map(float, probs)))})
                  if args.json else f"{label}\t{score:.3f}\t{row[names.TEXT]}")
        return 0
    columns = prediction_out.prediction_columns(input_columns, model.classes)
    with _output(args.out) as stream:
        writer = prediction_out.Writer(stream, kind, input_columns, columns)
        n = 0
        for n, result in enumerate(scored(model, rows, column, label="predict"), 1):
            writer.write(*result)
    say(f"{n} row(s) classified" + (f", written to {args.out}" if args.out else ""))
    return 0


def _on_beam(config, args) -> bool:
    """The Beam path (ops/pipeline/predict_beam.py): --beam-arg given, or predict.beam says so."""
    mode = config.predict.beam
    if mode not in BEAM_MODES:
        raise ConfigError(f"predict.beam must be one of {', '.join(BEAM_MODES)}, not '{mode}'")
    if args.beam_args or not args.file:
        return bool(args.beam_args)
    return mode == "always" or (mode == "auto" and glob.has_magic(args.file))


def _chain(first: list, rest: Iterable) -> Iterator:
    yield from first
    yield from rest


@contextlib.contextmanager
def _output(path: str | None):
    """stdout, or `path` written whole or not at all (a partial file, then renamed into place)."""
    if not path:
        yield sys.stdout
        return
    partial = f"{path}.partial"
    try:
        f = open(partial, "w", newline="", encoding="utf-8")
    except OSError as e:
        raise UserError(f"--out {path}: cannot write ({e.strerror})") from None
    try:
        with f:
            yield f
    except BaseException:
        os.remove(partial)
        raise
    os.replace(partial, path)


def served_model_dir(serving_dir: str, version: int | None = None) -> str:
    """<serving_dir>/<version>: the given version, else the newest."""
    versions = served_versions(serving_dir)
    if version is not None and version not in versions:
        raise NotFound(f"--version {version}: no such version under {serving_dir}; there are: "
                       + (", ".join(map(str, versions)) or "none"))
    return os.path.join(serving_dir, str(version)) if version is not None else newest_served_model(serving_dir)


def newest_served_model(serving_dir: str) -> str:
    versions = served_versions(serving_dir)
    if not versions:
        raise NotFound(f"no model has been pushed to {serving_dir} yet; run `transferline run` first "
                       "(or point --set paths.serving_dir=DIR at a TF Serving model directory)")
    return os.path.join(serving_dir, str(versions[-1]))


class Model:
    """A served version's serving_default signature (raw text in), as TF Serving runs it; loaded once."""

    def __init__(self, model_dir: str):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (the transform graph holds SentencePiece ops)

        self._tf = tf
        self._serve = tf.saved_model.load(model_dir).signatures[names.SERVING_DEFAULT]
        out = self._serve(**{names.TEXT: tf.constant([""])})
        self.classes = [c.decode() for c in out[names.CLASSES].numpy()[0]]

    def __call__(self, texts: list[str]):
        """(labels, scores, probabilities[len(texts), len(classes)]) as numpy."""
        out = self._serve(**{names.TEXT: self._tf.constant(texts, dtype=self._tf.string)})
        return ([b.decode() for b in out[names.TOP_CLASS].numpy()], out[names.TOP_SCORE].numpy(),
                out[names.PROBABILITIES].numpy())


def scored(model: Model, rows: Iterable[dict], column: str, batch: int = BATCH, label: str = "") -> Iterator:
    """(row, label, score, probabilities) for each row, the model run a batch at a time; with `label`, a
    progress line on stderr every PROGRESS_S seconds."""
    start = last = time.monotonic()
    done, chunk = 0, []
    for row in rows:
        chunk.append(row)
        if len(chunk) == batch:
            yield from _score(model, chunk, column, done)
            done, chunk = done + len(chunk), []
            if label and time.monotonic() - last >= PROGRESS_S:
                last = time.monotonic()
                say(f"{label}: {done:,} rows, {done / (last - start):,.0f} rows/s")
    if chunk:
        yield from _score(model, chunk, column, done)


def _score(model: Model, chunk: list[dict], column: str, before: int) -> Iterator:
    texts = []
    for i, row in enumerate(chunk):
        text = row.get(column)
        if not isinstance(text, str):
            raise UserError(f"row {before + i + 1} has no text in '{column}' (got {text!r})")
        texts.append(text)
    labels, scores, probabilities = model(texts)
    for i, row in enumerate(chunk):
        yield row, labels[i], float(scores[i]), probabilities[i]


def predict(model_dir: str, texts: list[str]) -> list[dict]:
    """Runs the model's serving_default signature (raw text in), as TF Serving would."""
    model = Model(model_dir)
    return [{"text": row[names.TEXT], "label": label, "score": score,
             "probabilities": dict(zip(model.classes, map(float, probs)))}
            for row, label, score, probs in scored(model, [{names.TEXT: t} for t in texts], names.TEXT)]
