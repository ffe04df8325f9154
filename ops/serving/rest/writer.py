"""TF Serving's JSON writing: rapidjson 1.1.0's PrettyWriter and string escaping, WriteDecimal's float text.

Pure Python (NumPy, no TensorFlow). Sources: tensorflow/serving 2.16.1 `util/json_tensor.cc` (JT), rapidjson
1.1.0 `prettywriter.h` / `writer.h`.
"""
from __future__ import annotations

import json
import math

import numpy as np


def to_bytes(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone \udcXX escape: rapidjson writes its 3-byte (CESU) form
        return text.encode("utf-8", "surrogatepass")


def decimal(value, float32: bool) -> str:
    """A float as TF Serving's WriteDecimal (JT:120-166): %.6g if it reads back the same, else max_digits10,
    '.0' after a whole number; NaN and Infinity as bare tokens."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    back = np.float32 if float32 else float
    text = "%.6g" % value
    if back(text) != value:
        text = ("%.9g" if float32 else "%.17g") % value
    return text if "." in text or "e" in text else text + ".0"


def quote(raw: bytes) -> bytes:
    """rapidjson Writer::WriteString: only '"', '\\' and control bytes escaped; other bytes written raw."""
    out = bytearray(b'"')
    for c in raw:
        if c == 0x22 or c == 0x5C:
            out += b"\\" + bytes([c])
        elif c < 0x20:
            out += {8: b"\\b", 9: b"\\t", 10: b"\\n", 12: b"\\f", 13: b"\\r"}.get(c, b"\\u%04X" % c)
        else:
            out.append(c)
    return bytes(out + b'"')


class Writer:
    """rapidjson 1.1.0 PrettyWriter (4-space indent, kFormatSingleLineArray), as TF Serving writes bodies."""

    def __init__(self):
        self.out, self.levels, self.single_line = bytearray(), [], False

    def _prefix(self):
        if not self.levels:
            return
        level = self.levels[-1]  # [in_array, value_count]
        if level[0]:
            if level[1]:
                self.out += b", " if self.single_line else b","
            if not self.single_line:
                self.out += b"\n" + b" " * (4 * len(self.levels))
        else:
            self.out += (b",\n" if level[1] % 2 == 0 else b": ") if level[1] else b"\n"
            if level[1] % 2 == 0:
                self.out += b" " * (4 * len(self.levels))
        level[1] += 1

    def start(self, array: bool):
        self._prefix()
        self.out += b"[" if array else b"{"
        self.levels.append([array, 0])

    def end(self):
        array, count = self.levels.pop()
        if count and not (array and self.single_line):
            self.out += b"\n" + b" " * (4 * len(self.levels))
        self.out += b"]" if array else b"}"

    def raw(self, token: bytes):
        self._prefix()
        self.out += token

    def string(self, raw: bytes):
        self.raw(quote(raw))

    def value(self, v):
        """A parsed JSON value (JsonValueToString's walk, JT:168-183)."""
        if hasattr(v, "pairs"):  # a parsed object (rest_json.JObject), duplicates kept
            self.start(False)
            for key, item in v.pairs:
                self.string(to_bytes(key))
                self.value(item)
            self.end()
        elif isinstance(v, list):
            self.start(True)
            for item in v:
                self.value(item)
            self.end()
        elif isinstance(v, str):
            self.string(to_bytes(v))
        elif v is None or isinstance(v, bool):
            self.raw(json.dumps(v).encode())
        elif isinstance(v, float):
            self.raw(decimal(v, float32=False).encode())
        else:
            self.raw(str(v).encode())


def dumps(value) -> str:
    """A JSON value as TF Serving echoes it in messages: pretty-printed in full (JT:168-183)."""
    writer = Writer()
    writer.value(value)
    return bytes(writer.out).decode("utf-8", "surrogateescape")


def error_body(message: str) -> bytes:
    """MakeJsonFromStatus (JT:1075-1085)."""
    writer = Writer()
    writer.start(False)
    writer.string(b"error")
    writer.string(to_bytes(message))
    writer.end()
    return bytes(writer.out)
