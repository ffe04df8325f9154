"""`transferline study labels` on a tiny budget (TREC and BBC News slices), plus the subset draw it rests on."""
import json
import os

import numpy as np
import pytest

from conftest import REPO, TEST_CSV, TRAIN_CSV, read_rows, run_cli, stratified, write_csv

SIZES, SEEDS = [30, 60], 2
BBC_TRAIN = os.path.join(REPO, "data", "bbc-news", "span-1", "articles.csv")
BBC_TEST = os.path.join(REPO, "data", "bbc-news-test", "articles.csv")
ARMS = {"use_head", "wide_deep", "fine_tune", "auto", "tfidf_lr"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    write_csv(str(root / "trec" / "span-1" / "questions.csv"), stratified(read_rows(TRAIN_CSV), 300))
    write_csv(str(root / "trec-test" / "questions.csv"), stratified(read_rows(TEST_CSV), 100, seed=1))
    write_csv(str(root / "bbc" / "span-1" / "articles.csv"), stratified(read_rows(BBC_TRAIN), 150))
    write_csv(str(root / "bbc-test" / "articles.csv"), stratified(read_rows(BBC_TEST), 50, seed=1))
    return root


def _args(root, *extra, datasets=("trec", "bbc")):
    return ["study", "labels", "--work-dir", str(root / "work"), "--out", str(root / "out"),
            "--set", "study.datasets=" + ",".join(str(root / d) for d in datasets), *extra]


@pytest.fixture(scope="module")
def both(data, encoder_dir):
    result = run_cli(*_args(data, "--sizes", ",".join(map(str, SIZES)), "--seeds", str(SEEDS), "--quick"))
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    tables = {}
    for name in ("trec", "bbc"):
        with open(data / "out" / name / "label_efficiency.json") as f:
            tables[name] = json.load(f)
    return result, tables


@pytest.fixture(scope="module")
def quick(both):
    return both[0], both[1]["trec"]


@pytest.mark.slow  # the real encoder and heads, on a tiny budget
def test_quick_mode_writes_both_datasets_tables_and_curves(both, data):
    result, tables = both
    assert tables["bbc"]["n_train_total"] == 150 and tables["bbc"]["n_test"] == 50
    assert tables["bbc"]["classes"] == ["business", "entertainment", "politics", "sports", "tech"]
    for name, table in tables.items():
        assert table["dataset"] == name and {r["model"] for r in table["rows"]} == ARMS
        assert os.path.getsize(data / "out" / name / "label_efficiency.png") > 10_000
        assert f"{name}: accuracy on {table['n_test']} held-out test examples" in result.stdout


@pytest.mark.slow  # the real encoder and heads, on a tiny budget
def test_auto_is_the_arm_the_pipelines_auto_picks(quick):
    from components.modes import choose_mode

    table = quick[1]
    for r in (r for r in table["rows"] if r["model"] == "auto"):
        mode = choose_mode("auto", r["n_fit"], table["config"]["trainer"])[0]
        assert r["picked"] == {"head": "use_head"}.get(mode, mode)
        twin = next(t for t in table["rows"] if (t["model"], t["labels"], t["seed"]) == (r["picked"], r["labels"],
                                                                                         r["seed"]))
        assert twin["accuracy"] == r["accuracy"]


@pytest.mark.slow  # the real encoder and heads, on a tiny budget
def test_writes_a_png_learning_curve(quick, data):
    from PIL import Image

    path = data / "out" / "trec" / "label_efficiency.png"  # one folder per dataset
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
    assert len(rows) == len(SIZES) * SEEDS * len(ARMS)
    by_key = {}
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["macro_f1"] <= 1.0
        by_key.setdefault((r["labels"], r["seed"]), {})[r["model"]] = r
    assert sorted(by_key) == [(n, s) for n in SIZES for s in range(SEEDS)]
    for (n, _), arms in by_key.items():
        head, lr = arms["use_head"], arms["tfidf_lr"]
        assert len({a["subset"] for a in arms.values()}) == 1
        assert head["n_fit"] + head["n_holdout"] == lr["n_fit"] == n
        assert 1 <= head["epochs"] <= 3 and 1 <= arms["wide_deep"]["epochs"] <= 3
        assert arms["fine_tune"]["epochs"] == 1 and arms["fine_tune"]["phase_kept"] in (1, 2)
    assert len({r["subset"] for r in rows}) == len(by_key)  # each (size, seed) its own draw


@pytest.mark.slow  # the real encoder and heads, on a tiny budget
def test_aggregates_are_the_rows_mean_and_std_and_printed(quick):
    stdout, table = quick[0].stdout, quick[1]
    assert len(table["summary"]) == len(SIZES) * len(ARMS)
    for agg in table["summary"]:
        group = [r for r in table["rows"] if (r["model"], r["labels"]) == (agg["model"], agg["labels"])]
        assert len(group) == agg["seeds"] == SEEDS
        for metric in ("accuracy", "macro_f1"):
            values = [r[metric] for r in group]
            assert agg[f"{metric}_mean"] == pytest.approx(np.mean(values))
            assert agg[f"{metric}_std"] == pytest.approx(np.std(values, ddof=1))
        assert f"{agg['accuracy_mean']:.3f} ± {agg['accuracy_std']:.3f}" in stdout


def test_a_size_larger_than_the_data_is_a_one_line_error(data):
    result = run_cli(*_args(data, "--sizes", "100,5000", datasets=("trec",)))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("transferline:")]
    assert len(lines) == 1 and "study.sizes: 5000" in lines[0] and "300 training rows" in lines[0], result.stderr


