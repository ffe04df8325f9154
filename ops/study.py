"""`transferline study labels`: what transfer learning buys, measured in labels.

Frozen USE embeddings + our head (components.trainer.build_head, the config's trainer hyperparameters)
against TF-IDF + logistic regression, trained on the SAME stratified subsets of the training data
(100, 500 and all labels by default, several seeds each) and scored on the held-out test set.

Why the baseline is fair: TF-IDF (word uni+bigrams, sublinear tf) + L2 logistic regression is the
standard strong linear baseline for short texts, run with scikit-learn's defaults (C=1) as the head runs
with the pipeline's. It gets every label of the subset: it has no epochs to stop, so it needs no
early-stopping holdout, while the head gives up 20 % of its labels to one (as the pipeline's 4:1
train/eval split does). Neither model is tuned on the test set. At "all" every seed trains on the same
rows, so only the head varies (init, holdout); the LR fit is deterministic (std 0).

Training rows are all span-*/ files (data.train_spans does not apply), test rows paths.test_data_dir.
Every text is embedded once up front, so each training costs seconds.
"""
from __future__ import annotations

import csv
import dataclasses
import glob
import hashlib
import json
import os
import time

import numpy as np

from components.errors import ConfigError
from ops.args import add_config_args, config_from, say
from pipelines.config import REPO_ROOT, Config

MODELS = {"use_head": "USE + head", "tfidf_lr": "TF-IDF + LR"}
HOLDOUT = 0.2  # the head's early-stopping holdout: the pipeline's 4:1 train/eval split
QUICK_EPOCHS = 3


def read_rows(paths: list[str], what: str) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"text", "label"} <= set(reader.fieldnames or ()):
                raise ConfigError(f"{path}: {what} CSV needs columns text,label, has {reader.fieldnames}")
            for row in reader:
                texts.append(row["text"] or "")
                labels.append(row["label"])
    if not texts:
        raise ConfigError(f"no {what} rows in {', '.join(paths)}")
    return texts, labels


def _take(y: np.ndarray, k: int, rng: np.random.Generator, keep_one: bool = False) -> np.ndarray:
    """k indices into y, classes in proportion (largest remainder), each class at least once when k allows.

    keep_one leaves every class one row outside the draw (for the holdout: the rest must still train).
    """
    counts = np.bincount(y)
    hi = np.maximum(counts - 1, 0) if keep_one else counts
    k = min(k, int(hi.sum()))
    lo = np.minimum(hi, 1) if k >= np.count_nonzero(hi) else np.zeros_like(hi)
    share = counts * k / len(y)
    quota = np.clip(np.floor(share).astype(int), lo, hi)
    while quota.sum() != k:  # hand out (or take back) one row at a time, furthest from its share first
        step = 1 if quota.sum() < k else -1
        room = quota < hi if step > 0 else quota > lo
        quota[np.argmax(np.where(room, (share - quota) * step, -np.inf))] += step
    picked = [rng.choice(np.flatnonzero(y == c), q, replace=False) for c, q in enumerate(quota) if q]
    return np.sort(np.concatenate(picked))


