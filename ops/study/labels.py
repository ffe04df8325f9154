"""`transferline study labels`: what transfer learning buys, measured in labels.

The Trainer's own models (components/model.py, the config's trainer knobs: frozen USE + head, wide_deep,
fine_tune; and auto, which is whichever of them the pipeline's auto picks for that many examples) against
TF-IDF + logistic regression, all trained on the SAME stratified subsets of the training data (100, 500
and all labels by default, several seeds each) and scored on each dataset's held-out test set
(study.datasets: TREC and BBC News by default). The arms: ops/study/fits.py.

Why the baseline is fair: TF-IDF (word uni+bigrams, sublinear tf) + L2 logistic regression is the
standard strong linear baseline for short texts, run with scikit-learn's defaults (C=1) as the head runs
with the pipeline's. It gets every label of the subset: it has no epochs to stop, so it needs no
early-stopping holdout, while the head gives up 20 % of its labels to one (as the pipeline's 4:1
train/eval split does). Neither model is tuned on the test set. At "all" every seed trains on the same
rows, so only the head varies (init, holdout); the LR fit is deterministic (std 0).

Training rows are all span-*/ files (data.train_spans does not apply). Every text is embedded once up
front, so each frozen-encoder training costs seconds; fine_tune runs the encoder on every text each epoch.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import time

import numpy as np

from components.errors import ConfigError
from ops.args import add_config_args, config_from, say
from ops.study.data import HOLDOUT, draw_subset, fingerprint, read_rows, shown, split_holdout
from ops.study.fits import MODELS, TRAINED
from ops.study.output import format_table, plot  # noqa: F401  (format_table: also the tests')
from pipelines.config import REPO_ROOT, Config

ARM_OF_MODE = {"head": "use_head", "wide_deep": "wide_deep", "fine_tune": "fine_tune"}
QUICK_EPOCHS = 3
QUICK_FINE_TUNE_EPOCHS = 1


def summarize(rows: list[dict]) -> list[dict]:
    """Per (model, labels): mean and sample std (ddof=1; 0 for a single seed) over the seeds."""
    out = []
    for model in MODELS:
        for n in sorted({r["labels"] for r in rows if r["model"] == model}):
            group = [r for r in rows if r["model"] == model and r["labels"] == n]
            agg = {"model": model, "labels": n, "seeds": len(group)}
            for metric in ("accuracy", "macro_f1"):
                v = np.array([r[metric] for r in group])
                agg[f"{metric}_mean"] = float(v.mean())
                agg[f"{metric}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            out.append(agg)
    return out


def datasets(config: Config) -> list[tuple[str, str]]:
    """(training root, test set) of each dataset: study.datasets, each test set beside it as <root>-test."""
    roots = [d if os.path.isabs(d) else os.path.join(REPO_ROOT, d) for d in config.study.datasets]
    return [(r.rstrip(os.sep), r.rstrip(os.sep) + "-test") for r in roots] or [
        (config.paths.data_dir, config.paths.test_data_dir)]


def run_study(config: Config, quick: bool = False, log=print) -> list[dict]:
    """One label-efficiency table per dataset."""
    results = []
    for data_dir, test_dir in datasets(config):
        one = dataclasses.replace(config, paths=dataclasses.replace(config.paths, data_dir=data_dir,
                                                                      test_data_dir=test_dir))
        results.append(run_dataset(one, quick, log))
    return results


def auto_arm(n_fit: int, hp: dict) -> str:
    """The arm the pipeline's `auto` would train on n_fit training examples (its eval split held out)."""
    from components.modes import choose_mode

    return ARM_OF_MODE[choose_mode("auto", n_fit, hp)[0]]


