"""Issue 30, items 6 and 7, fast: what an operator can cause ends in one line and an exit code other than 1
(no traceback): one class, a full disk (a real RLIMIT_FSIZE write failure, and an injected ENOSPC), an
unusable --work-dir, a missing data dir said before TFX starts, broken symbolic links, duplicate or 1,000
columns, NUL bytes, a ';' or tab file at init, a run-away text cell; quoted newlines are accepted and counted.
"""
import errno
import os
import subprocess
import sys
import time

import pytest

from components import csv_checks
from components.errors import DataRejected, StorageError, format_problems

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(capsys, *argv):
    from ops import cli as cli_module

    code = cli_module.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, expected_code=2):
    """One line besides the progress lines ("[transferline] ..."), no traceback."""
    assert code == expected_code, err
    lines = [line for line in err.splitlines() if not line.startswith("[transferline]")]
    assert len(lines) == 1 and lines[0].startswith("transferline: error: "), err
    assert "Traceback" not in err and "__problems__" not in err


# ---------------------------------------------------------------------------------------- the CSV contract
def test_nul_bytes_are_refused_with_their_line():
    (p,) = csv_checks.diagnose_bytes("s/q.csv", b"text,label\nWho ?,HUM\nWh\x00ere ?,LOC\n")
    assert "holds 1 NUL byte(s) (first at line 3)" in p["problem"]


def test_quoted_newlines_are_accepted_and_counted():
    raw = b'text,label\n"Who wrote\nHamlet ?",HUM\nWhere ?,LOC\n'
    assert csv_checks.diagnose_bytes("q.csv", raw) == []
    assert csv_checks.with_line_breaks(["Who wrote\nHamlet ?", "Where ?", "a\r\nb"]) == 2


def test_a_duplicate_column_is_refused_by_name():
    (p,) = csv_checks.diagnose_bytes("q.csv", b"text,label,label\nWho ?,HUM,LOC\n")
    assert "has column(s) ['label'] more than once" in p["problem"]


def test_a_thousand_column_rejection_stays_short():
    header = "text,label," + ",".join(f"c{i}" for i in range(1000))
    (p,) = csv_checks.diagnose_bytes("q.csv", (header + "\n" + "x," * 1001 + "y\n").encode())
    assert "unexpected column(s) ['c0', 'c1'," in p["problem"] and "... and 990 more]" in p["problem"]
    assert len(p["problem"]) < 600, len(p["problem"])
    problems = [csv_checks.problem(f"feature 'c{i}'", "New column: the column is in the data but not in the schema")
                for i in range(1000)]
    text = format_problems(problems)
    assert len(text.splitlines()) == 21 and text.endswith("... and 980 more problem(s) like these")


def test_one_class_to_train_on_is_a_contract_problem():
    from components.data_gate import split_problems

    rows = {"train": [("Who ?", "HUM"), ("Whom ?", "HUM")], "eval": [("Where ?", "LOC")]}
    found, _ = split_problems(rows, 1000, 0.2, 0.05)
    assert [p["where"] for p in found] == ["feature 'label' (train split)"]
    assert "only one class, 'HUM' (2 row(s))" in found[0]["problem"]
    rows["train"].append(("Where is it ?", "LOC"))
    assert split_problems(rows, 1000, 0.2, 0.05)[0] == []  # control: two classes


def test_the_cli_never_shows_the_runners_problem_marker(capsys):
    rejected = DataRejected([csv_checks.problem("q.csv", "is bad", ["x"])])
    assert "__problems__=" in str(rejected) and DataRejected.from_message(str(rejected)).problems == rejected.problems
    assert "__problems__" not in rejected.shown() and "q.csv: is bad" in rejected.shown()


