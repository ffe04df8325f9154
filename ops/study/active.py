"""`transferline study active`: does choosing what to label pay? Active learning on TREC, measured.

Start from active.start stratified random labels; the rest of the training set is the unlabelled pool (its
labels are revealed only when picked). Each round trains the pipeline's own head (ops.study.fits.train_head:
components.trainer.build_head with the config's trainer knobs, early-stopped on a 20 % holdout), scores it
on the held-out test set, and adds active.step labels chosen by the strategy (ops/loop/ranking.py, the same
ranking and near-duplicate filter as `label-next`). Every text is embedded once up front.
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import time

import numpy as np

from ops.args import add_config_args, config_from, say
from ops.loop import ranking
from ops.study.data import draw_subset, read_rows

QUICK = {"pool": 1000, "test": 200, "rounds": 2, "seeds": 1, "epochs": 3}  # smoke test only


def register(study_sub) -> None:
    p = study_sub.add_parser("active", help="active learning on TREC: labels needed to reach active.target test "
                                            "accuracy by margin, entropy and random picks")
    add_config_args(p, work_dir="work dir (default place of the output)")
    p.add_argument("--seeds", type=int, help="repetitions (active.seeds; default 5)")
    p.add_argument("--rounds", type=int, help="rounds of active.step labels (active.rounds)")
    p.add_argument("--out", metavar="DIR", help="where the JSON and PNG go (active.out_dir)")
    p.add_argument("--quick", action="store_true", help="smoke test: 1000-row pool, 200 test rows, 1 seed, "
                                                        "2 rounds, 3 epochs; the figures mean nothing")
    p.set_defaults(func=command)


def command(args) -> int:
    extra = [f"active.{k}={getattr(args, k)}" for k in ("seeds", "rounds") if getattr(args, k)]
    extra += [f"active.out_dir={os.path.abspath(args.out)}"] if args.out else []
    result = run_active(config_from(args, *extra), quick=args.quick, log=say)
    print(format_table(result))
    print(f"  table: {result['json_path']}\n  learning curves: {result['png_path']}")
    return 0


def labels_to_reach(points: list[tuple[int, float]], target: float) -> int | None:
    """The first label count whose accuracy reaches the target (None: never within the study)."""
    return next((n for n, acc in sorted(points) if acc >= target), None)


def run_active(config, quick: bool = False, log=print) -> dict:
    from components.encoder import embed_texts
    from ops.study.fits import train_head

    started = time.monotonic()
    texts, labels = read_rows(sorted(glob.glob(os.path.join(config.paths.data_dir, config.data.file_pattern))),
                              "training")
    test_texts, test_labels = read_rows(sorted(glob.glob(os.path.join(config.paths.test_data_dir, "*.csv"))), "test")
    classes = sorted(set(labels))
    y, y_test = np.array([classes.index(c) for c in labels]), np.array([classes.index(c) for c in test_labels])
    a, hp = config.active, dataclasses.asdict(config.trainer)
    rounds, seeds = (QUICK["rounds"], QUICK["seeds"]) if quick else (a.rounds, a.seeds)
    if quick:  # a stratified slice of the pool and of the test set
        keep, keep_test = draw_subset(y, QUICK["pool"], 0), draw_subset(y_test, QUICK["test"], 0)
        texts, y = [texts[i] for i in keep], y[keep]
        test_texts, y_test = [test_texts[i] for i in keep_test], y_test[keep_test]
        hp["max_epochs"] = min(hp["max_epochs"], QUICK["epochs"])
    vectors = embed_texts(config.encoder.handle, config.encoder.cache_dir, texts + test_texts, log)
    x, x_test = vectors[:len(texts)], vectors[len(texts):]
    log(f"active study: pool {len(texts)}, test {len(y_test)}; {a.start} + {rounds} x {a.step} labels, "
        f"{seeds} seed(s)")

    def score(labelled, seed):
        model, info = train_head(x[labelled], y[labelled], len(classes), hp, seed)
        return model, float(np.mean(model(x_test, training=False).numpy().argmax(axis=1) == y_test)), info

    rows = []
    for seed in range(seeds):
        start = draw_subset(y, a.start, seed)
        first_model, acc0, info0 = score(start, seed)
        for strategy in ranking.STRATEGIES:
            labelled, model, acc, info = start, first_model, acc0, info0
            for r in range(rounds + 1):
                rows.append({"strategy": strategy, "seed": seed, "round": r, "labels": len(labelled),
                             "accuracy": acc, "epochs": info["epochs"]})
                if r == rounds:
                    break
                pool = np.setdiff1d(np.arange(len(y)), labelled)
                probs = model(x[pool], training=False).numpy()
                order = ranking.first_of_each([texts[i] for i in pool], ranking.rank(probs, strategy, seed * 1000 + r))
                head = order[:a.step * a.pool_factor]
                chosen = ranking.pick(range(len(head)), x[pool[head]], a.step, a.near_duplicate)
                labelled = np.sort(np.concatenate([labelled, pool[[head[j] for j in chosen]]]))
                model, acc, info = score(labelled, seed)
            log(f"seed {seed}, {strategy}: " + ", ".join(f"{p['labels']}:{p['accuracy']:.3f}"
                                                         for p in rows[-(rounds + 1):]))
    result = summarize(rows, a.target)
    out_dir = config.work.active_dir
    os.makedirs(out_dir, exist_ok=True)
    result.update({"config": {"start": a.start, "step": a.step, "rounds": rounds, "seeds": seeds, "quick": quick,
                              "target": a.target, "near_duplicate": a.near_duplicate, "trainer": hp},
                   "n_pool": len(y), "n_test": len(y_test), "rows": rows,
                   "wall_seconds": round(time.monotonic() - started, 1),
                   "json_path": os.path.join(out_dir, "active_learning.json"),
                   "png_path": os.path.join(out_dir, "active_learning.png")})
    plot(result)
    with open(result["json_path"], "w") as f:
        json.dump({k: v for k, v in result.items() if not k.endswith("_path")}, f, indent=1)
    return result


def summarize(rows: list[dict], target: float) -> dict:
    """Mean ± std accuracy per (strategy, labels); labels to reach the target on the mean curve; the ratios."""
    curves, reach = {}, {}
    for strategy in ranking.STRATEGIES:
        points = []
        for n in sorted({r["labels"] for r in rows if r["strategy"] == strategy}):
            acc = np.array([r["accuracy"] for r in rows if r["strategy"] == strategy and r["labels"] == n])
            points.append({"labels": n, "mean": float(acc.mean()), "std": float(acc.std(ddof=1)) if len(acc) > 1
                           else 0.0, "seeds": len(acc)})
        curves[strategy] = points
        reach[strategy] = labels_to_reach([(p["labels"], p["mean"]) for p in points], target)
    base = reach.get("random")
    ratio = {s: (reach[s] / base if reach[s] and base else None) for s in ("margin", "entropy")}
    return {"curves": curves, "labels_to_target": reach, "ratio_to_random": ratio}


def plot(result: dict) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for strategy, color in zip(ranking.STRATEGIES, ("tab:blue", "tab:green", "tab:gray")):
        pts = result["curves"][strategy]
        n, mean, std = (np.array([p[k] for p in pts]) for k in ("labels", "mean", "std"))
        ax.fill_between(n, mean - std, mean + std, color=color, alpha=0.15, lw=0)
        ax.plot(n, mean, marker="o", color=color, label=f"{strategy} (reaches {result['config']['target']:g} at "
                                                        f"{result['labels_to_target'][strategy] or 'never'})")
    ax.axhline(result["config"]["target"], color="k", ls="--", lw=1)
    ax.set_xlabel("labels")
    ax.set_ylabel(f"accuracy on {result['n_test']} held-out test questions")
    ax.set_title(f"Active learning on TREC: USE + head, mean ± std over {result['config']['seeds']} seed(s)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(result["png_path"])


def format_table(result: dict) -> str:
    lines = ["labels | " + " | ".join(f"{s:>15}" for s in ranking.STRATEGIES)]
    for i, p in enumerate(result["curves"]["random"]):
        lines.append(f"{p['labels']:>6} | " + " | ".join(
            f"{result['curves'][s][i]['mean']:.3f} ± {result['curves'][s][i]['std']:.3f}" for s in ranking.STRATEGIES))
    reach, ratio = result["labels_to_target"], result["ratio_to_random"]
    lines.append(f"labels to reach {result['config']['target']:g}: " + ", ".join(
        f"{s} {reach[s] or 'not reached'}" for s in ranking.STRATEGIES) + "; vs random: " + ", ".join(
        f"{s} {ratio[s]:.2f}" if ratio[s] else f"{s} n/a" for s in ("margin", "entropy")))
    return "\n".join(lines)