def run_dataset(config: Config, quick: bool = False, log=print) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    from components.encoder import embed_texts, resolve_handle

    from ops.study import fits

    started = time.monotonic()
    train_files = sorted(glob.glob(os.path.join(config.paths.data_dir, config.data.file_pattern)))
    if not train_files:
        raise ConfigError(f"no training data: nothing matches {config.data.file_pattern} under {config.paths.data_dir}")
    if not config.paths.test_data_dir:
        raise ConfigError("paths.test_data_dir is empty: the study scores on the held-out test set; set it")
    test_files = sorted(glob.glob(os.path.join(config.paths.test_data_dir, "*.csv")))
    if not test_files:
        raise ConfigError(f"no test set: no *.csv in paths.test_data_dir ({config.paths.test_data_dir})")
    texts, labels = read_rows(train_files, "training")
    test_texts, test_labels = read_rows(test_files, "test")
    classes = sorted(set(labels))
    unknown = sorted(set(test_labels) - set(classes))
    if unknown:
        raise ConfigError(f"the test set has labels the training data lacks: {', '.join(unknown)}")
    y = np.array([classes.index(c) for c in labels])
    y_test = np.array([classes.index(c) for c in test_labels])
    n = len(y)
    smallest = 2 * len(classes)  # every class present, and a holdout left for early stopping
    for s in config.study.sizes:
        if s > n or 0 < s < smallest:
            raise ConfigError(f"study.sizes: {s} labels cannot be drawn from the {n} training rows of "
                              f"{config.paths.data_dir} ({len(classes)} classes); use {smallest}..{n}, or 0 for all")
    sizes = sorted({s or n for s in config.study.sizes})
    seeds = list(range(config.study.seeds))
    hp = dataclasses.asdict(config.trainer)  # the pipeline's own trainer knobs, as run_fn receives them
    if quick:
        hp["max_epochs"] = min(hp["max_epochs"], QUICK_EPOCHS)
        hp["fine_tune_max_epochs"] = min(hp["fine_tune_max_epochs"], QUICK_FINE_TUNE_EPOCHS)
    name = os.path.basename(config.paths.data_dir.rstrip(os.sep))
    log(f"study of {name}: {n} training rows ({len(classes)} classes), {len(y_test)} test rows; "
        f"sizes {', '.join(map(str, sizes))} x {len(seeds)} seeds{' (quick)' if quick else ''}")

    # Both the training and the test texts, once: the expensive part, shared by every training.
    vectors = embed_texts(config.encoder.handle, config.encoder.cache_dir, texts + test_texts, log)
    x, x_test = vectors[:n], vectors[n:]
    embed_seconds = time.monotonic() - started


    handle = resolve_handle(config.encoder.handle, config.encoder.cache_dir or None, log=lambda m: None)
    rows = []
    for size in sizes:
        for seed in seeds:
            idx = draw_subset(y, size, seed)  # the one subset every arm trains on
            split = split_holdout(y[idx], seed)
            sub_texts = [texts[i] for i in idx]
            for model in TRAINED:
                t0 = time.monotonic()
                if model == "use_head":
                    pred, info, head = fits.fit_use_head(x[idx], y[idx], len(classes), x_test, hp, seed, split)
                elif model == "wide_deep":
                    pred, info = fits.fit_wide_deep(x[idx], sub_texts, y[idx], len(classes), x_test, test_texts, hp,
                                                    seed, split, config.transform.ngram_max,
                                                    config.transform.ngram_vocab_size)
                elif model == "fine_tune":  # phase 2 on use_head's head: phase 1 is that arm
                    pred, info = fits.fine_tune(head, sub_texts, y[idx], test_texts, hp, split, handle)
                else:
                    pred, info = fits.fit_tfidf_lr(sub_texts, y[idx], test_texts, seed)
                rows.append({"model": model, "labels": int(size), "seed": seed, "subset": fingerprint(idx), **info,
                             "accuracy": float(accuracy_score(y_test, pred)),
                             "macro_f1": float(f1_score(y_test, pred, average="macro",
                                                        labels=range(len(classes)), zero_division=0)),
                             "seconds": round(time.monotonic() - t0, 2)})
            picked = auto_arm(len(split[0]), hp)
            rows.append({**next(r for r in rows[-len(TRAINED):] if r["model"] == picked), "model": "auto",
                         "picked": picked})
            log(f"{name}, {size} labels, seed {seed}: " + ", ".join(
                f"{MODELS[r['model']]} {r['accuracy']:.3f}" for r in rows[-len(MODELS):]))

    out_dir = os.path.join(config.work.study_dir, name)
    os.makedirs(out_dir, exist_ok=True)
    result = {
        "dataset": name,
        "config": {"sizes": sizes, "seeds": len(seeds), "quick": quick, "encoder_handle": config.encoder.handle,
                   "trainer": hp, "transform": dataclasses.asdict(config.transform), "holdout_fraction": HOLDOUT,
                   "std": "sample (ddof=1) over seeds",
                   "data_dir": shown(config.paths.data_dir), "test_data_dir": shown(config.paths.test_data_dir)},
        "models": MODELS, "classes": classes, "n_train_total": n, "n_test": len(y_test),
        "rows": rows, "summary": summarize(rows),
        "embed_seconds": round(embed_seconds, 1), "wall_seconds": round(time.monotonic() - started, 1),
        "json_path": os.path.join(out_dir, "label_efficiency.json"),
        "png_path": os.path.join(out_dir, "label_efficiency.png"),
    }
    plot(result, result["png_path"])
    with open(result["json_path"], "w") as f:
        json.dump({k: v for k, v in result.items() if not k.endswith("_path")}, f, indent=1)
    return result


def register(study_sub) -> None:
    p = study_sub.add_parser("labels", help="the Trainer's modes (head, wide_deep, fine_tune, auto) vs TF-IDF + "
                                            "LR at growing numbers of labels, on held-out test sets")
    add_config_args(p, work_dir="work dir (default place of the output)")
    p.add_argument("--sizes", help="comma-separated training-set sizes, 'all' for all (study.sizes; "
                                   "default 100,500,all)")
    p.add_argument("--seeds", type=int, help="subsets per size (study.seeds; default 5)")
    p.add_argument("--out", metavar="DIR", help="where the JSON table and PNG go (study.out_dir)")
    p.add_argument("--quick", action="store_true", help="a tiny budget for smoke tests: at most 3 epochs per "
                                                        "head; the figures mean nothing")
    p.set_defaults(func=command)


def command(args) -> int:
    extra = []
    if args.sizes:
        extra.append(f"study.sizes={args.sizes.replace('all', '0')}")
    if args.seeds:
        extra.append(f"study.seeds={args.seeds}")
    if args.out:
        extra.append(f"study.out_dir={os.path.abspath(args.out)}")
    for result in run_study(config_from(args, *extra), quick=args.quick, log=say):
        print(format_table(result))
        print(f"  table: {result['json_path']}\n  learning curve: {result['png_path']}")
    return 0
