"""Reading the request log back (issue 30): a malformed line is skipped, counted and named (file:line) in one
warning line; the good lines around it are all read. Logs written by the real writer (RequestLog), then
damaged the ways a log gets damaged: a killed server's cut-short last line, binary garbage, a wrong column
count, a sidecar's broken JSONL line."""
import glob
import json
import os

import pytest

from conftest import run_cli
from ops.serving.request_log import RequestLog, read_requests

PROBS = {"probabilities": [[0.7, 0.2, 0.1]], "classes": [["A", "B", "C"]]}
# Texts that stress CSV: quotes, commas, line breaks (one looking like a record's start), U+2028, CR.
AWKWARD = ['say "hi", then leave', "two\nlines", "ends with a quote\"", "para\u2028sep", "cr\rinside",
           "x\n2025-01-01T00:00:00+00:00,not a record", ""]


def _log(directory, n):
    """n records through the real writer: AWKWARD first, then plain texts."""
    log = RequestLog(str(directory), queue_requests=100_000)
    texts = (AWKWARD + [f"question number {i}, plain" for i in range(n)])[:n]
    for t in texts:
        log.record("m", 3, "serving_default", False, [t.encode()], PROBS)
    log.close()
    (path,) = glob.glob(os.path.join(str(directory), "*.csv"))
    return path, texts


def _read(directory):
    warnings = []
    frame = read_requests(str(directory), warn=warnings.append)
    return frame, warnings


def _line_count(path):
    with open(path, "rb") as f:
        return f.read().count(b"\n")


def test_a_clean_log_reads_whole_and_warns_nothing(tmp_path):
    _, texts = _log(tmp_path, 500)
    frame, warnings = _read(tmp_path)
    assert list(frame["text"]) == texts and warnings == [] and frame.attrs["malformed"] == 0
    assert frame["label"][0] == "A" and frame["score"][0] == pytest.approx(0.7)


def test_a_truncated_last_line_hides_nothing(tmp_path):
    path, texts = _log(tmp_path, 10_540)
    lines = _line_count(path)
    with open(path, "a", encoding="utf-8") as f:  # what a server killed mid-write leaves
        f.write('2025-01-31T12:00:00.000+00:00,m,3,serving_default,"unterminated quote')
    frame, warnings = _read(tmp_path)
    assert len(frame) == 10_540 and list(frame["text"]) == texts
    name = os.path.basename(path)
    assert warnings == [f"request log: skipped 1 malformed line(s) under {tmp_path} (not records: cut short, "
                        f"binary or wrong columns), first at {name}:{lines + 1}; read the other 10540 record(s)"]
    assert frame.attrs["malformed"] == 1 and frame.attrs["malformed_at"] == [f"{name}:{lines + 1}"]


def test_damage_in_the_middle_costs_only_the_damaged_lines(tmp_path):
    path, texts = _log(tmp_path, 300)
    with open(path, "rb") as f:
        raw = f.read().split(b"\n")
    header, body = raw[0], raw[1:-1]
    plain = len(body) - 150  # damage goes between plain records (AWKWARD ones span lines)
    damaged = ([header] + body[:plain]
               + [b'2025-01-31T12:00:00.000+00:00,m,3,serving_default,"cut short inside a quote',  # line plain+2
                  b"\x00\xff\xfe garbage \x89PNG\r\x1a",                                          # plain+3
                  b"2025-01-31T12:00:00.000+00:00,m,3,too,few",                                   # plain+4
                  b"not a time,m,3,s,text,A,0.5,",                                                 # plain+5
                  b'2025-01-31T12:00:00.000+00:00,m,3,s,bad probabilities,A,0.5,"{not json}"']    # plain+6
               + body[plain:] + [b""])
    with open(path, "wb") as f:
        f.write(b"\n".join(damaged))
    frame, warnings = _read(tmp_path)
    assert list(frame["text"]) == texts  # every good record, in order
    assert frame.attrs["malformed"] == 5
    assert frame.attrs["malformed_at"] == [f"{os.path.basename(path)}:{plain + n}" for n in range(2, 7)]
    assert len(warnings) == 1 and "skipped 5 malformed line(s)" in warnings[0]


def test_a_sidecars_broken_jsonl_lines_are_skipped_and_named(tmp_path):
    good = [{"time": f"2025-01-01T10:00:0{i}Z", "text": f"t{i}", "probabilities": {"A": 0.2, "B": 0.8}}
            for i in range(4)]
    lines = [json.dumps(good[0]), json.dumps(good[1]), '{"time": "2025-01-01T10:00:09Z", "te', "[1, 2]",
             json.dumps({"text": "no time"}), json.dumps(good[2]), "", json.dumps(good[3]), '{"time": "2025-']
    (tmp_path / "proxy.jsonl").write_text("\n".join(lines))
    frame, warnings = _read(tmp_path)
    assert list(frame["text"]) == ["t0", "t1", "t2", "t3"] and list(frame["label"]) == ["B"] * 4
    assert frame.attrs["malformed_at"] == ["proxy.jsonl:3", "proxy.jsonl:4", "proxy.jsonl:5", "proxy.jsonl:9"]
    assert "skipped 4 malformed line(s)" in warnings[0] and "read the other 4 record(s)" in warnings[0]


def test_monitor_counts_the_good_requests_and_warns_once(tmp_path):
    """The measured failure: one cut-short line made `monitor` say 0 logged requests. Not enough traffic for a
    verdict here (exit 7, no model needed), but the count is every good record and the warning says where."""
    requests = tmp_path / "work" / "requests"
    path, _ = _log(requests, 150)
    with open(path, "a", encoding="utf-8") as f:
        f.write('2025-01-31T12:00:00.000+00:00,m,3,serving_default,"unterminated quote')
    result = run_cli("monitor", "--work-dir", str(tmp_path / "work"), "--since", "2000-01-01",
                     "--set", "monitor.min_requests=200")
    assert result.returncode == 7, result.stderr[-2000:]
    assert "150 logged request(s)" in result.stderr and "(1 malformed line(s) skipped)" in result.stderr
    warning = [line for line in result.stderr.splitlines() if "malformed line(s) under" in line]
    assert len(warning) == 1 and f"{os.path.basename(path)}:" in warning[0]
    report = json.loads(open(result.stdout.strip()).read())
    assert (report["requests"], report["malformed_lines"]) == (150, 1)
