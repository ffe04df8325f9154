"""Phase-2 fine-tuning speed: training examples/s of the Trainer's fine_tune model on one device.

The pipeline's own model (components.model.build_fine_tune: the encoder trainable inside, the head on
top), Adam at trainer.fine_tune_learning_rate, batches of trainer.fine_tune_batch_size real TREC
training questions. One warm-up epoch-slice (tracing), then timed steps. Prints one line of JSON.
Usage: python bench/finetune_speed.py [--device /GPU:0] [--steps 60] [--batch 32] [--data data/trec]
Runs in well under 2 minutes on 2 CPU cores with the defaults.
"""
import argparse
import csv
import glob
import json
import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def texts(data_dir, n):
    rows = []
    for path in sorted(glob.glob(os.path.join(data_dir, "span-*", "*.csv"))):
        with open(path, newline="", encoding="utf-8") as f:
            rows += [(r["text"], r["label"]) for r in csv.DictReader(f)]
    classes = sorted({label for _, label in rows})
    rows = (rows * (n // len(rows) + 1))[:n]
    return [t for t, _ in rows], [classes.index(label) for _, label in rows], len(classes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="/CPU:0", help="a TF device name: /CPU:0, /GPU:0")
    parser.add_argument("--steps", type=int, default=60, help="timed training steps")
    parser.add_argument("--batch", type=int, default=None, help="default: trainer.fine_tune_batch_size")
    parser.add_argument("--data", default=os.path.join(REPO, "data", "trec"))
    args = parser.parse_args(argv)

    import dataclasses

    import numpy as np
    import tensorflow as tf

    from components.encoder import build_embedded_encoder
    from components.model import build_fine_tune, build_model
    from pipelines.config import TrainerConfig

    hp = dataclasses.asdict(TrainerConfig())
    batch = args.batch or hp["fine_tune_batch_size"]
    handle = build_embedded_encoder(log=lambda m: None)
    x, y, n_classes = texts(args.data, batch * (args.steps + 5))
    with tf.device(args.device):
        model = build_fine_tune(build_model("head", 512, n_classes, 1, hp), handle, hp)
        data = tf.data.Dataset.from_tensor_slices((tf.constant(x), np.array(y))).batch(batch)
        model.fit(data.take(5), epochs=1, verbose=0)  # tracing and the first steps, not timed
        started = time.perf_counter()
        model.fit(data.skip(5).take(args.steps), epochs=1, verbose=0)
        seconds = time.perf_counter() - started
    print(json.dumps({"bench": "finetune_phase2", "device": args.device,
                      "gpus_visible": len(tf.config.list_physical_devices("GPU")), "cpus": os.cpu_count(),
                      "batch": batch, "steps": args.steps, "examples": batch * args.steps,
                      "seconds": round(seconds, 2), "examples_per_s": round(batch * args.steps / seconds, 1),
                      "mean_chars": round(float(np.mean([len(t) for t in x])), 1),
                      "data": os.path.relpath(os.path.abspath(args.data), REPO)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
