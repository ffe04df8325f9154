"""What the served model sees: one CSV row per instance of every successful `:predict`, off the request path.

TF Serving has no request log (tensorflow/serving#408), so `transferline serve` keeps one itself, and a proxy
or sidecar in front of real TF Serving can write the same thing (FORMAT below). `monitor` and `label-next`
read it back with ``read_requests``.

Bounded and safe: the request thread only draws the sampling coin and puts the raw inputs and outputs on a
bounded queue (``put_nowait``: a full queue drops the request and counts its instances, never waits); one
writer thread decodes (tf.Example bytes included), writes and rotates by size, keeping at most ``max_files``
files. Refused requests never reach ``record``; nothing here writes request content to the server's log.

FORMAT (also what a sidecar writes): files ``*.csv`` (with this header) or ``*.jsonl`` (one object per
line, these keys) under the request-log directory, one record per instance:

    time           ISO 8601 with offset, e.g. 2025-01-31T12:00:00.123+00:00          (required)
    model, version the model name and its version number                             (optional)
    signature      the signature that answered                                        (optional)
    text           the instance's text (a tf.Example's `text` feature, decoded)       (required)
    label, score   the top class and its probability           (optional: derived from probabilities)
    probabilities  {"class": probability, ...}: a JSON object (a JSON string in CSV)  (required for
                   ranking and confidence; rows without it count for text statistics only)
    scoring_ms     the answering version's time to score the whole request, in ms     (optional)

Shadow mode (`serve` with a canary beside stable: ops/serving/shadow.py) adds, on the same row, what the canary
answered for the instance, scored after the answer was sent (all optional; `transferline canary` reads them):

    shadow         scored | dropped (the shadow queue was full) | failed (the canary raised) | '' (not shadowed)
    canary_version, canary_label, canary_score, canary_probabilities, canary_ms   as above, for the canary

Files written before these columns existed (or by a sidecar without them) read as not shadowed.
"""
from __future__ import annotations

import csv
import datetime
import glob
import io
import json
import os
import queue
import random
import sys
import threading
import time

from components import names

FIELDS = ("time", "model", "version", "signature", "text", "label", "score", "probabilities", "scoring_ms",
          "shadow", "canary_version", "canary_label", "canary_score", "canary_probabilities", "canary_ms")
PREFIX = "requests-"  # our own files (rotation deletes only these); a sidecar's files may have any name
_STOP = object()


