"""`predict --file`: CSV / JSON Lines / plain text in, every input column plus the predictions out, streamed.

Unit: reading the kinds (the header is never a row), column errors, output column names. Slow: the CLI on
the shared slice run's served model (conftest.slice_runs): the TREC test CSV, plain text as before, and
memory that does not grow with the file.
"""
import csv
import json
import os
import re
import subprocess
import sys

import pytest

from components.errors import UserError
from conftest import REPO, TEST_CSV, read_rows, run_cli
from ops.pipeline.prediction_out import Writer, out_format, prediction_columns
from ops.pipeline.table_file import TableFile, text_column


def _write(path, text, mode="w"):
    with open(path, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
        f.write(text)
    return str(path)


# ---------------------------------------------------------------------------------------- reading
def test_csv_header_is_never_a_row_and_quoted_newlines_stay_in_one_text(tmp_path):
    path = _write(tmp_path / "q.csv", '\ufefftext,label\n"one, with a comma",A\n"two\nlines",B\n\nthree\n')
    table = TableFile(path)
    assert (table.kind, table.columns) == ("csv", ["text", "label"])  # the BOM is not part of the first name
    assert list(table.rows()) == [{"text": "one, with a comma", "label": "A"}, {"text": "two\nlines", "label": "B"},
                                  {"text": "three", "label": ""}]


def test_the_kind_comes_from_the_extension_else_the_first_line(tmp_path):
    jsonl = _write(tmp_path / "q", '{"text": "a", "id": 1}\n\n{"text": "b", "id": 2}\n')
    assert TableFile(jsonl).kind == "jsonl" and TableFile(jsonl).columns == ["text", "id"]
    assert [r["id"] for r in TableFile(jsonl).rows()] == [1, 2]
    plain = _write(tmp_path / "p", "text,label\nWho wrote Hamlet ?\n\n")
    # A headerless text with a comma is not taken for a CSV: every non-blank line is a text, as always.
    assert TableFile(plain).kind == "text"
    assert [r["text"] for r in TableFile(plain).rows()] == ["text,label", "Who wrote Hamlet ?"]
    assert TableFile(plain, "csv").columns == ["text", "label"]
    assert TableFile(_write(tmp_path / "t.tsv", "id\ttext\n1\ta, b\n")).columns == ["id", "text"]


def test_a_missing_text_column_names_the_file_s_columns(tmp_path):
    table = TableFile(_write(tmp_path / "q.csv", "question,topic\nWho ?,HUM\n"))
    with pytest.raises(UserError, match=r"no column 'text' \(the default.*--text-column; its columns: question, topic"):
        text_column(table, None)
    assert text_column(table, "question") == "question"
    with pytest.raises(UserError, match="plain text"):
        text_column(TableFile(_write(tmp_path / "p.txt", "a\n")), "question")


@pytest.mark.parametrize("content, message", [
    (b"text\n\xff\xfe bad\n", "not UTF-8"),
    (b"text,label\na,b,c\n", "line 2 has 3 fields, the header 2"),
])
def test_bad_csv_files_are_user_errors(tmp_path, content, message):
    with pytest.raises(UserError, match=message):
        list(TableFile(_write(tmp_path / "q.csv", content, "wb")).rows())


def test_bad_json_lines_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="line 2 is not JSON"):
        list(TableFile(_write(tmp_path / "q.jsonl", '{"text": "a"}\n{"text": \n')).rows())
    with pytest.raises(UserError, match="line 1 is not a JSON object"):
        TableFile(_write(tmp_path / "r.jsonl", '["a"]\n'))
    with pytest.raises(UserError, match="no such file"):
        TableFile(str(tmp_path / "missing.csv"))


# ---------------------------------------------------------------------------------------- writing
def test_prediction_columns_never_take_an_input_column():
    assert prediction_columns(["text", "label"], ["A", "B"]) == {
        "label": "predicted_label", "score": "predicted_score", "p": {"A": "p_A", "B": "p_B"}}
    again = prediction_columns(["text", "predicted_label", "predicted_score", "p_A", "p_B"], ["A", "B"])
    assert again["label"] == "predicted_label_2" and again["p"] == {"A": "p_A_2", "B": "p_B_2"}
    with pytest.raises(UserError, match=r"\.csv or \.jsonl"):
        out_format("out.parquet")
    assert out_format("x.JSONL") == "jsonl"


