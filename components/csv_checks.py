"""The data contract's pure checks, TF-free: CSV files as bytes, label values, leakage between splits.

components/data_gate.py reads the files and the artifacts and calls these; they are unit-tested alone.
Every value shown to a person is quoted (``repr``), so a trailing space or an invisible character shows.
"""
from __future__ import annotations

import collections
import csv
import io
import unicodedata

from components import names

_MAX_EXAMPLES = 3
BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark: what spreadsheet programs write as "CSV UTF-8"


def problem(where: str, what: str, examples=()) -> dict:
    return {"where": where, "problem": what, "examples": [_clip(e) for e in list(examples)[:_MAX_EXAMPLES]]}


def _clip(text: str, n: int = 80) -> str:
    text = str(text)
    return text if len(text) <= n else f"{text[:n]}… ({len(text):,} characters)"


def quoted(value: str) -> str:
    """A value as it is, quoted, with what a reader cannot see said in words: 'HUM ' (trailing space)."""
    notes = [n for n, bad in (("leading space", value[:1].isspace()), ("trailing space", value[-1:].isspace()),
                              ("invisible characters", any(not c.isprintable() and not c.isspace() for c in value)))
             if bad]
    return repr(value) + (f" ({', '.join(notes)})" if notes else "")


# ---------------------------------------------------------------------------------------- CSV files
def parse_csv(raw: bytes, path: str, delimiter: str = ",", expected: str = "a header line and rows"
              ) -> tuple[list[list[str]], list[dict]]:
    """(rows incl. the header, []) or ([], [the problem]): empty, a byte-order mark, not UTF-8, or not CSV."""
    if not raw.strip():
        return [], [problem(path, f"is empty: expected {expected}")]
    if raw.startswith(BOM):
        # TFX's CSV reader keeps the mark in the first column's name, which then reads as missing.
        return [], [problem(path, "starts with a UTF-8 byte-order mark (BOM; spreadsheet programs write one for "
                                  "'CSV UTF-8'), so its first column's name starts with '\\ufeff'; save it as "
                                  f"plain CSV (UTF-8 without BOM), or strip the mark: sed -i '1s/^\\xEF\\xBB\\xBF//' {path}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        snippet = raw[raw.rfind(b"\n", 0, e.start) + 1:e.start + 20].decode("utf-8", "replace")
        return [], [problem(path, f"is not UTF-8 text: byte 0x{raw[e.start]:02x} at line {line}; "
                                  "save the file as UTF-8", [snippet])]
    if "\x00" in text:
        # Refused, not passed on: a NUL is invisible in every viewer and no text a person labelled holds one;
        # it marks a binary file, a UTF-16 export or a corrupt copy.
        line = text[:text.index("\x00")].count("\n") + 1
        return [], [problem(path, f"holds {text.count(chr(0))} NUL byte(s) (first at line {line}): a binary file, "
                                  "a UTF-16 export or a corrupt copy? save it as UTF-8 CSV text")]
    csv.field_size_limit(2**31 - 1)  # see every field whole, however long (TFX's reader stops at 128 KiB)
    try:
        return list(csv.reader(io.StringIO(text), delimiter=delimiter)), []
    except csv.Error as e:
        return [], [problem(path, f"cannot be parsed as CSV: {e}")]


def ragged(rows: list[list[str]], path: str) -> list[dict]:
    """The problem of rows whose field count differs from the header's ([] if none)."""
    bad = [i + 2 for i, r in enumerate(rows[1:]) if r and len(r) != len(rows[0])]
    return [problem(path, f"{len(bad)} row(s) do not have {len(rows[0])} fields (first at line {bad[0]}); "
                          "quote texts that contain the delimiter")] if bad else []


def listed(values: list[str], n: int = 10) -> str:
    """'a', 'b', ... quoted, the first ``n`` only: a message about a 1,000-column header stays one line."""
    values = list(values)
    return ", ".join(map(repr, values[:n])) + (f", ... and {len(values) - n:,} more" if len(values) > n else "")


def duplicate_columns(header: list[str]) -> list[str]:
    """Column names the header holds more than once, in order (a reader would silently keep one of them)."""
    return [c for c, n in collections.Counter(header).items() if n > 1]


def with_line_breaks(texts) -> int:
    """How many texts hold a line break (a quoted newline in the CSV): accepted, and counted for the operator."""
    return sum(1 for t in texts if "\n" in t or "\r" in t)


def one_class_problem(rows: list[tuple[str, str]]) -> dict | None:
    """A problem when the training rows hold fewer than two classes: nothing can be learnt (the references'
    logistic regression and the classifier both need two)."""
    classes = collections.Counter(label for _, label in rows)
    if not rows or len(classes) >= 2:
        return None
    (label, n), = classes.items()
    return problem(f"feature '{names.LABEL}' (train split)", f"only one class, {quoted(label)} ({n} row(s)), to "
                   "train on: a classifier needs at least 2; add rows of another class")


def delimiter_hint(header: list[str]) -> str | None:
    """The delimiter a one-column header was probably written with (';', tab or '|'), else None."""
    return next((d for d in (";", "\t", "|") if len(header) == 1 and d in header[0]), None)


def diagnose_bytes(path: str, raw: bytes, columns=names.COLUMNS, max_chars: int | None = None) -> list[dict]:
    """Problems with one CSV file's content, each naming the file (empty list: none)."""
    columns = list(columns)
    rows, found = parse_csv(raw, path, expected=f"a header line '{','.join(columns)}' and rows")
    if found:
        return found
    header = rows[0]
    twice = duplicate_columns(header)
    if twice:
        return [problem(path, f"has column(s) [{listed(twice)}] more than once: which one is meant is not knowable; "
                              f"expected exactly '{','.join(columns)}'")]
    if header != columns:
        delimiter = delimiter_hint(header)
        if delimiter:
            return [problem(path, f"uses {delimiter!r} as delimiter; expected commas "
                                  f"(header should be '{','.join(columns)}')", [header[0]])]
        missing = [c for c in columns if c not in header]
        extra = [c for c in header if c not in columns]
        what = "; ".join(filter(None, [f"missing column(s) [{listed(missing)}]" if missing else "",
                                        f"unexpected column(s) [{listed(extra)}]" if extra else ""]))
        return [problem(path, f"has header [{listed(header)}]: {what or 'columns out of order'}; "
                              f"expected exactly '{','.join(columns)}'")]
    body = [r for r in rows[1:] if r]
    if not body:
        return [problem(path, "has a header but no rows")]
    if ragged(rows, path):
        return ragged(rows, path)
    long = [r[0] for r in body if max_chars and len(r[0]) > max_chars]
    if long:
        return [problem(path, f"{len(long)} text(s) are longer than {max_chars:,} characters "
                              "(contract.max_text_chars)", long)]
    return []


def locate_values(files: dict[str, bytes], column: str, values) -> dict[str, list[tuple[str, int]]]:
    """value -> [(file, line)] of every row whose `column` holds one of `values` (lines counted from 1)."""
    wanted, found = set(values), collections.defaultdict(list)
    for path, raw in files.items():
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig", "replace")))
        for row in reader:
            if row.get(column) in wanted:
                found[row[column]].append((path, reader.line_num))
    return dict(found)


def unknown_label_problem(where: str, counts: dict[str, int], allowed, places: dict) -> dict:
    """TFDV's 'Unexpected string values' for the label, with each value quoted and where it is."""
    parts = []
    for value, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        at = places.get(value, [])
        shown = ", ".join(f"{path} line {line}" for path, line in at[:_MAX_EXAMPLES])
        more = f" and {len(at) - _MAX_EXAMPLES} more" if len(at) > _MAX_EXAMPLES else ""
        parts.append(f"{quoted(value)} in {n} row(s)" + (f" ({shown}{more})" if shown else ""))
    return problem(where, "Unexpected string values: " + "; ".join(parts) + ". The schema allows "
                   + ", ".join(map(repr, allowed)))


# ---------------------------------------------------------------------------------------- leakage
def normalised(text: str) -> str:
    """What counts as the same text: Unicode NFKC, case-folded, runs of whitespace as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def leakage(train_texts, gate_texts: dict[str, list[str]]) -> dict[str, list[str]]:
    """split -> the gate texts of that split whose normalised text is also a training text."""
    seen = {normalised(t) for t in train_texts}
    return {split: [t for t in texts if normalised(t) in seen] for split, texts in gate_texts.items()}


def leakage_problem(leaked: dict[str, list[str]], gate_rows: int, max_fraction: float) -> dict | None:
    """A problem when more than `max_fraction` of the gate rows also appear in the training data."""
    n = sum(map(len, leaked.values()))
    if not gate_rows or n / gate_rows <= max_fraction:
        return None
    per_split = ", ".join(f"{len(v)} in {s}" for s, v in leaked.items() if v)
    return problem("gate data", f"{n} of {gate_rows} gate rows ({n / gate_rows:.0%}; {per_split}) have a text that "
                                f"is also in the training data (same text after case, spacing and Unicode "
                                f"normalisation); more than {max_fraction:.0%} (contract.max_leakage_fraction): the "
                                f"gate would score memory, not generalisation. Remove them from the newest span "
                                f"or the test set (a span copied from an older one does this)",
                   [t for v in leaked.values() for t in v])