class RequestLog:
    """record() on the request path (cheap, never blocks); a writer thread does the rest. close() flushes."""

    def __init__(self, directory: str, sample_rate: float = 1.0, max_file_bytes: int = 8 << 20,
                 max_files: int = 16, queue_requests: int = 1000, start: bool = True, rng=None):
        self.directory, self.sample_rate = directory, sample_rate
        self.max_file_bytes, self.max_files = max_file_bytes, max_files
        self.written = self.dropped = self.sampled_out = 0  # instances
        self._queue: queue.Queue = queue.Queue(maxsize=queue_requests)
        self._lock, self._rng = threading.Lock(), rng or random.Random()
        self._file, self._seq = None, 0
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        self._thread.start()

    def record(self, model: str, version: int, signature: str, examples: bool, inputs: list, outputs: dict,
               when: float | None = None, seconds: float | None = None, shadow: str = "", canary=None,
               sampled: bool = False) -> None:
        """One answered request: ``inputs`` the instances' bytes (serialized tf.Examples if ``examples``),
        ``outputs`` the signature's outputs by name (batch-major lists, as answered); ``when`` (default now) and
        ``seconds`` its scoring time. Shadow mode: ``shadow`` what became of its shadow scoring, ``canary``
        (version, outputs, seconds) when scored; ``sampled`` = keep() was asked already."""
        if not sampled and not self.keep(len(inputs)):
            return
        try:
            self._queue.put_nowait((time.time() if when is None else when, model, version, signature, examples,
                                    inputs, outputs, seconds, shadow, canary))
        except queue.Full:
            with self._lock:
                self.dropped += len(inputs)

    def keep(self, instances: int) -> bool:
        """The sampling coin (request_log.sample_rate) for one request; a request left out is counted."""
        if self.sample_rate < 1.0 and self._rng.random() >= self.sample_rate:
            with self._lock:
                self.sampled_out += instances
            return False
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Writes what is queued, then stops the writer (a full queue waits up to ``timeout``)."""
        if self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                pass
            self._thread.join(timeout)
        if self._file:
            self._file.close()
            self._file = None

    def stats(self) -> dict:
        with self._lock:
            return {"written": self.written, "dropped": self.dropped, "sampled_out": self.sampled_out}

    # ---------------------------------------------------------------------------------------- the writer
    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            try:
                rows = to_rows(*item)
                self._write(rows)
                with self._lock:
                    self.written += len(rows)
            except Exception as e:  # a log that fails must never take the server down; say so once per batch
                print(f"[transferline] request log: {type(e).__name__} while writing a record", flush=True)

    def _write(self, rows: list[dict]) -> None:
        if self._file is None or self._file.tell() >= self.max_file_bytes:
            self._rotate()
        buffer = io.StringIO()
        # Every field quoted: csv quotes only the delimiter, the quote and the line terminator's own characters,
        # so a text holding a bare \r would otherwise end the record early for every reader.
        csv.DictWriter(buffer, FIELDS, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(rows)
        self._file.write(buffer.getvalue())
        self._file.flush()

    def _rotate(self) -> None:
        if self._file:
            self._file.close()
        os.makedirs(self.directory, exist_ok=True)
        self._seq += 1
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        path = os.path.join(self.directory, f"{PREFIX}{stamp}-{os.getpid()}-{self._seq:05d}.csv")
        self._file = open(path, "w", newline="", encoding="utf-8")
        self._file.write(",".join(FIELDS) + "\n")
        ours = sorted(glob.glob(os.path.join(self.directory, PREFIX + "*.csv")))  # names sort by time
        for old in ours[:-self.max_files]:  # the oldest beyond the bound (the new file counts)
            if old != path:
                os.remove(old)


def _example_text(serialized: bytes) -> str:
    from tensorflow.core.example import example_pb2

    try:
        feature = example_pb2.Example.FromString(serialized).features.feature.get(names.TEXT)
        values = feature.bytes_list.value if feature is not None else []
        return values[0].decode("utf-8", "replace") if values else ""
    except Exception:  # the model accepted it, so this is rare: keep the record, without text
        return ""


def to_rows(when: float, model: str, version: int, signature: str, examples: bool, inputs: list,
            outputs: dict, seconds: float | None = None, shadow: str = "", canary=None) -> list[dict]:
    """The CSV rows of one request: one per instance (``canary``: (version, outputs, seconds) or None)."""
    stamp = datetime.datetime.fromtimestamp(when, datetime.timezone.utc).isoformat(timespec="milliseconds")
    rows = []
    for i, raw in enumerate(inputs):
        text = _example_text(raw) if examples else raw.decode("utf-8", "replace")
        row = {k: "" for k in FIELDS}
        answer = _answer(outputs, i, seconds)
        answer["scoring_ms"] = answer.pop("ms")
        row.update(time=stamp, model=model, version=version, signature=signature, text=text, shadow=shadow,
                   **answer)
        if canary is not None:
            row.update({"canary_version": canary[0], **{f"canary_{k}": v for k, v in
                                                        _answer(canary[1], i, canary[2]).items()}})
        rows.append(row)
    return rows


def _answer(outputs: dict, i: int, seconds: float | None) -> dict:
    """Instance i's label, score, probabilities (JSON) and its request's scoring time (ms), as logged."""
    probs, classes = outputs.get(names.PROBABILITIES), outputs.get(names.CLASSES)
    out = {"label": "", "score": "", "probabilities": "", "ms": "" if seconds is None else f"{seconds * 1000:.3f}"}
    if probs is not None and classes is not None:
        # numpy or JSON-ready lists; class names as bytes (the signature) or str
        p = {c.decode() if isinstance(c, bytes) else c: float(v) for c, v in zip(classes[i], probs[i])}
        top = max(p, key=p.get)
        out.update(label=top, score=f"{p[top]:.6g}", probabilities=json.dumps(p, separators=(",", ":")))
    return out


def from_config(config) -> RequestLog | None:
    """The serve command's log, as [request_log] configures it; None when switched off."""
    c = config.request_log
    if not c.enabled:
        return None
    return RequestLog(request_log_dir(config), c.sample_rate, c.max_file_bytes, c.max_files, c.queue_requests)


def request_log_dir(config) -> str:
    return config.work.requests_dir


# ---------------------------------------------------------------------------------------- reading back
def parse_time(value: str, what: str = "time") -> datetime.datetime:
    """An ISO time (a naive one is taken as UTC)."""
    from components.errors import ConfigError

    try:
        t = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{what} '{value}' is not an ISO time such as 2025-01-31T12:00 "
                          "or 2025-01-31T12:00:00+00:00") from None
    return t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)


