"""TF Serving's JSON parsing, as a client sees it: rapidjson 1.1.0's documents, error texts and offsets.

Pure Python (no TensorFlow), unit-tested without a model. Sources: tensorflow/serving 2.16.1
`util/json_tensor.cc` (JT) and rapidjson 1.1.0 (`reader.h`, `error/en.h`).
"""
from __future__ import annotations

import json
import math
import re
import zlib

from ops.serving.rest.writer import dumps


class ApiError(Exception):
    """Answered as TF Serving answers a failed Status: this HTTP status, `{"error": message}` pretty-printed.
    body=False: an empty body, as when ParseModelInfo fails before MakeJsonFromStatus (HRA:80)."""

    def __init__(self, status: int, message: str, body: bool = True, code: str | None = None):
        super().__init__(message)
        self.status, self.body = status, body
        self.code = code or _CODES.get(status, "UNKNOWN")  # the Status code name, for the request_count metric


_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 501: "UNIMPLEMENTED", 500: "INTERNAL"}


def bad(message: str) -> ApiError:  # INVALID_ARGUMENT -> 400 (http_server.cc:56-57)
    return ApiError(400, message)


def is_gzip(content_encoding: str) -> bool:
    """TF Serving inflates a body whose Content-Encoding contains "gzip" (absl::StrContains, so case-sensitive:
    x-gzip yes, GZIP no; evhttp_request.cc:262-267); any other (deflate, ...) is read as it is, bytes and all."""
    return "gzip" in content_encoding


def gunzip(data: bytes, limit: int) -> bytes | None:
    """A gzip body, inflated (evhttp_request.cc:245-258; gzip_zlib.cc:783-810: gzip only, one stream). Not
    valid gzip: b"", as TF Serving then passes an empty body on (JSON Parse error: The document is empty).
    None: it inflates past ``limit``."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        return b""
    if len(out) > limit:
        return None
    return out if inflater.eof and not inflater.unused_data else b""


class JObject(dict):
    """A JSON object: lookups see the FIRST of duplicate keys (rapidjson's FindMember); `pairs` keeps all of
    them in order, as rapidjson's DOM does (its members are iterated and echoed whole)."""

    def __init__(self, pairs):
        super().__init__(reversed(pairs))
        self.pairs = pairs


# rapidjson 1.1.0 GetParseError_En texts (error/en.h).
_EMPTY, _ROOT = "The document is empty.", "The document root must not be followed by other values."
_VALUE, _NAME = "Invalid value.", "Missing a name for object member."
_COLON, _OBJ_COMMA = "Missing a colon after a name of object member.", "Missing a comma or '}' after an object member."
_ARR_COMMA = "Missing a comma or ']' after an array element."
_HEX, _SURROGATE = "Incorrect hex digit after \\u escape in string.", "The surrogate pair in string is invalid."
_ESCAPE, _QUOTE = "Invalid escape character in string.", "Missing a closing quotation mark in string."
_TOO_BIG, _FRACTION, _EXPONENT = ("Number too big to be stored in double.", "Miss fraction part in number.",
                                  "Miss exponent in number.")
_ESCAPES = {ord('"'): b'"', ord("\\"): b"\\", ord("/"): b"/", ord("b"): b"\b", ord("f"): b"\f", ord("n"): b"\n",
            ord("r"): b"\r", ord("t"): b"\t"}
_WS = b" \n\r\t"
_RISKY = re.compile(rb"\\u[dD][89abAB]")  # a high surrogate escape: Python accepts a lone one, rapidjson does not
_INTEGER = re.compile(r"-?([0-9]*)")  # a number's integer part


class _Error(Exception):
    def __init__(self, message, offset):
        super().__init__(message)
        self.offset = offset


def _text(raw: bytes) -> str:  # strings are not UTF-8-validated by rapidjson: keep any byte
    return raw.decode("utf-8", "surrogateescape")


class _Reader:
    """rapidjson's GenericReader (kParseNanAndInfFlag, as JT:431), for the error message and offset it gives."""

    def __init__(self, data: bytes, start: int):
        self.d, self.start = data, start

    def at(self, i):  # MemoryStream::Peek: '\0' at the end (a NUL byte ends the document too)
        return self.d[i] if i < len(self.d) else 0

    def ws(self, i):
        while i < len(self.d) and self.d[i] in _WS:
            i += 1
        return i

    def document(self):
        i = self.ws(self.start)
        if not self.at(i):
            raise _Error(_EMPTY, i)
        value, i = self.value(i)
        i = self.ws(i)
        if self.at(i):
            raise _Error(_ROOT, i)
        return value

    def value(self, i):
        c = self.at(i)
        for word, value in ((b"null", None), (b"true", True), (b"false", False)):
            if c == word[0]:
                for k in range(1, len(word)):
                    if self.at(i + k) != word[k]:
                        raise _Error(_VALUE, i + k)
                return value, i + len(word)
        if c == ord('"'):
            return self.string(i)
        if c in b"{[":
            return self.container(i, c == ord("{"))
        return self.number(i)

    def container(self, i, is_object):
        items, close, i = [], ord("}" if is_object else "]"), self.ws(i + 1)
        if self.at(i) == close:
            return (JObject(items) if is_object else items), i + 1
        while True:
            if is_object:
                if self.at(i) != ord('"'):
                    raise _Error(_NAME, i)
                key, i = self.string(i)
                i = self.ws(i)
                if self.at(i) != ord(":"):
                    raise _Error(_COLON, i)
                value, i = self.value(self.ws(i + 1))
                items.append((key, value))
            else:
                value, i = self.value(i)
                items.append(value)
            i = self.ws(i)
            if self.at(i) == ord(","):
                i = self.ws(i + 1)
            elif self.at(i) == close:
                return (JObject(items) if is_object else items), i + 1
            else:
                raise _Error(_OBJ_COMMA if is_object else _ARR_COMMA, i)

    def hex4(self, i, escape):
        digits = self.d[i:i + 4]
        if len(digits) < 4 or not re.fullmatch(rb"[0-9a-fA-F]{4}", digits):
            raise _Error(_HEX, escape)
        return int(digits, 16)

    def string(self, i):
        out, j = bytearray(), i + 1
        while True:
            c = self.at(j)
            if c == ord("\\"):
                escape, e = j, self.at(j + 1)
                if e in _ESCAPES:
                    out += _ESCAPES[e]
                    j += 2
                elif e == ord("u"):
                    code, j = self.hex4(j + 2, escape), j + 6
                    if 0xD800 <= code <= 0xDBFF:
                        if self.at(j) != ord("\\") or self.at(j + 1) != ord("u"):
                            raise _Error(_SURROGATE, escape)
                        low = self.hex4(j + 2, escape)
                        if not 0xDC00 <= low <= 0xDFFF:
                            raise _Error(_SURROGATE, escape)
                        code, j = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00), j + 6
                    out += chr(code).encode("utf-8", "surrogatepass")
                else:
                    raise _Error(_ESCAPE, escape)
            elif c == ord('"'):
                return _text(bytes(out)), j + 1
            elif c == 0:
                raise _Error(_QUOTE, j)
            elif c < 0x20:
                raise _Error(_ESCAPE, j)
            else:
                out.append(c)
                j += 1

    def number(self, i):
        j = i + (self.at(i) == ord("-"))
        digit = lambda k: 0x30 <= self.at(k) <= 0x39  # noqa: E731
        if self.at(j) in b"NI":
            word = b"NaN" if self.at(j) == ord("N") else (b"Infinity" if self.at(j + 3) == ord("i") else b"Inf")
            for k, ch in enumerate(word):
                if self.at(j + k) != ch:
                    raise _Error(_VALUE, j + k)
            value = math.nan if word == b"NaN" else math.inf
            return (-value if j > i else value), j + len(word)
        if self.at(j) == ord("0"):
            j += 1
        elif digit(j):
            while digit(j):
                j += 1
        else:
            raise _Error(_VALUE, j)
        is_float = False
        if self.at(j) == ord("."):
            is_float, j = True, j + 1
            if not digit(j):
                raise _Error(_FRACTION, j)
            while digit(j):
                j += 1
        if self.at(j) in b"eE":
            is_float, j = True, j + 1 + (self.at(j + 1) in b"+-")
            if not digit(j):
                raise _Error(_EXPONENT, j)
            while digit(j):
                j += 1
        return _number(self.d[i:j].decode(), is_float, i), j


