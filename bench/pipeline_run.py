"""Pipeline benchmark: a full `transferline run` on the default data, measured against the encoder alone.

All figures come from one invocation, so the ratios are comparable on a noisy machine:
  R1  full first run (wall) / the encoder's own time to embed the same texts (train + test, batch 64)
  R2  fully cached re-run / first run
  R3  embedding throughput inside Transform (texts / Transform's wall time) / direct batched encoder
  R4  first run with Beam's DirectRunner in_memory / multi_processing (the default), same data
Writes bench/results/pipeline_run.json. Takes ~6 minutes on 2 cores.
Usage: python bench/pipeline_run.py [--data DIR] [--test-data DIR]
"""
import argparse
import csv
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def texts_under(root, pattern):
    out = []
    for path in sorted(glob.glob(os.path.join(root, pattern))):
        with open(path, newline="", encoding="utf-8") as f:
            out += [row["text"] for row in csv.DictReader(f)]
    return out


def run(work_dir, data, test_data, mode):
    """One `transferline run` in a fresh process; returns (wall seconds, its summary.json)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--work-dir", work_dir, "--data", data,
         "--set", f"paths.test_data_dir={test_data}", "--set", f"beam.direct_running_mode={mode}"],
        capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"run failed:\n{result.stderr[-3000:]}")
    summary_path = result.stdout.strip().splitlines()[-1].split("summary: ")[1]
    with open(summary_path) as f:
        summary = json.load(f)
    return wall, summary


def encoder_seconds(texts, batch=64):
    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401

    from components.encoder import build_embedded_encoder

    encoder = hub.load(build_embedded_encoder(log=lambda m: None))
    encoder(tf.constant(texts[:batch]))  # warm-up
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        encoder(tf.constant(texts[i:i + batch])).numpy()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(REPO, "data", "trec"))
    parser.add_argument("--test-data", default=os.path.join(REPO, "data", "trec-test"))
    args = parser.parse_args()

    train_texts = texts_under(args.data, "span-*/*.csv")
    test_texts = texts_under(args.test_data, "*.csv")
    with tempfile.TemporaryDirectory() as tmp:
        first, summary = run(os.path.join(tmp, "mp"), args.data, args.test_data, "multi_processing")
        cached, _ = run(os.path.join(tmp, "mp"), args.data, args.test_data, "multi_processing")
        in_memory, _ = run(os.path.join(tmp, "im"), args.data, args.test_data, "in_memory")
    # Largest single process of the runs (the runner, or a Beam worker), as the kernel counted it.
    peak_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    enc_all = encoder_seconds(train_texts + test_texts)
    enc_train = encoder_seconds(train_texts)
    transform_s = summary["durations_s"]["Transform"]
    r = {
        "train_texts": len(train_texts), "test_texts": len(test_texts),
        "first_run_s": first, "cached_run_s": cached, "in_memory_first_run_s": in_memory,
        "encoder_all_texts_s": enc_all, "transform_s": transform_s,
        "transform_texts_per_s": len(train_texts) / transform_s,
        "direct_encoder_texts_per_s": len(train_texts) / enc_train,
        "durations_s": summary["durations_s"], "gate_accuracy": summary["metrics"]["accuracy"],
        "peak_rss_mb_largest_process": peak_rss,
    }
    r["R1_first_run_over_encoder"] = first / enc_all
    r["R2_cached_over_first"] = cached / first
    r["R3_transform_over_direct_throughput"] = r["transform_texts_per_s"] / r["direct_encoder_texts_per_s"]
    r["R4_in_memory_over_multi_processing"] = in_memory / first

    print(f"{len(train_texts)} training + {len(test_texts)} test texts; gate accuracy (newest span's eval split "
          f"+ test set) {r['gate_accuracy']:.4f}")
    rows = [
        ("R1 full first run / encoder alone", f"{first:.1f} s / {enc_all:.1f} s", r["R1_first_run_over_encoder"]),
        ("R2 cached re-run / first run", f"{cached:.1f} s / {first:.1f} s", r["R2_cached_over_first"]),
        ("R3 Transform / direct embedding throughput",
         f"{r['transform_texts_per_s']:.0f} / {r['direct_encoder_texts_per_s']:.0f} texts/s",
         r["R3_transform_over_direct_throughput"]),
        ("R4 in_memory / multi_processing first run", f"{in_memory:.1f} s / {first:.1f} s",
         r["R4_in_memory_over_multi_processing"]),
    ]
    for name, figures, ratio in rows:
        print(f"{name:<46}{figures:>30}{ratio:>10.3f}")
    print("per component (first run, s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["durations_s"].items()))
    print(f"peak RSS, largest single process of the runs: {peak_rss:.0f} MB")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "pipeline_run.json"), "w") as f:
        json.dump(r, f, indent=2)


if __name__ == "__main__":
    main()