def draw_subset(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """The training subset for (size, seed): stratified, deterministic; size 0 (or len(y)) = all rows."""
    if size in (0, len(y)):
        return np.arange(len(y))
    return _take(y, size, np.random.default_rng([seed, size]))


def split_holdout(y_sub: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, holdout) positions within a subset: a stratified 20 % holdout for early stopping."""
    hold = _take(y_sub, max(1, round(HOLDOUT * len(y_sub))), np.random.default_rng([seed, len(y_sub), 1]),
                 keep_one=True)
    return np.setdiff1d(np.arange(len(y_sub)), hold), hold


def _shown(path: str) -> str:
    """Repository paths relative (the checked-in JSON names no machine), others as given."""
    path = os.path.abspath(path)
    return os.path.relpath(path, REPO_ROOT) if path.startswith(REPO_ROOT + os.sep) else path


def fingerprint(idx: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(idx, np.int64).tobytes()).hexdigest()[:12]


def embed(config: Config, texts: list[str], log, batch: int = 64) -> np.ndarray:
    import tensorflow as tf

    from components.encoder import load_encoder

    encoder = load_encoder(config.encoder.handle, config.encoder.cache_dir or None, log=log)
    out, started = [], time.monotonic()
    for i in range(0, len(texts), batch):
        out.append(encoder(tf.constant(texts[i:i + batch])).numpy())
        done = min(i + batch, len(texts))
        if done == len(texts) or (i // batch) % 20 == 19:
            log(f"embedded {done}/{len(texts)} texts ({time.monotonic() - started:.1f} s)")
    return np.concatenate(out)


def fit_use_head(x, y, n_classes, x_test, hp, seed):
    """Our head on frozen embeddings, early-stopped on a stratified holdout (best weights restored)."""
    model, info = train_head(x, y, n_classes, hp, seed)
    # A direct call, not model.predict: predict traces a new tf.function per model (retracing warnings).
    return model(x_test, training=False).numpy().argmax(axis=1), info


def train_head(x, y, n_classes, hp, seed):
    """(the trained head, info): build_head with the trainer's knobs, early-stopped on a stratified holdout."""
    import tf_keras

    from components.trainer import build_head

    fit, hold = split_holdout(y, seed)
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(hp["seed"] + seed)
    model = build_head(x.shape[1], n_classes, hp)
    history = model.fit(x[fit], y[fit], validation_data=(x[hold], y[hold]), epochs=hp["max_epochs"],
                        batch_size=hp["batch_size"], verbose=0, callbacks=[tf_keras.callbacks.EarlyStopping(
                            monitor="val_loss", patience=hp["early_stopping_patience"], restore_best_weights=True)])
    val = history.history["val_loss"]
    info = {"n_fit": len(fit), "n_holdout": len(hold), "epochs": len(val), "best_epoch": int(np.argmin(val)) + 1}
    return model, info


def fit_tfidf_lr(texts, y, test_texts, seed):
    """TF-IDF uni+bigrams + logistic regression (the pipeline's reference model), on the whole subset
    (no epochs, so no holdout needed)."""
    from components.references import tfidf_lr

    model = tfidf_lr(seed)
    model.fit(texts, y)
    return model.predict(test_texts), {"n_fit": len(texts), "n_holdout": 0}


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


def run_study(config: Config, quick: bool = False, log=print) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

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
    log(f"study: {n} training rows ({len(classes)} classes), {len(y_test)} test rows; "
        f"sizes {', '.join(map(str, sizes))} x {len(seeds)} seeds{' (quick)' if quick else ''}")

    # Both the training and the test texts, once: the expensive part, shared by every training.
    vectors = embed(config, texts + test_texts, log)
    x, x_test = vectors[:n], vectors[n:]
    embed_seconds = time.monotonic() - started

    import components.trainer  # noqa: F401  (brings TFX, ~10 s: paid here, not in the first fit's timing)

    rows = []
    for size in sizes:
        for seed in seeds:
            idx = draw_subset(y, size, seed)  # the one subset both models train on
            sub_texts = [texts[i] for i in idx]
            for model in MODELS:
                t0 = time.monotonic()
                if model == "use_head":
                    pred, info = fit_use_head(x[idx], y[idx], len(classes), x_test, hp, seed)
                else:
                    pred, info = fit_tfidf_lr(sub_texts, y[idx], test_texts, seed)
                rows.append({"model": model, "labels": int(size), "seed": seed, "subset": fingerprint(idx), **info,
                             "accuracy": float(accuracy_score(y_test, pred)),
                             "macro_f1": float(f1_score(y_test, pred, average="macro",
                                                        labels=range(len(classes)), zero_division=0)),
                             "seconds": round(time.monotonic() - t0, 2)})
            log(f"{size} labels, seed {seed}: " + ", ".join(
                f"{MODELS[r['model']]} acc {r['accuracy']:.3f}" for r in rows[-2:]))

    out_dir = config.study.out_dir or os.path.join(config.paths.work_dir, "study")
    os.makedirs(out_dir, exist_ok=True)
    result = {
        "config": {"sizes": sizes, "seeds": len(seeds), "quick": quick, "encoder_handle": config.encoder.handle,
                   "trainer": hp, "holdout_fraction": HOLDOUT, "std": "sample (ddof=1) over seeds",
                   "data_dir": _shown(config.paths.data_dir), "test_data_dir": _shown(config.paths.test_data_dir)},
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


def plot(result: dict, path: str) -> None:
    # A bare Figure with the Agg canvas: no pyplot, so no display and no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for (model, name), color in zip(MODELS.items(), ("tab:blue", "tab:orange")):
        agg = [a for a in result["summary"] if a["model"] == model]
        n = np.array([a["labels"] for a in agg])
        mean = np.array([a["accuracy_mean"] for a in agg])
        std = np.array([a["accuracy_std"] for a in agg])
        ax.fill_between(n, mean - std, mean + std, color=color, alpha=0.15, lw=0)
        ax.errorbar(n, mean, yerr=std, color=color, marker="o", capsize=4, label=f"{name} (mean ± std)")
        for xi, yi in zip(n, mean):
            ax.annotate(f"{yi:.3f}", (xi, yi), textcoords="offset points", xytext=(7, 0), ha="left", va="center",
                        fontsize=8, color=color, bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1})
    total = result["n_train_total"]
    ticks = result["config"]["sizes"]
    ax.set_xscale("log")
    ax.set_xticks(ticks, [f"{t:,}" + (" (all)" if t == total else "") for t in ticks])
    ax.minorticks_off()
    ax.set_xlim(min(ticks) / 1.5, max(ticks) * 1.5)
    ax.set_ylim(max(0.0, ax.get_ylim()[0] - 0.03), min(1.0, ax.get_ylim()[1] + 0.03))
    ax.set_xlabel("labelled training examples (log scale)")
    ax.set_ylabel(f"accuracy on the {result['n_test']} held-out test examples")
    ax.set_title(f"Label efficiency: frozen USE + head vs TF-IDF + LR\n{result['config']['seeds']} seeds per size; "
                 f"each seed a stratified subset, the same for both models", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def format_table(result: dict) -> str:
    agg = {(a["model"], a["labels"]): a for a in result["summary"]}
    pm = lambda a, m: f"{a[m + '_mean']:.3f} ± {a[m + '_std']:.3f}"  # noqa: E731
    head = ["labels", "USE + head acc", "TF-IDF + LR acc", "gain", "USE + head F1", "TF-IDF + LR F1"]
    lines = [head]
    for n in result["config"]["sizes"]:
        u, t = agg[("use_head", n)], agg[("tfidf_lr", n)]
        lines.append([f"{n}" + (" (all)" if n == result["n_train_total"] else ""), pm(u, "accuracy"),
                      pm(t, "accuracy"), f"{u['accuracy_mean'] - t['accuracy_mean']:+.3f}",
                      pm(u, "macro_f1"), pm(t, "macro_f1")])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    text = [" | ".join(c.rjust(w) for c, w in zip(r, widths)) for r in lines]
    text.insert(1, "-+-".join("-" * w for w in widths))
    return (f"Label efficiency on {result['n_test']} held-out test examples: mean ± sample std over "
            f"{result['config']['seeds']} seeds (F1 = macro F1)\n" + "\n".join(text))


def register(sub) -> None:
    study_parser = sub.add_parser("study", help="measurements: the label-efficiency study")
    study_sub = study_parser.add_subparsers(dest="study_command", metavar="STUDY", required=True)
    p = study_sub.add_parser("labels", help="frozen USE + our head vs TF-IDF + logistic regression at growing "
                                            "numbers of labels, on the held-out test set")
    add_config_args(p, work_dir="work dir (default place of the output)")
    p.add_argument("--sizes", help="comma-separated training-set sizes, 'all' for all (study.sizes; "
                                   "default 100,500,all)")
    p.add_argument("--seeds", type=int, help="subsets per size (study.seeds; default 5)")
    p.add_argument("--out", metavar="DIR", help="where the JSON table and PNG go (study.out_dir)")
    p.add_argument("--quick", action="store_true", help="a tiny budget for smoke tests: at most 3 epochs per "
                                                        "head; the figures mean nothing")
    p.set_defaults(func=command)
    from ops import study_active

    study_active.register(study_sub)


def command(args) -> int:
    extra = []
    if args.sizes:
        extra.append(f"study.sizes={args.sizes.replace('all', '0')}")
    if args.seeds:
        extra.append(f"study.seeds={args.seeds}")
    if args.out:
        extra.append(f"study.out_dir={os.path.abspath(args.out)}")
    result = run_study(config_from(args, *extra), quick=args.quick, log=say)
    print(format_table(result))
    print(f"  table: {result['json_path']}\n  learning curve: {result['png_path']}")
    return 0
