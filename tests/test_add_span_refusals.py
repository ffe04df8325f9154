"""add-span refuses what the next run would refuse (issue 30, item 5), end to end on real TREC rows:

init (330 rows) → add-span of a copy of span-1: refused, exit 3, nothing written, the DataGate's own words (no
internal marker) → the same copy dropped in by hand: the run halts at the DataGate with the same problem,
and the splits add-span predicted are exactly the ExampleGen's → add-span of the test set's rows: refused for
leakage → a fresh file lands. One class to train on halts the run at the DataGate, not in References.
"""
import collections
import glob
import os
import shutil

import pytest

from conftest import TRAIN_CSV, read_rows, run_cli, stratified, write_csv

pytestmark = pytest.mark.slow
FAST = ["--set", "beam.direct_running_mode=in_memory"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("add-span")
    rows = stratified(read_rows(TRAIN_CSV), 630, seed=5)
    write_csv(str(root / "first.csv"), rows[:330])
    write_csv(str(root / "fresh.csv"), rows[330:630])
    result = run_cli("init", str(root / "p"), "--train", str(root / "first.csv"), "--min-class-rows", "3")
    assert result.returncode == 0, result.stderr
    shutil.copy(root / "p" / "data" / "span-1" / "train.csv", root / "copy.csv")
    shutil.copy(root / "p" / "data" / "test" / "test.csv", root / "test-copy.csv")
    return root, ["--config", str(root / "p" / "transferline.toml")]


def _rows_of(split_dir):
    import tensorflow as tf

    from components.spans import example_row

    files = sorted(glob.glob(os.path.join(split_dir, "*")))
    return [example_row(tf.train.Example.FromString(r.numpy()).features.feature)
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def test_a_span_copied_from_span_1_is_refused_as_the_run_refuses_it(project):
    from components.spans import planned_splits, span_data_dirs
    from pipelines.config_loading import load_config

    root, cfg = project
    refused = run_cli("add-span", str(root / "copy.csv"), *cfg)
    assert refused.returncode == 3, refused.stderr
    assert "297 of 627 rows (47%) repeat another row exactly" in refused.stderr
    assert "__problems__" not in refused.stderr + refused.stdout and "Traceback" not in refused.stderr
    assert sorted(os.listdir(root / "p" / "data")) == ["span-1", "test"]  # nothing written, no staging left

    # The same file dropped in by hand: the run refuses it at the DataGate, in the same words.
    os.makedirs(root / "p" / "data" / "span-2")
    shutil.copy(root / "copy.csv", root / "p" / "data" / "span-2" / "copy.csv")
    config = load_config(str(root / "p" / "transferline.toml"))
    predicted = planned_splits(config.paths.data_dir, span_data_dirs(config.paths.data_dir, "*.csv"), 0, "*.csv",
                               config.paths.test_data_dir, config.data.train_buckets, config.data.eval_buckets,
                               config.data.min_eval_rows)
    run = run_cli("run", *cfg, *FAST)
    assert run.returncode == 3, run.stderr[-3000:]
    assert "stopped at: DataGate" in run.stderr and "297 of 627 rows (47%) repeat another row exactly" in run.stderr
    (examples,) = glob.glob(str(root / "p" / "work" / "**" / "CsvExampleGen" / "examples" / "*"), recursive=True)
    for split, rows in predicted.items():  # the same rows in the same splits as TFX's ExampleGen made
        assert collections.Counter(_rows_of(os.path.join(examples, f"Split-{split}"))) == collections.Counter(rows)
    assert len(predicted["eval"]) > 50  # eval drawn from both spans (the floor), so the split was predicted
    shutil.rmtree(root / "p" / "data" / "span-2")


def test_a_span_holding_the_test_set_is_refused_for_leakage_and_a_fresh_one_lands(project):
    root, cfg = project
    refused = run_cli("add-span", str(root / "test-copy.csv"), *cfg)
    assert refused.returncode == 3, refused.stderr
    assert "gate rows" in refused.stderr and "contract.max_leakage_fraction" in refused.stderr
    assert sorted(os.listdir(root / "p" / "data")) == ["span-1", "test"]
    landed = run_cli("add-span", str(root / "fresh.csv"), *cfg)
    assert landed.returncode == 0, landed.stderr
    assert sorted(os.listdir(root / "p" / "data")) == ["span-1", "span-2", "test"]
    shutil.rmtree(root / "p" / "data" / "span-2")


def test_one_class_to_train_on_halts_at_the_data_gate_not_in_references(project, tmp_path):
    root, cfg = project
    hum = [r for r in read_rows(TRAIN_CSV) if r["label"] == "HUM"][:120]
    write_csv(str(tmp_path / "data" / "span-1" / "hum.csv"), hum)
    run = run_cli("run", *cfg, *FAST, "--data", str(tmp_path / "data"), "--work-dir", str(tmp_path / "work"))
    assert run.returncode == 3, run.stderr[-3000:]
    assert "only one class, 'HUM'" in run.stderr and "stopped at: DataGate" in run.stderr
    assert "Traceback" not in run.stderr and "at least 2 classes" not in run.stderr
