"""`predict --file PATTERN` as a Beam job, on `run`'s runner settings ([beam], --beam-arg): the same reader,
model call and output columns as the in-process path (ops/pipeline/predict.py), spread over workers.

Each matched file is one element (a Reshuffle after the match spreads the files over the workers: a glob
of several files is the parallelism, one file is one worker's). A worker loads the served version once, in
setup(), reads the file with table_file (a CSV's quoted newlines stay in their text) and runs
scoring.scored on its rows, BATCH rows a model call; it emits the formatted rows in records of RECORD
rows, keyed by file and position, written as Beam text shards. The merge then writes --out in input order
(files in path order, each file's rows in order) from an index of the records' offsets: it holds the
index, not the rows. Beam's BatchElements is not used: its batches cross files and bundles and carry no
position, so putting the rows back in order would need a shuffle of every output row; batches made within
a file are contiguous runs of rows and need none.

Inputs and --out are paths every worker can open (this machine's disk for the DirectRunner, a shared
mount for a cluster): table_file opens local paths.
"""
from __future__ import annotations

import glob
import io
import itertools
import json
import logging
import os
import shutil
import time

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.options.pipeline_options import PipelineOptions

from components.errors import UserError
from ops.args import say
from ops.pipeline import prediction_out, scoring
from ops.pipeline.table_file import TableFile, text_column

RECORD = 16 * scoring.BATCH  # rows a written record: few index entries, elements of ~1 MB
HEADER, ROWS, PROBLEM = 0, 1, 2  # record kinds, in the order the merge writes them


def command(config, args) -> int:
    if args.texts:
        raise UserError("the Beam path classifies files only: give TEXT arguments without --beam-arg")
    if not args.file or args.file == "-":
        raise UserError("the Beam path reads --file FILE or a glob (Beam workers cannot read stdin)")
    if not args.out:
        raise UserError("the Beam path writes --out FILE.csv or FILE.jsonl; give one")
    out_kind = prediction_out.out_format(args.out)
    if not os.access(os.path.dirname(os.path.abspath(args.out)), os.W_OK):
        raise UserError(f"--out {args.out}: its folder does not exist or cannot be written")
    paths = sorted(p for p in glob.glob(args.file) if os.path.isfile(p))  # as ReadMatches: folders skipped
    if not paths:
        raise UserError(f"--file {args.file}: no file matches")
    columns, column = _check_files(paths, args.format, args.text_column)
    model_dir = scoring.served_model_dir(config.serving_dir, args.version)
    beam_args = config.beam_pipeline_args()  # unknown size: the DirectRunner's auto picks parallel workers
    say(f"model {model_dir}; Beam job on {len(paths)} file(s): {' '.join(beam_args)}")
    shards = f"{args.out}.shards"
    shutil.rmtree(shards, ignore_errors=True)  # a killed run's
    # The local job service relays each worker's start-up warnings (no semi_persistent_directory, DirectRunner
    # args it discards), harmless here; a worker's errors still show.
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)
    start = time.monotonic()
    try:
        with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
            _ = (p | fileio.MatchFiles(args.file) | beam.Reshuffle() | fileio.ReadMatches()
                 | beam.ParDo(ClassifyFile(model_dir, args.format, column, columns, out_kind))
                 | beam.io.WriteToText(os.path.join(shards, "part")))
        rows = merge(shards, args.out)
    finally:
        shutil.rmtree(shards, ignore_errors=True)
    say(f"{rows} row(s) from {len(paths)} file(s) classified in {time.monotonic() - start:.1f} s on Beam, "
        f"written to {args.out}")
    return 0


def _check_files(paths: list[str], kind: str, column: str | None) -> tuple[list[str], str]:
    """(the first file's columns, the text column); every file has the text column, and a CSV the first's
    header: refused here, before any model loads or job starts."""
    first = None
    for path in paths:
        table = TableFile(path, kind)
        table.close()
        found = text_column(table, column)
        if first is None:
            first = table
        elif table.kind != first.kind or (table.kind == "csv" and table.columns != first.columns):
            raise UserError(f"--file: {path} is not of the same kind and columns as {first.path} "
                            f"({first.kind}: {', '.join(first.columns)}); one job reads files alike")
    return first.columns, found


class ClassifyFile(beam.DoFn):
    """A matched file in; its rows with their predictions out, as records; the model loaded once a worker."""

    def __init__(self, model_dir: str, kind: str, column: str, input_columns: list[str], out_kind: str):
        self._model_dir, self._kind, self._column = model_dir, kind, column
        self._input_columns, self._out_kind = input_columns, out_kind

    def setup(self):
        self._model = scoring.Model(self._model_dir)
        self._buffer = io.StringIO()
        self._writer = prediction_out.Writer(self._buffer, self._out_kind, self._input_columns,
                                             prediction_out.prediction_columns(self._input_columns,
                                                                               self._model.classes))
        self._header = self._take()  # a CSV's header line, written once by the merge

    def _take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text

    def process(self, file):
        path = file.metadata.path
        yield record(HEADER, "", 0, 0, self._header)
        table = TableFile(path, self._kind)
        try:
            results = scoring.scored(self._model, table.rows(), self._column, label=os.path.basename(path))
            for index in itertools.count():
                chunk = list(itertools.islice(results, RECORD))
                if not chunk:
                    break
                for result in chunk:
                    self._writer.write(*result)
                yield record(ROWS, path, index, len(chunk), self._take())
        except UserError as e:  # said by the merge, which then writes nothing
            yield record(PROBLEM, path, 0, 0, str(e) if path in str(e) else f"{path}: {e}")
        finally:
            table.close()


def record(kind: int, path: str, index: int, rows: int, text: str) -> str:
    """One line: its key (JSON, ASCII: no tab), a tab, the text (JSON: its newlines escaped)."""
    return json.dumps([kind, path, index, rows]) + "\t" + json.dumps(text, ensure_ascii=False)


def merge(shards: str, out: str) -> int:
    """The records under `shards` into `out` (predict's all-or-nothing writer), in input order; the rows."""
    index = {}
    for shard in sorted(glob.glob(os.path.join(shards, "part-*"))):
        with open(shard, "rb") as f:
            offset = 0
            for line in f:
                index.setdefault(tuple(json.loads(line[:line.index(b"\t")])), (shard, offset))  # one header a file
                offset += len(line)
    files: dict = {}
    try:
        def text(key):
            shard, offset = index[key]
            f = files.get(shard) or files.setdefault(shard, open(shard, "rb"))
            f.seek(offset)
            return json.loads(f.readline().split(b"\t", 1)[1])

        keys = sorted(index)
        if problems := [k for k in keys if k[0] == PROBLEM]:
            raise UserError(text(problems[0]))
        _check_complete([k for k in keys if k[0] == ROWS])
        with scoring.output(out) as stream:
            for key in keys:
                stream.write(text(key))
    finally:
        for f in files.values():
            f.close()
    return sum(k[3] for k in keys if k[0] == ROWS)


def _check_complete(keys: list[tuple]) -> None:
    """Every file's records numbered 0..n-1: no record lost between the workers and the merge."""
    for path, group in itertools.groupby(keys, key=lambda k: k[1]):
        numbers = [k[2] for k in group]
        if numbers != list(range(len(numbers))):
            missing = sorted(set(range(max(numbers) + 1)) - set(numbers))
            raise RuntimeError(f"the Beam job's output of {path} lacks records {missing}")
