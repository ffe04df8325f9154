"""Issue 20's pure logic, fast: BOM and CSV diagnosis, quoted labels with file and line, leakage counting,
the empty-span choice, dead-run detection, the post-rollback summary, and the lock's busy exit."""
import os
import time

import pytest

from components import csv_checks
from conftest import run_cli


def test_a_bom_file_is_named_with_a_fix_hint():
    raw = csv_checks.BOM + b"text,label\nWho wrote Hamlet ?,HUM\n"
    (p,) = csv_checks.diagnose_bytes("span-1/q.csv", raw)
    assert p["where"] == "span-1/q.csv"
    assert "byte-order mark" in p["problem"] and "save it as plain CSV" in p["problem"]
    assert "\ufeff" not in p["problem"]  # the invisible character itself is never printed
    assert csv_checks.diagnose_bytes("q.csv", raw[len(csv_checks.BOM):]) == []  # control: the same file without it


def test_values_are_quoted_so_spaces_and_invisible_characters_show():
    assert csv_checks.quoted("HUM ") == "'HUM ' (trailing space)"
    assert csv_checks.quoted(" LOC") == "' LOC' (leading space)"
    assert csv_checks.quoted("\ufeffNUM") == "'\\ufeffNUM' (invisible characters)"
    assert csv_checks.quoted("YESNO") == "'YESNO'"


def test_an_unknown_label_is_named_with_quotes_file_and_line():
    files = {"span-1/q.csv": b"text,label\nWho ?,HUM\nWhere ?,LOC\n\"Multi\nline ?\",HUM \nWhy ?,HUM \n",
             "test/t.csv": b"text,label\nWhen ?,HUM \n"}
    places = csv_checks.locate_values(files, "label", {"HUM "})
    assert places == {"HUM ": [("span-1/q.csv", 5), ("span-1/q.csv", 6), ("test/t.csv", 2)]}
    p = csv_checks.unknown_label_problem("feature 'label' (train split)", {"HUM ": 3}, ["HUM", "LOC"], places)
    assert p["problem"].startswith("Unexpected string values: 'HUM ' (trailing space) in 3 row(s) "
                                   "(span-1/q.csv line 5, span-1/q.csv line 6, test/t.csv line 2)")
    assert p["problem"].endswith("The schema allows 'HUM', 'LOC'")


def test_leakage_counts_normalised_exact_overlap_per_gate_split():
    train = ["Who wrote Hamlet ?", "How far is Denver from Aspen ?"]
    gate = {"eval": ["who  wrote HAMLET ?", "What is a fjord ?"], "test": ["Ｈow far is Denver from Aspen ?"]}
    leaked = csv_checks.leakage(train, gate)
    assert leaked == {"eval": ["who  wrote HAMLET ?"], "test": ["Ｈow far is Denver from Aspen ?"]}  # NFKC: full-width H
    assert csv_checks.leakage(train, {"eval": ["Who wrote Macbeth ?"]}) == {"eval": []}
    assert csv_checks.leakage_problem(leaked, gate_rows=3, max_fraction=0.7) is None  # 2/3 < 0.7
    p = csv_checks.leakage_problem(leaked, gate_rows=3, max_fraction=0.5)
    assert "2 of 3 gate rows (67%; 1 in eval, 1 in test)" in p["problem"]
    assert "contract.max_leakage_fraction" in p["problem"] and p["where"] == "gate data"


def test_span_folders_without_a_data_file_are_skipped_not_fatal():
    from components.span_folders import choose

    listing = {1: ["q.csv"], 2: [], 3: [], 4: ["a.csv", "b.csv"]}  # 2: empty; 3: only a README / temp file
    assert choose(listing) == ([1, 4], [2, 3])
    assert choose(listing, window=1) == ([4], [2, 3])
    assert choose({1: []}) == ([], [1])


@pytest.mark.slow  # imports TFX (its fileio lists the folders)
def test_span_choice_reads_the_folders(tmp_path):
    from components.errors import NoSpans
    from components.spans import choose_spans, span_files

    for rel, content in (("span-1/q.csv", "text,label\n"), ("span-2/README", "uploading"),
                         ("span-3/.q.csv.part", "x")):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    (tmp_path / "span-4").mkdir()
    assert span_files(str(tmp_path), "*.csv") == {1: ["q.csv"], 2: [], 3: [], 4: []}
    assert choose_spans(str(tmp_path), 0, "*.csv") == [1]
    (tmp_path / "span-1" / "q.csv").unlink()
    try:
        choose_spans(str(tmp_path), 0, "*.csv")
        raise AssertionError("no span with data must raise")
    except NoSpans as e:
        assert "skipped span-1/, span-2/, span-3/, span-4/" in str(e)


