"""PushGate's decision table (components/push_gate.py): pure logic, every row."""
import pytest

from components.names import MAJORITY_ACCURACY, TFIDF_ACCURACY, GateReason
from components.push_gate import below_references, decide

REFS = {MAJORITY_ACCURACY: 0.5, TFIDF_ACCURACY: 0.8}


def gate(**kw):
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
def test_decision_table(kw, reason):
    assert gate(**kw) == reason


def test_below_references_names_each_reference_missed():
    assert below_references(0.45, REFS, 0.0) == [MAJORITY_ACCURACY, TFIDF_ACCURACY]
    assert below_references(0.8 - 4e-7, REFS, 0.0) == []  # a tie, as MLMD rounds it
    assert below_references(0.8 - 1e-4, REFS, 0.0) == [TFIDF_ACCURACY]
    assert GateReason.BELOW_REFERENCE in GateReason.EXPLAINED
