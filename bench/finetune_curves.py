"""Phase 2 epoch by epoch: what early stopping on the eval split picks, against the test set at each epoch.

Per seed, on a dataset with all its labels, as the study trains (ops/study.py: the same subset, holdout and
head): the head, then phase 2 for --epochs epochs with no early stopping, recording after each epoch the
holdout's loss and accuracy and the test accuracy. --schedule constant keeps trainer.fine_tune_learning_rate;
--schedule decay warms up linearly over the first 10 % of the steps to --peak, then decays linearly to 0
at the end of --epochs. Then it prints, for patience 1..3, the mean test accuracy of the epoch that
early stopping on the holdout loss (best weights restored, as the Trainer does) would keep, and the mean
at each epoch. Writes the curves as JSON. ~10 min for TREC, 5 seeds, 6 epochs on 2 CPU cores.

Usage: python bench/finetune_curves.py [--data data/trec] [--seeds 5] [--epochs 8]
                                       [--schedule constant|decay] [--peak 1e-4] [--out curves.json]
"""
import argparse
import dataclasses
import glob
import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Not bench/ itself: its profile.py would shadow the standard library's (cProfile imports it).
sys.path[:] = [REPO] + [p for p in sys.path if os.path.abspath(p or ".") != os.path.join(REPO, "bench")]


def early_stopped(curve, patience):
    """The epoch (0-based) Keras' EarlyStopping(monitor=val_loss, restore_best_weights=True) keeps."""
    best, kept, waited = float("inf"), 0, 0
    for epoch, point in enumerate(curve):
        if point["val_loss"] < best:
            best, kept, waited = point["val_loss"], epoch, 0
        else:
            waited += 1
            if waited >= patience:
                break
    return kept


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(REPO, "data", "trec"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--schedule", choices=("constant", "decay"), default="constant")
    parser.add_argument("--peak", type=float, default=1e-4, help="decay: the rate after the warm-up")
    parser.add_argument("--out", default="finetune_curves.json")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf
    import tf_keras

    from components.encoder import resolve_handle
    from components.model import build_fine_tune, compile_model
    from ops import study, study_fits
    from pipelines.config_loading import load_config

    config = load_config(None, [])
    hp = dataclasses.asdict(config.trainer)
    texts, labels = study.read_rows(sorted(glob.glob(os.path.join(args.data, config.data.file_pattern))), "training")
    test_texts, test_labels = study.read_rows(sorted(glob.glob(args.data.rstrip("/") + "-test/*.csv")), "test")
    classes = sorted(set(labels))
    y, y_test = np.array([classes.index(c) for c in labels]), np.array([classes.index(c) for c in test_labels])
    vectors = study.embed(config, texts + test_texts, lambda m: None)
    x, x_test = vectors[:len(y)], vectors[len(y):]
    handle = resolve_handle(config.encoder.handle, None, log=lambda m: None)
    batch = hp["fine_tune_batch_size"]
    runs = []
    for seed in range(args.seeds):
        fit, hold = split = study.split_holdout(y, seed)
        head, _ = study_fits.train_head(x, y, len(classes), hp, seed, split)
        model = build_fine_tune(head, handle, hp)
        if args.schedule == "decay":
            total = args.epochs * int(np.ceil(len(fit) / batch))
            warm = max(1, total // 10)
            rate = tf_keras.optimizers.schedules.PolynomialDecay(args.peak, total - warm, 0.0)

            class WarmThenDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
                def __call__(self, step):
                    step = tf.cast(step, tf.float32)
                    return tf.where(step < warm, args.peak * step / warm, rate(step - warm))

            compile_model(model, WarmThenDecay())
        curve = []

        def score(epoch, logs):
            accuracy = float((study_fits._predict(model, list(test_texts)) == y_test).mean())
            curve.append({"epoch": epoch + 1, "val_loss": logs["val_loss"], "val_accuracy": logs["val_accuracy"],
                          "test_accuracy": accuracy})
            print(f"seed {seed} epoch {epoch + 1}: {curve[-1]}", flush=True)

        model.fit(tf.constant([texts[i] for i in fit]), y[fit], epochs=args.epochs, batch_size=batch, verbose=0,
                  validation_data=(tf.constant([texts[i] for i in hold]), y[hold]), shuffle=True,
                  callbacks=[tf_keras.callbacks.LambdaCallback(on_epoch_end=score)])
        runs.append({"seed": seed, "curve": curve})
    tests = np.array([[p["test_accuracy"] for p in run["curve"]] for run in runs])
    summary = {"mean_test_accuracy_by_epoch": tests.mean(axis=0).round(4).tolist(),
               "early_stopped": {p: float(np.mean([run["curve"][early_stopped(run["curve"], p)]["test_accuracy"]
                                                   for run in runs])) for p in (1, 2, 3)}}
    print(json.dumps(summary))
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "runs": runs, **summary}, f, indent=1)


if __name__ == "__main__":
    main()
