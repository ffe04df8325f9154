"""Phase 2 epoch by epoch: what early stopping on the eval split picks, against the test set at each epoch.

Per seed, on a dataset with all its labels, as the study trains (ops/study/labels.py: the same subset, holdout and
head): the head, then phase 2 for --epochs epochs with no early stopping, recording after each epoch the
holdout's loss and accuracy and the test accuracy. --schedule constant keeps trainer.fine_tune_learning_rate;
--schedule decay warms up linearly over the first 10 % of the steps to --peak, then decays linearly to 0
at the end of --epochs. Then it prints, for patience 1..3, the mean test accuracy of the epoch that
early stopping on the holdout loss (best weights restored, as the Trainer does) would keep, and the mean
at each epoch. Writes the curves as JSON. ~5 min for TREC, 5 seeds, 6 epochs on 2 CPU cores.
Other levers: --set (any config knob, e.g. trainer.fine_tune_batch_size=16 or trainer.dropout=0.5),
--label-smoothing (phase 2's loss, holdout loss included), --average-from N (also scores, after each epoch
from N on, the mean of the weights at the ends of epochs N..now: stochastic weight averaging), --holdout F
(the holdout's fraction, for phase 1 and 2 alike: what more training data would give).

Usage: python bench/finetune_curves.py [--data data/trec] [--seeds 5] [--epochs 8]
                                       [--schedule constant|decay] [--peak 1e-4] [--set trainer.KEY=VALUE]
                                       [--label-smoothing 0.1] [--average-from 2] [--holdout 0.2]
                                       [--out curves.json]
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
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="phase 2's loss (train and holdout)")
    parser.add_argument("--average-from", type=int, default=0, help="also score the weights averaged from epoch N")
    parser.add_argument("--holdout", type=float, default=None, help="the holdout's fraction (default: the study's)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a config override, as `transferline --set` takes it (e.g. trainer.dropout=0.5)")
    parser.add_argument("--out", default="finetune_curves.json")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf
    import tf_keras

    from components.encoder import resolve_handle
    from components.model import build_fine_tune, compile_model
    from ops.study import data as study, fits as study_fits
    from pipelines.config_loading import load_config

    if args.holdout is not None:
        study.HOLDOUT = args.holdout
    config = load_config(None, args.set)
    hp = dataclasses.asdict(config.trainer)
    texts, labels = study.read_rows(sorted(glob.glob(os.path.join(args.data, config.data.file_pattern))), "training")
    test_texts, test_labels = study.read_rows(sorted(glob.glob(args.data.rstrip("/") + "-test/*.csv")), "test")
    classes = sorted(set(labels))
    y, y_test = np.array([classes.index(c) for c in labels]), np.array([classes.index(c) for c in test_labels])
    vectors = embed_texts(config.encoder.handle, config.encoder.cache_dir, texts + test_texts, lambda m: None)
    x, x_test = vectors[:len(y)], vectors[len(y):]
    handle = resolve_handle(config.encoder.handle, None, log=lambda m: None)
    batch = hp["fine_tune_batch_size"]
    test_list = list(test_texts)

    def test_accuracy(m, inputs):
        return float((study_fits._predict(m, inputs) == y_test).mean())

    runs = []
    for seed in range(args.seeds):
        fit, hold = split = study.split_holdout(y, seed)
        head, _ = study_fits.train_head(x, y, len(classes), hp, seed, split)
        head_accuracy = test_accuracy(head, x_test)  # phase 1 alone
        model = build_fine_tune(head, handle, hp)
        rate, loss = hp["fine_tune_learning_rate"], None
        if args.schedule == "decay":
            total = args.epochs * int(np.ceil(len(fit) / batch))
            warm = max(1, total // 10)
            decay = tf_keras.optimizers.schedules.PolynomialDecay(args.peak, total - warm, 0.0)

            class WarmThenDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
                def __call__(self, step):
                    step = tf.cast(step, tf.float32)
                    return tf.where(step < warm, args.peak * step / warm, decay(step - warm))

            rate = WarmThenDecay()
        if args.label_smoothing:
            smoothing, n_classes = args.label_smoothing, len(classes)

            def loss(y_true, y_pred):
                one_hot = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), n_classes)
                return tf_keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=smoothing)

        compile_model(model, rate, loss)  # a fresh optimizer either way: phase 2 has not started
        curve, ends = [], []
        hold_x = tf.constant([texts[i] for i in hold])

        def score(epoch, logs):
            curve.append({"epoch": epoch + 1, "val_loss": logs["val_loss"], "val_accuracy": logs["val_accuracy"],
                          "test_accuracy": test_accuracy(model, test_list)})
            if args.average_from and epoch + 1 >= args.average_from:
                now = model.get_weights()
                ends.append(now)
                model.set_weights([np.mean(w, axis=0) for w in zip(*ends)])
                hold_loss, hold_accuracy = model.evaluate(hold_x, y[hold], batch_size=256, verbose=0)
                curve[-1]["averaged"] = {"val_loss": hold_loss, "val_accuracy": hold_accuracy,
                                         "test_accuracy": test_accuracy(model, test_list)}
                model.set_weights(now)
            print(f"seed {seed} epoch {epoch + 1}: {curve[-1]}", flush=True)

        model.fit(tf.constant([texts[i] for i in fit]), y[fit], epochs=args.epochs, batch_size=batch, verbose=0,
                  validation_data=(hold_x, y[hold]), shuffle=True,
                  callbacks=[tf_keras.callbacks.LambdaCallback(on_epoch_end=score)])
        runs.append({"seed": seed, "head_test_accuracy": head_accuracy, "curve": curve})
    tests = np.array([[p["test_accuracy"] for p in run["curve"]] for run in runs])
    summary = {"mean_test_accuracy_by_epoch": tests.mean(axis=0).round(4).tolist(),
               "early_stopped": {p: float(np.mean([run["curve"][early_stopped(run["curve"], p)]["test_accuracy"]
                                                   for run in runs])) for p in (1, 2, 3)}}
    if args.average_from:
        summary["averaged_mean_test_accuracy_by_epoch"] = np.array(
            [[p["averaged"]["test_accuracy"] for p in run["curve"] if "averaged" in p] for run in runs]
        ).mean(axis=0).round(4).tolist()
    print(json.dumps(summary))
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "runs": runs, **summary}, f, indent=1)


if __name__ == "__main__":
    main()
