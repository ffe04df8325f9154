"""The days after day one, end to end on real TREC rows, as a user runs them (issue 29):

init on a 3-class CSV → run (v1, 3 classes) → a span bringing a 4th class: add-span refuses it, then lands it
with --allow-new-classes (schema backed up and extended) → run: exit 0, a 4-class model pushed, compared with
the references instead of the 3-class served model (no TFMA crash, no --set contract.*) → a 15-row one-class
span (a label-next batch) lands with plain add-span → retrain: exit 0, eval drawn across spans, phase 2 skipped
for too few eval rows, the summary says both → a large one-class export dropped in by hand: retrain halts at
the data contract (exit 3) naming accept-span → accept-span clears it (recorded in MLMD) → remove-span withdraws
it (moved aside, recorded) → retrain: nothing new, exit 0.
"""
import csv
import json
import os

import pytest

from conftest import TRAIN_CSV, read_rows, run_cli, write_csv

pytestmark = pytest.mark.slow
FAST = ["--set", "beam.direct_running_mode=in_memory", "--set", "trainer.mode=head"]
OLD, NEW = ("HUM", "LOC", "NUM"), "ENTY"


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    return result


def by_label(rows, label, start, n):
    return [r for r in rows if r["label"] == label][start:start + n]


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    root = tmp_path_factory.mktemp("evolving")
    rows = read_rows(TRAIN_CSV)
    write_csv(str(root / "three.csv"), [r for label in OLD for r in by_label(rows, label, 0, 110)])
    write_csv(str(root / "new-class.csv"), by_label(rows, NEW, 0, 45))
    write_csv(str(root / "batch.csv"), by_label(rows, "NUM", 200, 15))
    project = root / "project"
    out = {"root": root, "project": project, "config": str(project / "transferline.toml")}
    cfg = ["--config", out["config"]]
    ok(run_cli("init", str(project), "--train", str(root / "three.csv"), "--test-fraction", "0.15"))
    out["v1"] = ok(run_cli("run", *cfg, *FAST))
    out["refused_new_class"] = run_cli("add-span", str(root / "new-class.csv"), *cfg)
    out["add_new_class"] = ok(run_cli("add-span", str(root / "new-class.csv"), "--allow-new-classes", *cfg))
    out["v2"] = ok(run_cli("run", *cfg, *FAST))
    out["add_batch"] = ok(run_cli("add-span", str(root / "batch.csv"), *cfg))
    out["retrain_batch"] = ok(run_cli("retrain", *cfg, *FAST, "--set", "trainer.mode=fine_tune"))
    write_csv(str(project / "data" / "span-4" / "export.csv"), by_label(rows, "LOC", 200, 220))
    out["drifted"] = run_cli("retrain", *cfg, *FAST)
    out["accept"] = ok(run_cli("accept-span", "4", "--reason", "the LOC export is meant", *cfg))
    from components.data_gate import drift_problems

    out["drift_after_accept"] = drift_problems(str(project / "data"), 0.25, 0.3)
    out["remove"] = ok(run_cli("remove-span", "4", "--reason", "export withdrawn after all", *cfg))
    out["after_remove"] = ok(run_cli("retrain", *cfg, *FAST, "--set", "trainer.mode=fine_tune"))
    return out


def summary(days, index):
    from pipelines.runs import summarize

    return summarize(str(days["project"] / "work" / "metadata.sqlite"), "transferline", index)


def classes_of(version_dir):
    from components.serving_dir import model_classes

    return sorted(model_classes(version_dir))


def test_a_new_class_is_refused_without_the_flag_naming_it(days):
    r = days["refused_new_class"]
    assert r.returncode == 3 and "new class(es) ENTY" in r.stderr and "--allow-new-classes" in r.stderr
    assert "Traceback" not in r.stderr


def test_allow_new_classes_lands_the_span_and_extends_the_schema_with_a_backup(days):
    project = days["project"]
    with open(project / "data" / "span-2" / "new-class.csv", newline="") as f:
        assert {r["label"] for r in csv.DictReader(f)} == {NEW}
    from pipelines.pipeline import label_names

    assert sorted(label_names(str(project / "schema.pbtxt"))) == sorted(OLD + (NEW,))
    backups = [f for f in os.listdir(project) if f.startswith("schema.pbtxt.") and f.endswith(".bak")]
    assert len(backups) == 1 and NEW not in open(project / backups[0]).read()
    assert '+  value: "ENTY"' in days["add_new_class"].stderr


