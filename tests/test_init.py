"""`transferline init`: a project from one labelled CSV; every refusal is one line and creates nothing.

Unit tier: no pipeline runs (tests/test_own_data.py runs one on an init project)."""
import csv
import os
import shutil

import pytest

from conftest import REPO
from ops.cli import main
from pipelines.config_loading import load_config

TOPICS = os.path.join(REPO, "data", "chatterbot-topics", "prompts.csv")
COLUMNS = ["--text-column", "prompt", "--label-column", "topic"]


def write(path, header, rows, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def rows_of(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def init(capsys, *args):
    rc = main(["init", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_init_makes_a_self_contained_project(tmp_path, capsys):
    project = tmp_path / "topics"
    rc, out, err = init(capsys, project, "--train", TOPICS, *COLUMNS)
    assert rc == 0, err
    train, test = rows_of(project / "data" / "span-1" / "train.csv"), rows_of(project / "data" / "test" / "test.csv")
    source = rows_of(TOPICS)
    assert len(train) + len(test) == len(source) and len(test) == round(0.1 * len(source))
    assert {r["label"] for r in test} == {r["topic"] for r in source}  # stratified: every class held out
    assert sorted((r["text"], r["label"]) for r in train + test) == sorted((r["prompt"], r["topic"]) for r in source)
    from pipelines.pipeline import label_names

    config = load_config(str(project / "transferline.toml"))
    assert label_names(config.paths.schema_file) == ["ai", "coding", "emotion", "psychology", "trivia"]
    assert config.paths.data_dir == str(project / "data") and config.paths.work_dir == str(project / "work")
    assert config.paths.test_data_dir == str(project / "data" / "test")
    assert config.gate.min_accuracy == 0.0 and config.gate.beat_references
    assert f"transferline run --config {project / 'transferline.toml'}" in out
    assert f"transferline predict --config {project / 'transferline.toml'}" in out
    # The same seed holds out the same rows every time.
    init(capsys, tmp_path / "again", "--train", TOPICS, *COLUMNS)
    assert rows_of(tmp_path / "again" / "data" / "test" / "test.csv") == test


def test_relative_paths_follow_the_moved_project_and_the_current_directory_is_searched(tmp_path, capsys, monkeypatch):
    init(capsys, tmp_path / "a", "--train", TOPICS, *COLUMNS)
    shutil.move(str(tmp_path / "a"), str(tmp_path / "b"))
    config = load_config(str(tmp_path / "b" / "transferline.toml"), ["paths.serving_dir=/srv/models"])
    assert config.paths.schema_file == str(tmp_path / "b" / "schema.pbtxt")
    assert config.serving_dir == "/srv/models"  # overrides stay as given
    from ops.args import config_from
    from ops.pipeline.predict import register  # any command's flags

    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    monkeypatch.chdir(tmp_path / "b")
    found = config_from(parser.parse_args(["predict", "x"]))
    assert found.paths.work_dir == str(tmp_path / "b" / "work")


def test_given_test_file_and_delimiter(tmp_path, capsys):
    rows = [(f"text number {i}", "yes" if i % 2 else "no") for i in range(40)]
    train = write(tmp_path / "train.tsv", ["label", "sentence"], [(y, t) for t, y in rows[:30]])
    with open(train, "w") as f:
        f.write("label\tsentence\n" + "".join(f"{y}\t{t}\n" for t, y in rows[:30]))
    test = tmp_path / "test.tsv"
    test.write_text("label\tsentence\n" + "".join(f"{y}\t{t}\n" for t, y in rows[30:]))
    rc, _, err = init(capsys, tmp_path / "p", "--train", train, "--test", test, "--delimiter", "\\t",
                      "--text-column", "sentence")
    assert rc == 0, err
    assert len(rows_of(tmp_path / "p" / "data" / "test" / "test.csv")) == 10
    assert rows_of(tmp_path / "p" / "data" / "span-1" / "train.csv")[0] == {"text": "text number 0", "label": "no"}


def test_warns_on_imbalance_and_on_texts_in_both_train_and_test(tmp_path, capsys):
    train = write(tmp_path / "t.csv", ["text", "label"], [(f"a{i}", "big") for i in range(200)]
                  + [(f"b{i}", "small") for i in range(12)])
    test = write(tmp_path / "u.csv", ["text", "label"], [("a1", "big"), ("b1", "small"), ("new", "big")])
    rc, _, err = init(capsys, tmp_path / "p", "--train", train, "--test", test)
    assert rc == 0
    assert "warning: strong class imbalance: 'big' has 200 rows, 'small' 12" in err
    assert "warning: 2 test text(s) also appear in the training rows" in err


BAD = {
    "missing column": (["prompt", "topic"], [("hi", "a")] * 20, [],
                       "has no column 'text' or 'label'; columns found: 'prompt', 'topic'"),
    "one class": (["text", "label"], [(f"t{i}", "a") for i in range(20)], [], "only one class ('a', 20 rows)"),
    "class too small": (["text", "label"], [(f"t{i}", "a") for i in range(20)] + [("x", "b"), ("y", "b")], [],
                        "class 'b' has 2 row(s); each class needs at least 10 (--min-class-rows)"),
    "ragged row": (["text", "label"], [(f"t{i}", "a", "extra") for i in range(2)], [],
                   "2 row(s) do not have 2 fields (first at line 2)"),
    "empty label": (["text", "label"], [("t", "")], [], "1 row(s) have an empty text or label (first at line 2)"),
    "wrong delimiter": (["text;label"], [("t;a",)], [], "(the file seems to use ';': give --delimiter ';')"),
    "unknown test label": (["text", "label"], [(f"t{i}", "ab"[i % 2]) for i in range(40)],
                           ["--test", "TEST"], "label(s) 'c' never occur in"),
    "bad fraction": (["text", "label"], [(f"t{i}", "ab"[i % 2]) for i in range(40)], ["--test-fraction", "0.02"],
                     "cannot hold out a stratified 2% test set"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_refusals_are_one_line_and_create_nothing(tmp_path, capsys, case):
    header, rows, extra, message = BAD[case]
    train = write(tmp_path / "in.csv", header, rows)
    write(tmp_path / "test.csv", ["text", "label"], [("u", "c"), ("v", "a")])
    extra = [str(tmp_path / "test.csv") if a == "TEST" else a for a in extra]
    rc, out, err = init(capsys, tmp_path / "p", "--train", train, *extra)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("transferline: error: ") and message in err, err
    assert not (tmp_path / "p").exists()


def test_not_utf8_is_named_as_the_data_contract_names_it(tmp_path, capsys):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\u00e9 noir,a\n".encode("latin-1"))
    rc, _, err = init(capsys, tmp_path / "p", "--train", path)
    assert rc == 2 and err.count("\n") == 1
    assert "is not UTF-8 text: byte 0xe9 at line 2; save the file as UTF-8" in err
    assert not (tmp_path / "p").exists()


def test_an_existing_project_is_refused_without_force_and_replaced_with_it(tmp_path, capsys):
    assert init(capsys, tmp_path / "p", "--train", TOPICS, *COLUMNS)[0] == 0
    (tmp_path / "p" / "work").mkdir()
    before = (tmp_path / "p" / "transferline.toml").read_text()
    other = write(tmp_path / "o.csv", ["text", "label"], [(f"t{i}", "xy"[i % 2]) for i in range(40)])
    rc, _, err = init(capsys, tmp_path / "p", "--train", other)
    assert rc == 2 and "already holds a project" in err and err.count("\n") == 1
    assert (tmp_path / "p" / "transferline.toml").read_text() == before
    assert init(capsys, tmp_path / "p", "--train", other, "--force")[0] == 0
    assert {r["label"] for r in rows_of(tmp_path / "p" / "data" / "span-1" / "train.csv")} == {"x", "y"}
    assert (tmp_path / "p" / "work").is_dir()  # the runs' history is kept