def _number(text: str, is_float: bool, offset: int = 0):
    digits = _INTEGER.match(text).group(1)
    # An integer part past 64 bits is summed as a double, and refused once it reaches DBL_MAX / 10 before its
    # last digit (rapidjson 1.1.0 reader.h:1231-1236). Checked before int(): Python refuses to convert more
    # than 4,300 digits (a ValueError that was once answered as a 500).
    if len(digits) > 308 and float(digits[:-1]) >= 1.7976931348623157e307:
        raise _Error(_TOO_BIG, offset)
    if not is_float:
        value = int(text)
        if -(1 << 63) <= value < (1 << 64):
            return value
    value = float(text)  # an integer beyond 64 bits becomes a double, as in rapidjson
    if math.isinf(value):
        raise _Error(_TOO_BIG, offset)
    return value


def parse(body: bytes):
    """A request body -> its JSON document; raises the 400 that TF Serving's ParseJson (JT:419-448) gives."""
    if not body:
        raise bad("JSON Parse error: The document is empty")
    start = 3 if body.startswith(b"\xef\xbb\xbf") else 0  # the UTF-8 BOM is skipped; offsets still count it
    data = body.split(b"\0", 1)[0]  # rapidjson's MemoryStream reads a NUL as the end
    try:  # the fast path (C): its result equals rapidjson's whenever it succeeds, except the cases in _RISKY
        if _RISKY.search(data):
            raise ValueError
        doc = json.loads(_text(data[start:]), object_pairs_hook=JObject,
                         parse_float=lambda s: _number(s, True), parse_int=lambda s: _number(s, False))
    except (ValueError, _Error, RecursionError):
        try:
            doc = _Reader(data, start).document()
        except _Error as e:
            raise bad(f"JSON Parse error: {e} at offset: {e.offset}") from None
        except RecursionError:
            raise bad("JSON Parse error: the document is nested too deeply for this server") from None
    if not isinstance(doc, dict):
        raise bad(f"JSON Value: {dumps(doc)} Is not object")
    return doc