def test_the_run_after_a_new_class_pushes_a_four_class_model_judged_by_the_references(days):
    from components.names import GateReason

    first, second = summary(days, 0), summary(days, 1)
    assert first.pushed_path and classes_of(first.pushed_path) == sorted(OLD)
    assert second.failed == "" and second.pushed_path and classes_of(second.pushed_path) == sorted(OLD + (NEW,))
    assert second.gate_reason == GateReason.OK_CLASSES_CHANGED
    assert second.baseline.startswith("nothing comparable: the classes changed since served version")
    assert "added ENTY" in second.baseline
    assert all(second.metrics["accuracy"] >= v for v in second.references.values())
    out = days["v2"].stdout
    assert "compared with: nothing comparable: the classes changed" in out and "gate: BLESSED" in out
    assert "warm start: classes differ" in out  # trained fresh: the served head has 3 outputs


def test_a_small_span_lands_and_the_plain_retrain_after_it_exits_zero(days):
    s = summary(days, 2)
    assert s.spans == [1, 2, 3] and s.eval_spans == [1, 2, 3] and s.failed == ""
    assert s.eval_rows is not None and s.eval_rows > 15  # drawn across the spans, not 3 rows of span 3
    out = days["retrain_batch"].stdout
    assert "gate data: the eval split of spans 1, 2, 3 (span 3 alone is too small for data.min_eval_rows=200)" in out
    assert f"WARNING: the eval split has {s.eval_rows} rows, fewer than data.min_eval_rows=200" in out
    assert "phase 2 skipped:" in s.trainer_mode and f"{s.eval_rows} eval rows" in s.trainer_mode
    assert s.trainer_mode.startswith("head")


def test_a_large_one_class_export_halts_the_retrain_naming_accept_span(days):
    r = days["drifted"]
    assert r.returncode == 3, r.stdout + r.stderr[-3000:]
    assert "the training data with span-4 vs without it (spans 1, 2, 3), 'label'" in r.stderr
    assert "transferline accept-span 4 --reason" in r.stderr and "Traceback" not in r.stderr


def test_accept_span_is_recorded_and_clears_the_drift(days):
    from pipelines.mlmd_store import connect
    from pipelines.run_history import SPAN_ACCEPTED_EXECUTION_TYPE, SPAN_REMOVED_EXECUTION_TYPE, events

    assert days["drift_after_accept"] == []
    store = connect(str(days["project"] / "work" / "metadata.sqlite"))
    [accepted] = events(store, SPAN_ACCEPTED_EXECUTION_TYPE)
    assert accepted["span"] == 4 and accepted["reason"] == "the LOC export is meant"
    [removed] = events(store, SPAN_REMOVED_EXECUTION_TYPE)
    assert removed["span"] == 4 and removed["reason"] == "export withdrawn after all"
    moved = removed["moved_to"]
    assert os.path.isdir(moved) and os.listdir(moved) and ".removed" in moved
    with open(os.path.join(moved, ".accepted.json")) as f:
        assert json.load(f)["reason"] == "the LOC export is meant"  # moved whole, never deleted


def test_after_remove_span_the_retrain_trains_without_it(days):
    assert sorted(n for n in os.listdir(days["project"] / "data") if n.startswith(("span-", "."))) == [
        ".removed", "span-1", "span-2", "span-3"]
    s = summary(days, -1)
    assert s.spans == [1, 2, 3] and s.failed == ""
    assert "span-4" not in days["after_remove"].stdout


def test_the_ledger_lists_the_class_change_and_what_is_served(days):
    runs = json.loads(ok(run_cli("runs", "--json", "--config", days["config"])).stdout)
    assert [r["verdict"] for r in runs][:2] == ["ok", "ok_classes_changed"]
    assert runs[-2]["state"] == "FAILED" and runs[-2]["stopped_at"] == "DataGate"  # the drifted export
    versions = json.loads(ok(run_cli("versions", "--json", "--config", days["config"])).stdout)
    assert [v["baseline_source"] for v in versions][:2] == ["first_model", "classes_changed"]
    assert [v["served"] for v in versions] == [False] * (len(versions) - 1) + [True]
    text = ok(run_cli("versions", "--config", days["config"])).stdout
    assert "the references (classes changed since version" in text