def test_a_run_is_dead_when_nobody_holds_the_lock_or_a_later_run_marked_it():
    from pipelines.run_history import dead_component

    states = {"CsvExampleGen": "CACHED", "Trainer": "COMPLETE", "Pusher": "RUNNING"}
    assert dead_component(states, "", lock_held=True) == ""  # a live run holds the lock
    assert dead_component(states, "", lock_held=False) == "Pusher"
    assert dead_component({**states, "Pusher": "CANCELED"}, "Pusher", lock_held=True) == "Pusher"
    assert dead_component({**states, "Pusher": "COMPLETE"}, "", lock_held=False) == ""


def test_the_lock_tells_a_live_holder_from_a_dead_one(tmp_path):
    import subprocess
    import sys

    from pipelines.work_lock import exclusive, is_held

    assert not is_held(str(tmp_path))
    with exclusive(str(tmp_path)):
        assert is_held(str(tmp_path))
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, '.');"
                               "from pipelines.work_lock import exclusive\n"
                               f"with exclusive({str(tmp_path)!r}): print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert holder.stdout.readline().strip() == "held"
    assert is_held(str(tmp_path))
    holder.kill()  # SIGKILL: the kernel drops the flock with the process
    holder.wait()
    assert not is_held(str(tmp_path))


def _summary(**kw):
    from pipelines.runs import RunSummary

    base = dict(run_id="r3", pipeline_name="transferline", executions={c: "CACHED" for c in ("DataGate", "Pusher")},
                metrics={}, per_class={}, baseline="served version 100", blessed=True, gate_reason="ok",
                failures=[], pushed_path="/w/serving/200", artifacts={})
    return RunSummary(**{**base, **kw})


def test_after_a_rollback_the_summary_says_so_instead_of_blessed_and_pushed():
    from ops.pipeline.summary import format_summary
    from pipelines.runs import rolled_back

    record = {"moved": "200", "to_version": 100, "time": "2026-11-24T10:00:00+0000", "user": "ana",
              "reason": "bad LOC answers"}
    assert rolled_back("200", [record]) == record and rolled_back("100", [record]) == {}
    text = format_summary(_summary(rolled_back=record))
    assert "gate: BLESSED (then; since rolled back, see below)" in text
    assert ("pushed: nothing served from this run: version 200 was rolled back on 2026-11-24T10:00:00+0000 by ana "
            "('bad LOC answers'); serving version 100") in text
    assert "was pushed by an earlier run" not in text
    assert "pushed by an earlier run" in format_summary(_summary())  # control: without the rollback


def test_the_summary_shows_an_interruption_leakage_skipped_spans_and_a_found_push():
    from ops.pipeline.summary import format_summary

    text = format_summary(_summary(interrupted="Pusher", executions={"Pusher": "CANCELED"}, pushed_path=None,
                                   blessed=None, leaked_rows=3, gate_rows=290, skipped_spans=[2, 3]))
    assert "INTERRUPTED during Pusher" in text
    assert "leakage: 3 of 290 gate rows (1.0%)" in text and "skipped: span-2/, span-3/ (no data file yet)" in text
    found = format_summary(_summary(executions={"Pusher": "COMPLETE"}, already_present=True))
    assert "/w/serving/200 already holds this model, from an interrupted earlier push" in found


def test_a_second_run_is_refused_within_seconds(tmp_path):
    """Item 4: the CLI takes the lock before importing TensorFlow/TFX."""
    from pipelines.work_lock import exclusive

    with exclusive(str(tmp_path)):
        started = time.monotonic()
        result = run_cli("retrain", "--work-dir", str(tmp_path), timeout=120, fresh=True)  # nothing preloaded
        seconds = time.monotonic() - started
    assert result.returncode == 5 and "another transferline run or rollback is using" in result.stderr
    assert "Traceback" not in result.stderr
    assert seconds < 5, seconds
