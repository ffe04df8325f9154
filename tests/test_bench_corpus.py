"""bench/corpus.py and bench/tables.py: a distinct, labelled, reproducible corpus; targets judged right (fast)."""
import csv

from bench import corpus
from conftest import TRAIN_CSV, read_rows


def test_rows_are_distinct_and_keep_the_class_of_both_questions():
    by_text = {r["text"]: r["label"] for r in read_rows(TRAIN_CSV)}
    rows = corpus.texts(3000)
    assert len({r["text"] for r in rows}) == 3000
    stems = {t.rstrip(" ?"): label for t, label in by_text.items()}
    for r in rows[:500]:
        text, cuts = r["text"], [i for i in range(len(r["text"])) if r["text"].startswith(" and ", i)]
        # Some cut splits it into a real question of the row's class and another one of the same class.
        assert any(stems.get(text[:i]) == r["label"] and by_text.get(text[i + 5:]) == r["label"] for i in cuts), r
    assert {r["label"] for r in rows} == set(by_text.values())


def test_same_seed_same_file_other_seed_other_rows(tmp_path):
    a = corpus.write(500, str(tmp_path / "a"))
    b = corpus.write(500, str(tmp_path / "b"))
    with open(f"{a}/span-1/questions.csv", "rb") as fa, open(f"{b}/span-1/questions.csv", "rb") as fb:
        assert fa.read() == fb.read()
    assert corpus.texts(500, seed=1) != corpus.texts(500)
    with open(f"{a}/span-1/questions.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 500


def test_targets_are_judged_as_the_issue_states_them():
    from bench import tables

    assert tables._met("P1_first_run_over_encoder", 40.0, wall_s=59.0).startswith("met")  # <= 60 s wall
    assert tables._met("P1_first_run_over_encoder", 24.0, wall_s=90.0) == "met"          # or <= 25x
    assert tables._met("P1_first_run_over_encoder", 30.0, wall_s=90.0).startswith("NOT met")
    assert tables._met("P3_transform_over_direct_throughput", 0.79).startswith("NOT met")
    assert tables._met("P6_peak_rss_largest_over_smallest", 1.5) == "met"
    assert tables._met("P4a_served_p50_over_encoder", 9.0) == ""  # no target