# ---------------------------------------------------------------------------------------- storage
def test_a_full_disk_is_found_however_it_is_wrapped():
    direct = StorageError.from_exception(OSError(errno.ENOSPC, "No space left on device", "/w/x.tfrecord"))
    assert str(direct).startswith("cannot write /w/x.tfrecord: the disk is full; ") and "MiB free there now" in str(
        direct)
    flattened = RuntimeError("OSError: [Errno 28] No space left on device: '/w/Transform/7/x' [while running 'W']")
    assert "cannot write /w/Transform/7/x: the disk is full" in str(StorageError.from_exception(flattened))
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded", "/w/y")
        except OSError as e:
            raise ValueError("a runner's wrapper") from e
    except ValueError as wrapped:
        assert "the disk quota is exhausted" in str(StorageError.from_exception(wrapped))
    assert StorageError.from_exception(ValueError("a bug")) is None
    assert StorageError.from_exception(OSError(errno.ENOENT, "No such file", "/x")) is None


def test_an_injected_enospc_during_a_command_is_one_line(capsys, monkeypatch, tmp_path):
    from ops.pipeline import init

    def full(*_, **__):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "p" / "data" / "span-1" / "train.csv"))

    monkeypatch.setattr(init, "_write_csv", full)
    train = tmp_path / "in.csv"
    train.write_text("text,label\n" + "".join(f"Who is {i} ?,HUM\nWhere is {i} ?,LOC\n" for i in range(30)))
    code, _, err = cli(capsys, "init", str(tmp_path / "p"), "--train", str(train))
    one_line_error(code, err)
    assert "train.csv: the disk is full;" in err and "MiB free there now" in err


def test_a_real_write_over_the_file_size_limit_is_one_line(tmp_path):
    """RLIMIT_FSIZE makes the kernel fail the write itself (EFBIG; SIGXFSZ ignored, as a shell's ulimit -f
    with a trap does): the nearest unprivileged stand-in for a full disk."""
    import resource
    import signal

    train = tmp_path / "in.csv"
    train.write_text("text,label\n" + "".join(f"Who is person number {i} ?,HUM\nWhere is place {i} ?,LOC\n"
                                              for i in range(2000)))

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    result = subprocess.run([sys.executable, "-m", "ops.cli", "init", str(tmp_path / "p"), "--train", str(train)],
                            capture_output=True, text=True, cwd=REPO, preexec_fn=limit, timeout=120)
    assert result.returncode == 2, result.stderr
    one_line_error(result.returncode, result.stderr)
    assert "the file is over the size limit (ulimit -f)" in result.stderr and "train.csv" in result.stderr


@pytest.mark.parametrize("where", ["file", "proc", "readonly"])
def test_an_unusable_work_dir_is_one_line(where, capsys, monkeypatch, tmp_path):
    (tmp_path / "f").write_text("a regular file")
    data = tmp_path / "data" / "span-1"
    data.mkdir(parents=True)
    (data / "q.csv").write_text("text,label\nWho ?,HUM\n")
    work = {"file": str(tmp_path / "f" / "work"), "proc": "/proc/no-such-pid/work",
            "readonly": str(tmp_path / "ro")}[where]
    if where == "readonly":  # root ignores permissions: the kernel's answer on a read-only mount, injected
        def read_only(path, *_, **__):
            raise OSError(errno.EROFS, "Read-only file system", path)

        monkeypatch.setattr(os, "makedirs", read_only)
    code, _, err = cli(capsys, "run", "--data", str(tmp_path / "data"), "--work-dir", work)
    one_line_error(code, err)
    assert {"file": "cannot be made or written: Not a directory", "proc": "No such file or directory (/proc/",
            "readonly": "the file system is read-only; choose a writable --work-dir"}[where] in err, err


# ---------------------------------------------------------------------------------------- before TFX starts
def test_a_missing_data_dir_is_said_in_seconds(tmp_path):
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "ops.cli", "run", "--data", str(tmp_path / "nope"),
                             "--work-dir", str(tmp_path / "w")], capture_output=True, text=True, cwd=REPO,
                            timeout=120)
    seconds = time.monotonic() - started
    one_line_error(result.returncode, result.stderr)
    assert f"the data dir (paths.data_dir, --data) {tmp_path / 'nope'} does not exist" in result.stderr
    assert seconds < 5, seconds
    assert not (tmp_path / "w").exists()  # nothing made for a run that cannot start


