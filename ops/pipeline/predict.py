"""`transferline predict`: classify texts, or a whole file, with a model under the TF Serving directory.

A file is streamed: read a batch of rows, run the model's serving_default signature on their texts (raw text
in, as TF Serving runs it), write the rows out with the predictions, and on to the next batch; the memory
is the model's plus one batch, whatever the file's length. A glob of files, or --beam-arg, runs the same
as a Beam job instead (predict_beam.py).
"""
from __future__ import annotations

import glob
import json
import os
from typing import Iterable, Iterator

from components import names
from components.errors import ConfigError, UserError
from ops.args import add_config_args, config_from, say
from ops.pipeline import prediction_out
from ops.pipeline.scoring import Model, output, scored, served_model_dir
from ops.pipeline.table_file import KINDS, TableFile, text_column

BEAM_MODES = ("auto", "always", "never")  # predict.beam (pipelines/config.py)


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
        hint = " (the shell expanded a glob? quote it: --file 'parts/*.csv')" if os.path.isfile(args.texts[0]) else ""
        raise UserError(f"give texts as arguments or a {table.kind} file, not both{hint}")
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
    with output(args.out) as stream:
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