def read_requests(directory: str, since: datetime.datetime | None = None, until: datetime.datetime | None = None,
                  warn=None):
    """Every logged record (ours and a sidecar's, *.csv and *.jsonl) with since <= time < until, oldest first,
    as a pandas DataFrame: FIELDS, `probabilities` and `canary_probabilities` parsed to dicts ({} when absent),
    `scoring_ms`, `canary_ms` floats (NaN when absent), `when` a UTC timestamp. Older files (without the
    shadow columns) read with them empty.

    A malformed line (cut short by a killed server, binary garbage, a wrong column count, no ISO time) is
    skipped and counted, never the lines around it: ``warn`` (default: stderr) gets one line saying how many
    and where; the frame's ``attrs["malformed"]`` holds the count and ``attrs["malformed_at"]`` the first few
    file:line."""
    import pandas as pd

    files = sorted(glob.glob(os.path.join(directory, "*.csv")) + glob.glob(os.path.join(directory, "*.jsonl")))
    if since is not None:  # a file last written before the window holds nothing in it
        files = [f for f in files if os.path.getmtime(f) >= since.timestamp() - 1]
    rows, bad = [], []
    for path in files:
        good, lines = (_jsonl_rows if path.endswith(".jsonl") else _csv_rows)(_lines(path))
        rows += good
        bad += [f"{os.path.basename(path)}:{n}" for n in lines]
    if bad:
        (warn or _stderr)(f"request log: skipped {len(bad)} malformed line(s) under {directory} (not records: "
                          f"cut short, binary or wrong columns), first at {', '.join(bad[:_SHOWN])}"
                          f"{', ...' if len(bad) > _SHOWN else ''}; read the other {len(rows)} record(s)")
    frame = pd.DataFrame(rows, columns=[*FIELDS, "when"])
    frame["text"] = frame["text"].fillna("").astype(str)
    frame["when"] = pd.to_datetime(list(frame["when"]), utc=True)
    if since is not None:
        frame = frame[frame["when"] >= since]
    if until is not None:
        frame = frame[frame["when"] < until]
    frame = frame.sort_values("when", kind="stable").reset_index(drop=True)
    frame["label"] = [lab or (max(p, key=p.get) if p else "") for lab, p in zip(frame["label"].fillna(""),
                                                                              frame["probabilities"])]
    frame["score"] = [max(p.values()) if p else float("nan") for p in frame["probabilities"]]
    frame["canary_label"] = [max(p, key=p.get) if p else "" for p in frame["canary_probabilities"]]
    frame["canary_score"] = [max(p.values()) if p else float("nan") for p in frame["canary_probabilities"]]
    for column in ("scoring_ms", "canary_ms"):  # '' (not logged) -> NaN
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["shadow"] = frame["shadow"].fillna("").astype(str)
    frame.attrs.update(malformed=len(bad), malformed_at=bad[:_SHOWN])
    return frame


_SHOWN = 5  # malformed lines named in the warning

def _stderr(message: str) -> None:
    print(f"[transferline] warning: {message}", file=sys.stderr, flush=True)


def _lines(path: str) -> list[str]:
    """The file's lines, each ending in \\n (only \\n ends a line: texts may hold \\r or U+2028); bytes that are
    not UTF-8 become U+FFFD, so a garbage line fails its own checks and nothing else."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line + "\n" for line in lines]


def _record(fields: dict) -> dict | None:
    """A row of the frame from one parsed record; None when it is not one (no ISO time, bad probabilities)."""
    when = _when(fields.get("time"))
    if when is None or not isinstance(fields.get("text"), str):
        return None
    try:
        probabilities = _probabilities(fields.get("probabilities"))
        canary = _probabilities(fields.get("canary_probabilities"))
    except (ValueError, TypeError, AttributeError):
        return None
    row = {k: ("" if fields.get(k) is None else fields[k]) for k in FIELDS}
    row.update(probabilities=probabilities, canary_probabilities=canary, when=when)
    return row


def _csv_rows(lines: list[str]) -> tuple[list[dict], list[int]]:
    """(rows, 1-based numbers of malformed lines). A record that fails its checks is skipped by one line only
    and parsing starts again on the next, so a line cut short inside a quote cannot take the records after it;
    nor can it when the swallowing happens to parse: a record spanning lines, one of which is a record by
    itself, is such a swallow."""
    import itertools

    header = next(csv.reader(lines[:1]), [])
    if not {"time", "text"} <= set(header):
        return [], ([1] if lines else [])  # not a request log (or a file just created: no lines at all)
    rows, bad, i = [], [], 1
    while i < len(lines):
        reader, start = csv.reader(itertools.islice(lines, i, None)), i
        try:
            for record in reader:
                first, start = start, i + reader.line_num  # this record's lines: first .. start - 1
                if not record:
                    continue  # a blank line
                row = _valid(record, header)
                if row is None or any(_valid(next(csv.reader([line]), []), header) for line in lines[first + 1:start]):
                    bad.append(first + 1)
                    i = first + 1
                    break
                rows.append(row)
            else:
                break
        except csv.Error:
            bad.append(start + 1)
            i = start + 1
    return rows, bad


def _valid(record: list[str], header: list[str]) -> dict | None:
    return _record(dict(zip(header, record))) if len(record) == len(header) else None


def _jsonl_rows(lines: list[str]) -> tuple[list[dict], list[int]]:
    rows, bad = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except ValueError:
            fields = None
        row = _record(fields) if isinstance(fields, dict) else None
        if row is None:
            bad.append(n)
        else:
            rows.append(row)
    return rows, bad


def _when(value):
    """A record's time as an aware datetime; None (the row is skipped) when it is not an ISO time."""
    try:
        return parse_time(str(value))
    except ValueError:
        return None


def _probabilities(value) -> dict:
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items()}
    if isinstance(value, str) and value.strip():
        return {str(k): float(v) for k, v in json.loads(value).items()}
    return {}
