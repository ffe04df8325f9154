"""A file of texts to classify, read as a stream of rows: CSV, JSON Lines, or plain text (one text a line).

The kind comes from the extension (.csv/.tsv, .jsonl/.ndjson, .txt), else from the first line: a JSON object
makes JSON Lines, anything else plain text (a headerless text with commas is not guessed to be a CSV; name a
CSV file .csv, or pass --format csv). Rows are read lazily, so a file of any length takes the memory of a row.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import os
import sys
from typing import Iterator

from components import names
from components.errors import UserError

KINDS = ("auto", "csv", "jsonl", "text")
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "text"}


class TableFile:
    """An open table file: ``kind``, ``columns`` (a plain-text file has one, ``text``) and ``rows()``, an
    iterator of dicts, each a row with every column (the header is never a row)."""

    def __init__(self, path: str, kind: str = "auto", flag: str = "--file"):
        self.path, self.flag = path, flag
        try:
            raw = sys.stdin.buffer if path == "-" else open(path, "rb")
        except FileNotFoundError:
            raise UserError(f"{flag} {path}: no such file") from None
        except IsADirectoryError:
            raise UserError(f"{flag} {path}: is a folder, not a file") from None
        # Text in UTF-8 (a BOM, as spreadsheet exports write it, is skipped); newline="" for csv's quoted newlines.
        self._stream = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        self._line = 0
        first = self._guarded(lambda: self._stream.readline())
        self.kind = kind if kind != "auto" else _detect(path, first)
        self._pending = first  # read once to detect the kind, handed back to the reader below
        if self.kind == "csv":
            delimiter = "\t" if path.lower().endswith(".tsv") else ","
            self._csv = csv.reader(itertools.chain([first], self._stream), delimiter=delimiter)
            header = self._guarded(lambda: next(self._csv, None))
            if not header:
                raise UserError(f"{flag} {path}: empty, no CSV header")
            self.columns = header
        elif self.kind == "jsonl":
            self.columns = list(self._json(first, 1)) if first.strip() else []
        else:
            self.columns = [names.TEXT]

    def rows(self) -> Iterator[dict]:
        if self.kind == "csv":
            return self._csv_rows()
        if self.kind == "jsonl":
            return self._jsonl_rows()
        return self._text_rows()

    def close(self) -> None:
        if self.path != "-":
            self._stream.close()

    # ------------------------------------------------------------------------------------------ readers
    def _csv_rows(self) -> Iterator[dict]:
        width = len(self.columns)
        for row in _guard(self._csv, self.path, self.flag):
            if not row:
                continue  # csv's blank line
            if len(row) > width:
                raise UserError(f"{self.flag} {self.path}: line {self._csv.line_num} has {len(row)} fields, the header "
                                f"{width} ({', '.join(self.columns)}); quote texts that hold commas")
            yield dict(zip(self.columns, row + [""] * (width - len(row))))

    def _jsonl_rows(self) -> Iterator[dict]:
        for number, line in enumerate(_guard(itertools.chain([self._pending], self._stream), self.path, self.flag), 1):
            if line.strip():
                yield self._json(line, number)

    def _text_rows(self) -> Iterator[dict]:
        for line in _guard(itertools.chain([self._pending], self._stream), self.path, self.flag):
            line = line.rstrip("\r\n")
            if line.strip():  # as `predict --file` always read plain text: a line a text, blank lines skipped
                yield {names.TEXT: line}

    def _json(self, line: str, number: int) -> dict:
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{self.flag} {self.path}: line {number} is not JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise UserError(f"{self.flag} {self.path}: line {number} is not a JSON object; JSON Lines need one "
                            "object a line, e.g. {\"text\": \"...\"}")
        return row

    def _guarded(self, read):
        try:
            return read()
        except UnicodeDecodeError as e:
            raise UserError(f"{self.flag} {self.path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _guard(rows, path: str, flag: str):
    """rows, with a decoding error said as a UserError."""
    try:
        yield from rows
    except UnicodeDecodeError as e:
        raise UserError(f"{flag} {path}: not UTF-8 text ({e.reason})") from None
    except csv.Error as e:
        raise UserError(f"{flag} {path}: not a CSV file this reader understands ({e})") from None


def _detect(path: str, first_line: str) -> str:
    kind = _EXTENSIONS.get(os.path.splitext(path.lower())[1])
    if kind:
        return kind
    try:
        return "jsonl" if isinstance(json.loads(first_line), dict) else "text"
    except ValueError:
        return "text"


def text_column(table: TableFile, column: str | None, flag: str = "--text-column") -> str:
    """The column holding the texts: `column`, else the contract's (names.TEXT)."""
    if table.kind == "text":
        if column and column != names.TEXT:
            raise UserError(f"{flag} {column}: {table.path} is plain text (one text a line), it has no columns")
        return names.TEXT
    return require_column(table, column, names.TEXT, flag, "text")


def require_column(table: TableFile, column: str | None, default: str, flag: str, what: str) -> str:
    """`column`, else `default`; a UserError listing the file's columns when it has no such column."""
    wanted = column or default
    if wanted not in table.columns:
        hint = "" if column else f" (the default, the project's {what} column); name yours with {flag}"
        raise UserError(f"{table.path} has no column '{wanted}'{hint}; its columns: "
                        + (", ".join(table.columns) or "none"))
    return wanted
