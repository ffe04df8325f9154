"""Reading a labelled CSV file the way the data contract diagnoses it: TF-free, for `init` and DataGate.

Each problem is {"where", "problem", "examples"} (DataRejected's shape): it names the file and says what
is wrong in words, e.g. the first byte that is not UTF-8 and its line.
"""
import csv
import io

_MAX_EXAMPLES = 3


def problem(where: str, what: str, examples=()) -> dict:
    return {"where": where, "problem": what, "examples": [_clip(e) for e in list(examples)[:_MAX_EXAMPLES]]}


def _clip(text: str, n: int = 80) -> str:
    text = str(text)
    return text if len(text) <= n else f"{text[:n]}… ({len(text):,} characters)"


def parse_csv(raw: bytes, path: str, delimiter: str = ",", expected: str = "a header line and rows"
              ) -> tuple[list[list[str]], list[dict]]:
    """(rows incl. the header, []) or ([], [the problem]): empty, not UTF-8, or not parsable as CSV."""
    if not raw.strip():
        return [], [problem(path, f"is empty: expected {expected}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        snippet = raw[raw.rfind(b"\n", 0, e.start) + 1:e.start + 20].decode("utf-8", "replace")
        return [], [problem(path, f"is not UTF-8 text: byte 0x{raw[e.start]:02x} at line {line}; "
                                  "save the file as UTF-8", [snippet])]
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


def delimiter_hint(header: list[str]) -> str | None:
    """The delimiter a one-column header was probably written with (';', tab or '|'), else None."""
    return next((d for d in (";", "\t", "|") if len(header) == 1 and d in header[0]), None)
