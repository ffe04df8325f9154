"""`transferline study labels` on a tiny budget, plus the subset draw it rests on."""
import json
import os
import sys
import types

import numpy as np
import pytest

from conftest import TEST_CSV, TRAIN_CSV, read_rows, run_cli, stratified, write_csv

SIZES, SEEDS = [30, 60], 2


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    write_csv(str(root / "data" / "span-1" / "questions.csv"), stratified(read_rows(TRAIN_CSV), 300))
    write_csv(str(root / "test" / "questions.csv"), stratified(read_rows(TEST_CSV), 100, seed=1))
    return root


def _args(root, *extra):
    return ["study", "labels", "--work-dir", str(root / "work"), "--out", str(root / "out"),
            "--set", f"paths.data_dir={root / 'data'}", "--set", f"paths.test_data_dir={root / 'test'}", *extra]


@pytest.fixture(scope="module")
def quick(data, encoder_dir):
    result = run_cli(*_args(data, "--sizes", ",".join(map(str, SIZES)), "--seeds", str(SEEDS), "--quick"))
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    with open(data / "out" / "label_efficiency.json") as f:
        return result, json.load(f)


@pytest.mark.slow  # the real encoder and heads, on a tiny budget
def test_writes_a_png_learning_curve(quick, data):
    from PIL import Image

    path = data / "out" / "label_efficiency.png"
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert 500 <= width <= 1500 and 300 <= height <= 1000, image.size
    assert os.path.getsize(path) > 10_000
    assert str(path) in quick[0].stdout


@pytest.mark.slow  # the real encoder and heads, on a tiny budget
def test_both_models_train_on_the_same_subsets(quick):
    table = quick[1]
    rows = table["rows"]
    assert table["n_train_total"] == 300 and table["n_test"] == 100
    assert table["config"]["sizes"] == SIZES and table["config"]["trainer"]["max_epochs"] == 3
    assert len(rows) == len(SIZES) * SEEDS * 2
    by_key = {}
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["macro_f1"] <= 1.0
        by_key.setdefault((r["labels"], r["seed"]), {})[r["model"]] = r
    assert sorted(by_key) == [(n, s) for n in SIZES for s in range(SEEDS)]
    for (n, _), pair in by_key.items():
        head, lr = pair["use_head"], pair["tfidf_lr"]
        assert head["subset"] == lr["subset"]
        assert head["n_fit"] + head["n_holdout"] == lr["n_fit"] == n
        assert 1 <= head["epochs"] <= 3
    assert len({r["subset"] for r in rows}) == len(by_key)  # each (size, seed) its own draw


@pytest.mark.slow  # the real encoder and heads, on a tiny budget
def test_aggregates_are_the_rows_mean_and_std_and_printed(quick):
    stdout, table = quick[0].stdout, quick[1]
    assert len(table["summary"]) == len(SIZES) * 2
    for agg in table["summary"]:
        group = [r for r in table["rows"] if (r["model"], r["labels"]) == (agg["model"], agg["labels"])]
        assert len(group) == agg["seeds"] == SEEDS
        for metric in ("accuracy", "macro_f1"):
            values = [r[metric] for r in group]
            assert agg[f"{metric}_mean"] == pytest.approx(np.mean(values))
            assert agg[f"{metric}_std"] == pytest.approx(np.std(values, ddof=1))
            assert f"{agg[metric + '_mean']:.3f} ± {agg[metric + '_std']:.3f}" in stdout


def test_a_size_larger_than_the_data_is_a_one_line_error(data):
    result = run_cli(*_args(data, "--sizes", "100,5000"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("transferline:")]
    assert len(lines) == 1 and "study.sizes: 5000" in lines[0] and "300 training rows" in lines[0], result.stderr


def test_subsets_are_stratified_and_deterministic_per_seed():
    from ops.study import draw_subset, split_holdout

    labels = [r["label"] for r in read_rows(TRAIN_CSV)]
    classes = sorted(set(labels))
    y = np.array([classes.index(c) for c in labels])
    for size in (12, 100, 500):
        subsets = [draw_subset(y, size, seed) for seed in range(3)]
        assert all(np.array_equal(s, draw_subset(y, size, seed)) for seed, s in enumerate(subsets))
        assert len({tuple(s) for s in subsets}) == 3
        for s in subsets:
            assert len(s) == len(set(s)) == size
            assert set(y[s]) == set(range(len(classes)))  # even ABBR, 1.6 % of TREC
            fit, hold = split_holdout(y[s], 0)
            assert len(hold) == round(0.2 * size) and sorted([*fit, *hold]) == list(range(size))
            assert set(y[s][fit]) == set(range(len(classes)))  # the holdout never takes a class's last row
    assert np.array_equal(draw_subset(y, 0, 3), np.arange(len(y)))


def test_run_study_hands_both_models_the_same_subset(data, monkeypatch):
    """run_study in process, with the encoder and both fits replaced by recorders."""
    from ops import study
    from pipelines.config import load_config

    seen = {"use_head": [], "tfidf_lr": []}
    monkeypatch.setattr(study, "embed", lambda config, texts, log: np.arange(len(texts), dtype=float)[:, None])

    def fake_head(x, y, n_classes, x_test, hp, seed):
        seen["use_head"].append((x[:, 0].astype(int).tolist(), y.tolist()))
        return np.zeros(len(x_test), int), {"n_fit": len(y), "n_holdout": 0}

    def fake_lr(texts, y, test_texts, seed):
        seen["tfidf_lr"].append((texts, y.tolist()))
        return np.zeros(len(test_texts), int), {"n_fit": len(y), "n_holdout": 0}

    monkeypatch.setattr(study, "fit_use_head", fake_head)
    # The real head's module imports TFX (~10 s); these fakes need none of it.
    monkeypatch.setitem(sys.modules, "components.trainer", types.ModuleType("components.trainer"))
    monkeypatch.setattr(study, "fit_tfidf_lr", fake_lr)
    config = load_config(overrides=[f"paths.data_dir={data / 'data'}", f"paths.test_data_dir={data / 'test'}",
                                    f"study.out_dir={data / 'fake'}", "study.sizes=24,0", "study.seeds=3"])
    result = study.run_study(config, log=lambda m: None)
    texts = [r["text"] for r in read_rows(str(data / "data" / "span-1" / "questions.csv"))]
    assert len(seen["use_head"]) == len(seen["tfidf_lr"]) == 6
    for (idx, y_head), (sub_texts, y_lr) in zip(seen["use_head"], seen["tfidf_lr"]):
        assert [texts[i] for i in idx] == sub_texts and y_head == y_lr
    assert [len(idx) for idx, _ in seen["use_head"]] == [24, 24, 24, 300, 300, 300]
    assert os.path.isfile(result["png_path"]) and os.path.isfile(result["json_path"])
    assert "300 (all)" in study.format_table(result)
