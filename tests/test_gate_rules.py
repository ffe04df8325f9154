"""PushGate's decision table, without a pipeline: every verdict, and the order in which they apply."""
import pytest

from components.names import GateReason
from components.gate_rules import decide, training_fingerprint

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