def test_a_missing_test_dir_and_spans_without_data_are_said_before_tfx(capsys, tmp_path):
    (tmp_path / "data" / "span-1").mkdir(parents=True)
    code, _, err = cli(capsys, "run", "--data", str(tmp_path / "data"), "--work-dir", str(tmp_path / "w"))
    one_line_error(code, err)
    assert "no span-N/ folder with a file matching '*.csv'" in err and "skipped span-1/" in err
    (tmp_path / "data" / "span-1" / "q.csv").write_text("text,label\nWho ?,HUM\n")
    code, _, err = cli(capsys, "run", "--data", str(tmp_path / "data"), "--work-dir", str(tmp_path / "w"),
                       "--set", f"paths.test_data_dir={tmp_path / 'test'}")
    one_line_error(code, err)
    assert f"the test set dir (paths.test_data_dir) {tmp_path / 'test'} does not exist" in err


def test_broken_symbolic_links_are_refused_not_skipped(capsys, tmp_path):
    """A span file or span folder that is a dangling link: refused by name (exit 3) before TFX, where it was
    silently no span (a folder) or failed deep inside the ExampleGen (a file)."""
    data = tmp_path / "data"
    (data / "span-1").mkdir(parents=True)
    (data / "span-1" / "q.csv").write_text("text,label\nWho ?,HUM\n")
    (data / "span-2").mkdir()
    (data / "span-2" / "b.csv").symlink_to(tmp_path / "gone.csv")
    (data / "span-3").symlink_to(tmp_path / "gone-folder")
    code, _, err = cli(capsys, "run", "--data", str(data), "--work-dir", str(tmp_path / "w"))
    assert code == 3 and "Traceback" not in err and "__problems__" not in err
    assert f"{data / 'span-2' / 'b.csv'}: is a broken symbolic link (to {tmp_path / 'gone.csv'}" in err
    assert f"{data / 'span-3'}: is a broken symbolic link" in err


# ---------------------------------------------------------------------------------------- init
def _rows(n=30):
    return "".join(f"Who is {i} ?,HUM\nWhere is {i} ?,LOC\n" for i in range(n))


@pytest.mark.parametrize("case", ["semicolon", "tab", "duplicate label", "nul", "runaway cell"])
def test_init_refuses_in_one_line(case, capsys, tmp_path):
    train = tmp_path / "in.csv"
    content, expected = {
        "semicolon": ("prompt;topic\n" + "".join(f"hello, {i};a\nbye {i};b\n" for i in range(20)),
                      "(the file seems to use ';': give --delimiter ';')"),
        "tab": ("prompt\ttopic\n" + "".join(f"hello, {i}\ta\nbye {i}\tb\n" for i in range(20)),
                "(the file seems to use '\\t': give --delimiter '\\t')"),
        "duplicate label": ("text,label,label\n" + "".join(f"Who is {i} ?,HUM,LOC\n" for i in range(30)),
                            "has the column(s) 'label' more than once"),
        "nul": ("text,label\n" + _rows() + "Wh\x00o ?,HUM\n", "holds 1 NUL byte(s) (first at line 62)"),
        "runaway cell": ('text,label\n' + _rows() + '"' + "why " * 500_001 + '?",HUM\n',
                         "1 text(s) longer than 100,000 characters (the longest 2,000,005; first at row 62): "
                         "an unclosed quote"),
    }[case]
    train.write_text(content)
    args = ["--text-column", "prompt", "--label-column", "topic"] if case in ("semicolon", "tab") else []
    code, _, err = cli(capsys, "init", str(tmp_path / "p"), "--train", str(train), *args)
    one_line_error(code, err)
    assert expected in err, err
    assert not (tmp_path / "p").exists()


def test_init_says_what_it_adopts_quoted_newlines_and_a_raised_text_limit(capsys, tmp_path):
    train = tmp_path / "in.csv"
    train.write_text('text,label\n"Who wrote\nHamlet ?",HUM\n"' + "long " * 600 + '",LOC\n' + _rows())
    code, _, err = cli(capsys, "init", str(tmp_path / "p"), "--train", str(train))
    assert code == 0, err
    assert "note: 1 text(s) hold line breaks (quoted newlines in the CSV): kept as they are" in err
    assert "note: the longest text has 2,999 characters: contract.max_text_chars raised to it" in err
    assert "max_text_chars = 2999" in (tmp_path / "p" / "transferline.toml").read_text()
