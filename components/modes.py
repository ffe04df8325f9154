"""The Trainer's choices that are pure logic (no TensorFlow): which model family, and which phase to keep.

The thresholds `auto` uses come from the label-efficiency study (README, "The model"); they are config
knobs (pipelines/config.py [trainer]), so a user with other data can move them.
"""
from __future__ import annotations

AUTO, HEAD, WIDE_DEEP, FINE_TUNE = "auto", "head", "wide_deep", "fine_tune"
TRAINER_MODES = (AUTO, HEAD, WIDE_DEEP, FINE_TUNE)
# Transform's custom_config keys: whether it makes the wide features, the raw text (transform_features below).
TRANSFORM_WIDE, TRANSFORM_RAW_TEXT = "wide_features", "raw_text"


def choose_mode(mode: str, n_train: int, hp: dict) -> tuple[str, str]:
    """(the mode to train, why in words) for the configured `mode` and `n_train` training examples."""
    if mode not in TRAINER_MODES:
        raise ValueError(f"unknown trainer mode {mode!r}")
    if mode != AUTO:
        return mode, f"{mode}: set by trainer.mode"
    fine, wide = hp["auto_fine_tune_min_examples"], hp["auto_wide_deep_min_examples"]
    if n_train >= fine:
        return FINE_TUNE, f"auto: {n_train} training examples >= {fine} (trainer.auto_fine_tune_min_examples)"
    if n_train >= wide:
        return WIDE_DEEP, f"auto: {n_train} training examples >= {wide} (trainer.auto_wide_deep_min_examples)"
    return HEAD, (f"auto: {n_train} training examples, fewer than {min(fine, wide)} "
                  f"(trainer.auto_fine_tune_min_examples / auto_wide_deep_min_examples)")


def reachable_modes(mode: str, hp: dict) -> set[str]:
    """Every mode run_fn can end up training under trainer.mode `mode` and these thresholds, whatever the data
    (choose_mode, then skip_phase2, which turns fine_tune into head): what Transform must make features for."""
    if mode not in TRAINER_MODES:
        raise ValueError(f"unknown trainer mode {mode!r}")
    if mode == HEAD or mode == WIDE_DEEP:
        return {mode}
    if mode == FINE_TUNE:
        return {FINE_TUNE, HEAD}
    fine, wide = hp["auto_fine_tune_min_examples"], hp["auto_wide_deep_min_examples"]
    # auto: fine_tune from `fine` examples on (always reachable), wide_deep only in [wide, fine).
    return {FINE_TUNE, HEAD} | ({WIDE_DEEP} if wide < fine else set())


def transform_features(mode: str, hp: dict) -> dict:
    """Transform's custom_config for what it writes beyond the embedding: the TF-IDF n-grams (their vocabulary
    and document frequencies are two more passes over the data) and the raw text (phase 2's input), each only
    when a reachable mode reads it."""
    reachable = reachable_modes(mode, hp)
    return {TRANSFORM_WIDE: WIDE_DEEP in reachable, TRANSFORM_RAW_TEXT: FINE_TUNE in reachable}


def skip_phase2(mode: str, why: str, n_eval: int, min_eval_rows: int) -> tuple[str, str]:
    """(mode, why) with fine-tuning skipped when the eval split is too small to decide it: phase 2 is kept only
    if it beats phase 1 on eval, and a handful of rows cannot tell (data.min_eval_rows). Phase 1 is the head."""
    if mode != FINE_TUNE or n_eval >= min_eval_rows:
        return mode, why
    return HEAD, (f"{why}; phase 2 skipped: {n_eval} eval rows, fewer than {min_eval_rows} (data.min_eval_rows), "
                  "too few to decide it")


def keep_phase2(phase1: dict, phase2: dict) -> tuple[bool, str]:
    """Whether fine-tuning (phase 2) is kept over the head alone (phase 1), from their eval figures.

    Each dict holds eval `accuracy` and `loss`. Phase 2 must be better: higher accuracy, or the same
    accuracy at a lower loss. Never kept when worse on eval, nor when it did not move (ties keep phase 1,
    the cheaper model to reason about).
    """
    a1, a2, l1, l2 = phase1["accuracy"], phase2["accuracy"], phase1["loss"], phase2["loss"]
    if not (a2 == a2 and l2 == l2):  # NaN: the run diverged
        return False, "phase 2 diverged (NaN on eval): kept phase 1"
    if a2 > a1 or (a2 == a1 and l2 < l1):
        return True, f"phase 2 kept: eval accuracy {a1:.4f} -> {a2:.4f}, loss {l1:.4f} -> {l2:.4f}"
    return False, f"phase 2 dropped (not better on eval): accuracy {a1:.4f} -> {a2:.4f}, loss {l1:.4f} -> {l2:.4f}"
