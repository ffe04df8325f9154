"""PushGate's decision table, without a pipeline: every verdict, and the order in which they apply."""
import pytest

from components.gate_rules import below_references, decide, training_fingerprint
from components.names import MAJORITY_ACCURACY, TFIDF_ACCURACY, GateReason

SERVED = dict(blessed=True, served_now=7, compared_with=7, candidate=b"new", served=b"old",
              served_training="t-old", training="t-new", rolled_back_trainings=set())


@pytest.mark.parametrize("change, reason", [
    ({}, GateReason.OK),
    ({"blessed": False}, GateReason.NOT_BLESSED),
    ({"compared_with": 6}, GateReason.STALE),                        # compared with v6, v7 served now
    ({"served_now": 0, "compared_with": 0, "served": b"", "served_training": None}, GateReason.OK),  # first
    ({"candidate": b"old"}, GateReason.ALREADY_SERVED),
    ({"training": "t-old"}, GateReason.SAME_TRAINING),
    ({"rolled_back_trainings": {"t-new"}}, GateReason.ROLLED_BACK),
    # First match wins: not blessed beats stale, stale beats already served, ...
    ({"blessed": False, "compared_with": 6}, GateReason.NOT_BLESSED),
    ({"compared_with": 6, "candidate": b"old"}, GateReason.STALE),
    ({"candidate": b"old", "training": "t-old"}, GateReason.ALREADY_SERVED),
    ({"training": "t-old", "rolled_back_trainings": {"t-old"}}, GateReason.SAME_TRAINING),
])
def test_decision_table(change, reason):
    assert decide(**{**SERVED, **change}) == reason


def test_a_model_without_fingerprint_is_never_taken_for_the_served_one():
    assert decide(**{**SERVED, "candidate": b"", "served": b""}) == GateReason.OK


def test_same_training_needs_a_served_model():
    """Nothing served: a matching (empty) provenance must not hold the first model back."""
    assert decide(**{**SERVED, "served_now": 0, "compared_with": 0, "served_training": "t-new"}) == GateReason.OK


def test_training_fingerprint_depends_on_data_and_config():
    base = training_fingerprint("data-a", "config-a")
    assert base == training_fingerprint("data-a", "config-a") and len(base) == 16
    assert len({base, training_fingerprint("data-b", "config-a"), training_fingerprint("data-a", "config-b")}) == 3


def test_every_reason_is_explained_in_words():
    reasons = {v for k, v in vars(GateReason).items() if k.isupper() and k != "EXPLAINED"}
    assert reasons == set(GateReason.EXPLAINED)


REFS = {MAJORITY_ACCURACY: 0.5, TFIDF_ACCURACY: 0.8}


def gate_with_references(**kw):
    args = dict(blessed=True, served_now=0, compared_with=0, candidate=b"c", served=b"", served_training=None,
                training="t", rolled_back_trainings=set(), accuracy=0.9, references=REFS, margin=0.0)
    return decide(**{**args, **kw})


@pytest.mark.parametrize("kw, reason", [
    ({}, GateReason.OK),
    ({"accuracy": 0.8}, GateReason.OK),                      # margin 0: as good as the reference is enough
    ({"accuracy": 0.79}, GateReason.BELOW_REFERENCE),        # below TF-IDF, above the majority class
    ({"accuracy": 0.85, "margin": 0.1}, GateReason.BELOW_REFERENCE),
    ({"accuracy": 0.4, "references": None}, GateReason.OK),  # gate.beat_references off
    ({"blessed": False, "accuracy": 0.1}, GateReason.NOT_BLESSED),
    # Later runs answer to the no-regression bound (the Evaluator), not to the references.
    ({"accuracy": 0.4, "served_now": 3, "compared_with": 3, "served": b"s", "served_training": "x"}, GateReason.OK),
    ({"served_now": 3, "compared_with": 0}, GateReason.STALE),
    ({"served_now": 3, "compared_with": 3, "served": b"c"}, GateReason.ALREADY_SERVED),
    ({"served_now": 3, "compared_with": 3, "served": b"s", "served_training": "t"}, GateReason.SAME_TRAINING),
    ({"rolled_back_trainings": {"t"}}, GateReason.ROLLED_BACK),
])
def test_decision_table_with_references(kw, reason):
    assert gate_with_references(**kw) == reason


def test_below_references_names_each_reference_missed():
    assert below_references(0.45, REFS, 0.0) == [MAJORITY_ACCURACY, TFIDF_ACCURACY]
    assert below_references(0.8 - 4e-7, REFS, 0.0) == []  # a tie, as MLMD rounds it
    assert below_references(0.8 - 1e-4, REFS, 0.0) == [TFIDF_ACCURACY]
    assert GateReason.BELOW_REFERENCE in GateReason.EXPLAINED


def test_a_candidate_with_other_classes_answers_to_the_references():
    """A class added or removed: not comparable with the served model (TFMA cannot line up the class ids),
    so the references decide, as for a first model; stale and not-blessed still come first."""
    refs = {MAJORITY_ACCURACY: 0.3, TFIDF_ACCURACY: 0.8}
    changed = {**SERVED, "comparable": False, "references": refs}
    assert decide(**changed, accuracy=0.85) == GateReason.OK_CLASSES_CHANGED
    assert decide(**changed, accuracy=0.75) == GateReason.BELOW_REFERENCE
    assert decide(**{**changed, "compared_with": 6}, accuracy=0.85) == GateReason.STALE
    assert decide(**{**changed, "blessed": False}, accuracy=0.85) == GateReason.NOT_BLESSED
    assert decide(**{**SERVED, "references": refs}, accuracy=0.75) == GateReason.OK  # comparable: no-regression


def test_class_change_in_words():
    from components.serving_dir import class_change

    assert class_change(["a", "b"], ["a", "b"]) == ""
    assert class_change(["b", "a"], ["a", "b"]) == ""
    assert class_change(["a", "b"], ["a", "b", "c"]) == "added c"
    assert class_change(["a", "b", "d"], ["a", "c"]) == "added c; removed b, d"
