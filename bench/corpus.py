"""The bench corpus: N distinct labelled texts made of TREC's own training questions, recombined.

Each text is two real questions of the same coarse class joined by "and" (the first without its
closing "?"), e.g. "Who was Galileo and Who invented the telephone ?" (HUM + HUM). The label is that
shared class, so the texts stay learnable, and every text is distinct (5,452 questions give ~5 million
same-class pairs).
Reproducible: the same (n, seed) gives the same file, row for row; pairs are drawn with the class mix of
TREC itself. Only the shipped data is read; nothing is downloaded.

    python bench/corpus.py 100000 /tmp/corpus-100k      # writes /tmp/corpus-100k/span-1/questions.csv
"""
from __future__ import annotations

import argparse
import csv
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
TREC = os.path.join(HERE, "..", "data", "trec", "span-1", "questions.csv")


def texts(n: int, seed: int = 0, source: str = TREC) -> list[dict]:
    """n distinct rows {text, label}."""
    with open(source, newline="", encoding="utf-8") as f:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(f)]
    by_label: dict[str, list[str]] = {}
    for text, label in rows:
        by_label.setdefault(label, []).append(text)
    rng = random.Random(seed)
    seen: set[str] = set()
    out = []
    while len(out) < n:
        first, label = rows[rng.randrange(len(rows))]  # the class mix of TREC
        second = rng.choice(by_label[label])
        text = f"{first.rstrip(' ?')} and {second}"
        if first != second and text not in seen:
            seen.add(text)
            out.append({"text": text, "label": label})
    return out


def write(n: int, root: str, seed: int = 0) -> str:
    """Writes root/span-1/questions.csv with n rows; returns root (the data dir of a run)."""
    os.makedirs(os.path.join(root, "span-1"), exist_ok=True)
    with open(os.path.join(root, "span-1", "questions.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(texts(n, seed))
    return root


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("out", help="data dir to write (span-1/questions.csv under it)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write(args.rows, args.out, args.seed))


if __name__ == "__main__":
    main()