def test_writer_passes_every_input_column_through(tmp_path):
    import io

    columns = prediction_columns(["id", "text"], ["A", "B"])
    buffer = io.StringIO()
    writer = Writer(buffer, "csv", ["id", "text"], columns)
    writer.write({"id": "7", "text": "x, y"}, "B", 0.75, [0.25, 0.75])
    assert buffer.getvalue().splitlines() == ["id,text,predicted_label,predicted_score,p_A,p_B",
                                              '7,"x, y",B,0.75,0.25,0.75']
    buffer = io.StringIO()
    Writer(buffer, "jsonl", ["id", "text"], columns).write({"id": 7, "text": "x"}, "A", 0.5, [0.5, 0.5])
    assert json.loads(buffer.getvalue()) == {"id": 7, "text": "x", "predicted_label": "A", "predicted_score": 0.5,
                                             "p_A": 0.5, "p_B": 0.5}


def test_a_missing_text_column_fails_before_any_model_loads(tmp_path, capsys):
    """Exit 2 naming the columns, even with no model pushed anywhere."""
    from ops import cli

    path = _write(tmp_path / "q.csv", "question,topic\nWho ?,HUM\n")
    assert cli.main(["predict", "--file", path, "--work-dir", str(tmp_path / "work")]) == 2
    assert "its columns: question, topic" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- the CLI, a real model
@pytest.mark.slow
def test_predict_file_writes_the_input_columns_plus_predictions(slice_runs, tmp_path):
    out = tmp_path / "predictions.csv"
    result = run_cli("predict", "--config", slice_runs.config, "--file", TEST_CSV, "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    rows, given = read_rows(out), read_rows(TEST_CSV)
    classes = sorted(c[2:] for c in rows[0] if c.startswith("p_"))
    assert list(rows[0])[:4] == ["text", "label", "predicted_label", "predicted_score"]
    assert classes == sorted({r["label"] for r in given})
    # Every input row once, in order, its columns unchanged; the header `text,label` was never scored.
    assert [(r["text"], r["label"]) for r in rows] == [(r["text"], r["label"]) for r in given]
    for r in rows:
        p = {c: float(r[f"p_{c}"]) for c in classes}
        assert abs(sum(p.values()) - 1) < 1e-4
        assert r["predicted_label"] == max(p, key=p.get) and float(r["predicted_score"]) == max(p.values())
    assert "500 row(s) classified" in result.stderr
    accuracy = sum(r["predicted_label"] == r["label"] for r in rows) / len(rows)
    assert accuracy > 0.6  # a trained model, not noise (the slice model: ~0.84 on these)

    # The same file as JSON Lines, on stdout: the same predictions.
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in given[:20]), encoding="utf-8")
    result = run_cli("predict", "--config", slice_runs.config, "--file", str(jsonl))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["predicted_label"] for r in lines] == [r["predicted_label"] for r in rows[:20]]

    # A bad row far into the file: exit 2 naming it, and no output file, not even a partial one.
    with open(jsonl, "a", encoding="utf-8") as f:
        f.write("{not json\n")
    out = tmp_path / "never.csv"
    result = run_cli("predict", "--config", slice_runs.config, "--file", str(jsonl), "--out", str(out))
    assert result.returncode == 2 and "line 21 is not JSON" in result.stderr, result.stderr[-3000:]
    assert not out.exists() and not os.path.exists(f"{out}.partial")


@pytest.mark.slow
def test_plain_text_keeps_one_line_a_text(slice_runs, tmp_path):
    path = _write(tmp_path / "q.txt", "Who wrote Hamlet ?\n\nHow far is Denver from Aspen ?\n")
    result = run_cli("predict", "--config", slice_runs.config, "--file", path, "extra text")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [line[2] for line in lines] == ["extra text", "Who wrote Hamlet ?", "How far is Denver from Aspen ?"]
    assert all(0 < float(line[1]) <= 1 for line in lines)


