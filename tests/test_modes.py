"""components.modes: auto's choice and the fine-tuning keep-or-drop decision (pure logic)."""
import pytest

from components.modes import choose_mode, keep_phase2

HP = {"auto_fine_tune_min_examples": 400, "auto_wide_deep_min_examples": 100}


def test_auto_picks_by_training_examples_and_says_why():
    assert choose_mode("auto", 80, HP)[0] == "head"
    assert choose_mode("auto", 100, HP)[0] == "wide_deep"
    mode, why = choose_mode("auto", 4361, HP)
    assert mode == "fine_tune" and "4361" in why and "auto_fine_tune_min_examples" in why
    assert choose_mode("auto", 399, {**HP, "auto_wide_deep_min_examples": 10**6})[0] == "head"


def test_a_set_mode_is_kept_whatever_the_size():
    for mode in ("head", "wide_deep", "fine_tune"):
        assert choose_mode(mode, 10, HP) == (mode, f"{mode}: set by trainer.mode")
    with pytest.raises(ValueError):
        choose_mode("bogus", 10, HP)


def test_phase2_is_kept_only_when_better_on_eval():
    p1 = {"accuracy": 0.90, "loss": 0.30}
    assert keep_phase2(p1, {"accuracy": 0.92, "loss": 0.35})[0]        # more accurate
    assert keep_phase2(p1, {"accuracy": 0.90, "loss": 0.25})[0]        # as accurate, lower loss
    assert not keep_phase2(p1, {"accuracy": 0.90, "loss": 0.30})[0]    # no better: the cheaper phase 1
    assert not keep_phase2(p1, {"accuracy": 0.89, "loss": 0.10})[0]    # less accurate
    kept, why = keep_phase2(p1, {"accuracy": float("nan"), "loss": float("nan")})
    assert not kept and "diverged" in why


def test_phase2_is_skipped_when_eval_is_too_small_to_decide_it():
    from components.modes import skip_phase2

    assert skip_phase2("fine_tune", "auto: 4361 ...", 1090, 200) == ("fine_tune", "auto: 4361 ...")
    mode, why = skip_phase2("fine_tune", "fine_tune: set by trainer.mode", 3, 200)
    assert mode == "head" and "phase 2 skipped: 3 eval rows, fewer than 200 (data.min_eval_rows)" in why
    assert skip_phase2("head", "h", 3, 200) == ("head", "h")  # nothing to skip
    assert skip_phase2("fine_tune", "f", 3, 0) == ("fine_tune", "f")  # no floor


def test_eval_rows_come_from_every_span_when_the_newest_is_small():
    from components.span_folders import eval_source

    assert eval_source([1, 2], 5452, 0.2, 200) == [2]       # 1,090 eval rows from span 2 alone
    assert eval_source([1, 2], 15, 0.2, 200) == [1, 2]      # ~3: drawn across both spans instead
    assert eval_source([2], 15, 0.2, 200) == [2]            # one span: nothing else to draw from
    assert eval_source([1, 2, 3], 1000, 0.2, 200) == [3]    # exactly the floor
    assert eval_source([1, 2, 3], 999, 0.2, 200) == [1, 2, 3]
    assert eval_source([1, 2], 15, 0.2, 0) == [2]           # no floor
