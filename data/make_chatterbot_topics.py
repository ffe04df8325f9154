#!/usr/bin/env python3
"""Rebuild data/chatterbot-topics/prompts.csv: what a user says to a chatbot, labelled with its topic.

Usage:
    python data/make_chatterbot_topics.py /path/to/chatterbot_corpus-1.3.3-py2.py3-none-any.whl [OUT_DIR]

Get the wheel with `pip download --no-deps chatterbot-corpus==1.3.3` (PyPI; BSD-3-Clause). Each English
corpus file `chatterbot_corpus/data/english/<topic>.yml` holds conversations; the first statement of each
is what the user said. This keeps the distinct first statements of the five topics with the most of them
(trivia, coding, psychology, ai, emotion), label = the file's topic, and writes OUT_DIR (default: the
folder this script lives in) /chatterbot-topics/prompts.csv: UTF-8, header ``prompt,topic`` (deliberately
not ``text,label``: `transferline init --text-column prompt --label-column topic` maps them), sorted by
topic then prompt. Re-running reproduces the file byte for byte. Needs PyYAML (a TFX dependency).
"""
import csv
import sys
import zipfile
from pathlib import Path

import yaml

TOPICS = ("ai", "coding", "emotion", "psychology", "trivia")
COUNTS = {"ai": 61, "coding": 96, "emotion": 48, "psychology": 62, "trivia": 261}


def rows(wheel: str) -> list[tuple[str, str]]:
    out = []
    with zipfile.ZipFile(wheel) as zf:
        for topic in TOPICS:
            corpus = yaml.safe_load(zf.read(f"chatterbot_corpus/data/english/{topic}.yml"))
            prompts = {" ".join(c[0].split()) for c in corpus["conversations"] if c and isinstance(c[0], str)}
            out += [(p, topic) for p in sorted(prompts) if p]
    counts = {t: sum(1 for _, label in out if label == t) for t in TOPICS}
    if counts != COUNTS:
        raise SystemExit(f"unexpected counts {counts}; expected {COUNTS} (chatterbot-corpus 1.3.3)")
    return out


def main(wheel: str, out_root: str) -> None:
    path = Path(out_root) / "chatterbot-topics" / "prompts.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["prompt", "topic"])
        writer.writerows(rows(wheel))
    print(f"wrote {path}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else str(Path(__file__).resolve().parent))