def _peak_rss_kb(config, path, out):
    """Peak RSS of one `predict --file` in a fresh interpreter (its own getrusage, no other process counted)."""
    code = ("import resource, sys; from ops.cli import main; "
            f"rc = main(['predict', '--config', {config!r}, '--file', {path!r}, '--out', {out!r}]); "
            "print('maxrss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_USE_LEGACY_KERAS": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return int(result.stderr.rsplit("maxrss", 1)[1].split()[0])


@pytest.mark.slow
def test_memory_does_not_grow_with_the_file(slice_runs, tmp_path):
    """10x the rows, about the same peak memory: batches of 256 are scored and written, never the whole file.
    (The model run on all 8,000 texts in one call peaks 1.5 GB above 800 in one call; docs/batch.md has the
    100k-row figures.)"""
    given = read_rows(TEST_CSV)
    sizes = {}
    for n in (800, 8000):
        path = tmp_path / f"q{n}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(given[i % len(given)] for i in range(n))
        sizes[n] = _peak_rss_kb(slice_runs.config, str(path), str(tmp_path / f"out{n}.csv"))
        assert len(read_rows(tmp_path / f"out{n}.csv")) == n
    assert sizes[8000] - sizes[800] < 100_000, sizes  # KB: growth far below what 7,200 more rows at once take


# ---------------------------------------------------------------------------------------- the Beam path
def _beam_cli(tmp_path, *args):
    """`predict` in this process (no model is reached): (exit code, stderr)."""
    from ops import cli

    return cli.main(["predict", "--work-dir", str(tmp_path / "work"), *args])


def test_beam_runs_for_a_glob_or_beam_arg_else_in_process(tmp_path):
    import argparse

    from components.errors import ConfigError
    from ops.pipeline.predict import _on_beam
    from pipelines.config import Config

    def on(mode, file, beam_args=()):
        config = Config()
        config.predict.beam = mode
        return _on_beam(config, argparse.Namespace(file=file, beam_args=list(beam_args)))

    assert [on("auto", "q.csv"), on("auto", "parts/*.csv"), on("auto", "q.csv", ["--runner=FlinkRunner"])] == [
        False, True, True]
    assert [on("never", "parts/*.csv"), on("never", "q.csv", ["--x"]), on("always", "q.csv"), on("always", None)] == [
        False, True, True, False]
    with pytest.raises(ConfigError, match="predict.beam must be one of auto, always, never"):
        on("sometimes", "q.csv")


def test_the_beam_path_refuses_before_any_model_or_job(tmp_path, capsys):
    parts = tmp_path / "parts"
    parts.mkdir()
    _write(parts / "a.csv", "text,label\nWho ?,HUM\n")
    _write(parts / "b.csv", "question,label\nWhere ?,LOC\n")
    out = str(tmp_path / "p.csv")
    for args, message in (
            (["--file", str(parts / "a.csv"), "--beam-arg=--runner=DirectRunner"], "writes --out FILE.csv"),
            (["--file", "-", "--beam-arg=--x", "--out", out], "cannot read stdin"),
            (["--file", str(parts / "*.csv"), "--out", out, "extra text"], "files only"),
            (["--file", str(tmp_path / "none-*.csv"), "--out", out], "no file matches"),
            (["--file", str(parts / "*.csv"), "--out", str(tmp_path / "no" / "p.csv")], "cannot be written"),
            # Every file is checked for its text column: b.csv's columns are named.
            (["--file", str(parts / "*.csv"), "--out", out], "b.csv has no column 'text'.*its columns: question"),
            (["--file", str(parts / "*.csv"), "--out", out, "--text-column", "question"], "a.csv has no column"),
    ):
        assert _beam_cli(tmp_path, *args) == 2, args
        assert re.search(message, capsys.readouterr().err), (args, message)
    # The shell expanded an unquoted glob: a file, then the others as TEXT arguments.
    assert _beam_cli(tmp_path, "--file", str(parts / "a.csv"), str(parts / "b.csv"), "--out", out) == 2
    assert "quote it: --file 'parts/*.csv'" in capsys.readouterr().err
    _write(parts / "b.csv", "text,label,id\nWhere ?,LOC,1\n")
    assert _beam_cli(tmp_path, "--file", str(parts / "*.csv"), "--out", out) == 2
    assert "not of the same kind and columns" in capsys.readouterr().err
    assert not os.path.exists(out) and not os.path.exists(f"{out}.shards")


def test_merge_writes_records_in_input_order_once(tmp_path):
    from ops.pipeline.predict_beam import HEADER, PROBLEM, ROWS, merge, record

    shards = tmp_path / "shards"
    shards.mkdir()
    # Two workers' shards, records in any order; the header once a file, identical.
    _write(shards / "part-00000-of-00002", "\n".join([
        record(ROWS, "/d/b.csv", 0, 2, "b0\nb1\n"), record(HEADER, "", 0, 0, "h\n"),
        record(ROWS, "/d/a.csv", 1, 1, '"a\t2\nstill a2"\n')]) + "\n")
    _write(shards / "part-00001-of-00002", "\n".join([
        record(HEADER, "", 0, 0, "h\n"), record(ROWS, "/d/a.csv", 0, 2, "a0\na1\n")]) + "\n")
    out = tmp_path / "out.csv"
    assert merge(str(shards), str(out)) == 5
    assert out.read_text(encoding="utf-8") == 'h\na0\na1\n"a\t2\nstill a2"\nb0\nb1\n'

    _write(shards / "part-00001-of-00002", record(ROWS, "/d/a.csv", 2, 1, "a2\n") + "\n")  # a.csv's 0 lost
    with pytest.raises(RuntimeError, match=r"/d/a.csv lacks records \[0\]"):
        merge(str(shards), str(tmp_path / "never.csv"))
    _write(shards / "part-00001-of-00002", record(PROBLEM, "/d/a.csv", 0, 0, "/d/a.csv: line 9 is not JSON") + "\n")
    with pytest.raises(UserError, match="line 9 is not JSON"):
        merge(str(shards), str(tmp_path / "never.csv"))
    assert not (tmp_path / "never.csv").exists() and not (tmp_path / "never.csv.partial").exists()


def _split_test_csv(tmp_path):
    """The TREC test CSV plus a text with a quoted newline, whole (all.csv) and split in two (parts/)."""
    rows = [{"text": r["text"], "label": r["label"]} for r in read_rows(TEST_CSV)]
    rows.append({"text": "Who wrote\n`` Hamlet '' , the play ?", "label": "HUM"})
    (tmp_path / "parts").mkdir()
    for name, part in (("all.csv", rows), ("parts/q-0.csv", rows[:250]), ("parts/q-1.csv", rows[250:])):
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(part)
    return rows


def _same_predictions(ref, got):
    """Every row once, in order, columns unchanged; the same labels, probabilities to the 6th decimal (batches
    are formed per file on Beam: a text's batch-mates change float32 sums in the last place)."""
    assert len(got) == len(ref) and list(got[0]) == list(ref[0])
    assert [(r["text"], r["label"], r["predicted_label"]) for r in got] == [
        (r["text"], r["label"], r["predicted_label"]) for r in ref]
    worst = max(abs(float(a[c]) - float(b[c])) for a, b in zip(ref, got) for c in a
                if c.startswith(("p_", "predicted_score")))
    assert worst <= 2e-6, worst


@pytest.mark.slow
def test_beam_path_gives_the_in_process_predictions(slice_runs, tmp_path):
    """A glob of 2 files on the DirectRunner's parallel workers (2 processes, a model each): the same rows
    and predictions as the whole file in process, the quoted newline kept in its text."""
    rows = _split_test_csv(tmp_path)
    ref = run_cli("predict", "--config", slice_runs.config, "--file", str(tmp_path / "all.csv"),
                  "--out", str(tmp_path / "ref.csv"))
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = tmp_path / "beam.csv"
    result = run_cli("predict", "--config", slice_runs.config, "--file", str(tmp_path / "parts" / "*.csv"),
                     "--out", str(out), "--set", "beam.direct_running_mode=multi_processing",
                     "--set", "beam.direct_num_workers=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--direct_running_mode=multi_processing" in result.stderr
    assert re.search(r"501 row\(s\) from 2 file\(s\) classified in [\d.]+ s on Beam", result.stderr), result.stderr
    got = read_rows(out)
    assert got[-1]["text"] == rows[-1]["text"]
    _same_predictions(read_rows(tmp_path / "ref.csv"), got)
    assert sorted(os.listdir(tmp_path)) == ["all.csv", "beam.csv", "parts", "ref.csv"]  # no shards, no partial


@pytest.mark.slow
def test_a_bad_row_on_beam_names_its_file_and_writes_nothing(slice_runs, tmp_path):
    (tmp_path / "in").mkdir()
    _write(tmp_path / "in" / "a.jsonl", '{"text": "Who wrote Hamlet ?"}\n')
    _write(tmp_path / "in" / "b.jsonl", '{"text": "Where is Aspen ?"}\n{"text": \n')
    out = tmp_path / "p.jsonl"
    result = run_cli("predict", "--config", slice_runs.config, "--file", str(tmp_path / "in" / "*.jsonl"),
                     "--out", str(out), "--set", "beam.direct_running_mode=in_memory")
    assert result.returncode == 2 and re.search(r"b\.jsonl: line 2 is not JSON", result.stderr), result.stderr[-3000:]
    assert os.listdir(tmp_path) == ["in"]


@pytest.mark.slow
def test_beam_path_through_a_job_service_and_worker_pool(slice_runs, tmp_path):
    """--beam-arg for Beam's portability path (bench/portable.py), as Flink and Spark run Python: the same
    output, the model loaded by the pool's SDK workers."""
    from bench import portable

    _split_test_csv(tmp_path)
    ref = run_cli("predict", "--config", slice_runs.config, "--file", str(tmp_path / "all.csv"),
                  "--out", str(tmp_path / "ref.jsonl"))
    with portable.services() as beam:
        result = run_cli("predict", "--config", slice_runs.config, "--file", str(tmp_path / "parts" / "*.csv"),
                         "--out", str(tmp_path / "beam.jsonl"), *[f"--beam-arg={a}" for a in beam.args])
        workers = beam.workers_started()
    assert ref.returncode == 0 and result.returncode == 0, result.stderr[-3000:]
    assert workers >= 1
    _same_predictions(*[[json.loads(line) for line in open(tmp_path / f, encoding="utf-8")]
                        for f in ("ref.jsonl", "beam.jsonl")])