def test_subsets_are_stratified_and_deterministic_per_seed():
    from ops.study.data import draw_subset, split_holdout

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


def test_run_study_hands_every_arm_the_same_subset(data, monkeypatch):
    """run_study in process, with the encoder and every arm's fit replaced by recorders."""
    from components import encoder
    from ops.study import fits as study_fits, labels as study
    from pipelines.config_loading import load_config

    seen = {"use_head": [], "wide_deep": [], "fine_tune": [], "tfidf_lr": []}
    monkeypatch.setattr(encoder, "embed_texts", lambda handle, cache, texts, log: np.arange(len(texts), dtype=float)[:, None])
    monkeypatch.setattr(encoder, "resolve_handle", lambda *a, **k: "handle")

    def fake_head(x, y, n_classes, x_test, hp, seed, split):
        seen["use_head"].append((x[:, 0].astype(int).tolist(), y.tolist()))
        return np.zeros(len(x_test), int), {"n_fit": len(split[0]), "n_holdout": len(split[1])}, "the head"

    def fake_wide(x, texts, y, n_classes, x_test, test_texts, hp, seed, split, ngram_max, vocab):
        seen["wide_deep"].append((texts, y.tolist()))
        return np.zeros(len(x_test), int), {"n_fit": len(split[0])}

    def fake_fine(head, texts, y, test_texts, hp, split, handle):
        assert head == "the head" and handle == "handle"
        seen["fine_tune"].append((texts, y.tolist()))
        return np.zeros(len(test_texts), int), {"n_fit": len(split[0])}

    def fake_lr(texts, y, test_texts, seed):
        seen["tfidf_lr"].append((texts, y.tolist()))
        return np.zeros(len(test_texts), int), {"n_fit": len(y), "n_holdout": 0}

    for name, fake in (("fit_use_head", fake_head), ("fit_wide_deep", fake_wide), ("fine_tune", fake_fine),
                       ("fit_tfidf_lr", fake_lr)):
        monkeypatch.setattr(study_fits, name, fake)
    config = load_config(overrides=[f"study.datasets={data / 'trec'}", f"study.out_dir={data / 'fake'}",
                                    "study.sizes=24,0", "study.seeds=3"])
    (result,) = study.run_study(config, log=lambda m: None)
    texts = [r["text"] for r in read_rows(str(data / "trec" / "span-1" / "questions.csv"))]
    assert all(len(v) == 6 for v in seen.values())
    for (idx, y_head), *others in zip(seen["use_head"], seen["wide_deep"], seen["fine_tune"], seen["tfidf_lr"]):
        assert all([texts[i] for i in idx] == sub_texts and y_head == y for sub_texts, y in others)
    assert [len(idx) for idx, _ in seen["use_head"]] == [24, 24, 24, 300, 300, 300]
    assert os.path.isfile(result["png_path"]) and os.path.isfile(result["json_path"])
    assert "300 (all)" in study.format_table(result)
