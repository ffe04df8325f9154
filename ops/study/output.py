"""The study's outputs: the learning curve (PNG) and the table printed (and put in the README)."""
from __future__ import annotations

import numpy as np

from ops.study.fits import MODELS


def plot(result: dict, path: str) -> None:
    # A bare Figure with the Agg canvas: no pyplot, so no display and no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for (model, name), color in zip(MODELS.items(), ("tab:blue", "tab:green", "tab:red", "black", "tab:orange")):
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
    ax.set_title(f"Label efficiency on {result['dataset']}: the Trainer's modes vs TF-IDF + LR\n"
                 f"{result['config']['seeds']} seeds per size; "
                 f"each seed a stratified subset, the same for every model", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def format_table(result: dict) -> str:
    """Accuracy (mean ± sample std over seeds) of every arm at every size; auto's pick beside it."""
    agg = {(a["model"], a["labels"]): a for a in result["summary"]}
    picks = {}
    for r in result["rows"]:
        if r["model"] == "auto":
            picks.setdefault(r["labels"], set()).add(MODELS[r["picked"]])
    head = ["labels", *MODELS.values(), "auto picked", "auto - TF-IDF"]
    lines = [head]
    for n in result["config"]["sizes"]:
        cells = [f"{agg[(m, n)]['accuracy_mean']:.3f} ± {agg[(m, n)]['accuracy_std']:.3f}" for m in MODELS]
        gain = agg[("auto", n)]["accuracy_mean"] - agg[("tfidf_lr", n)]["accuracy_mean"]
        lines.append([f"{n}" + (" (all)" if n == result["n_train_total"] else ""), *cells,
                      ", ".join(sorted(picks.get(n, ()))), f"{gain:+.3f}"])
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    text = [" | ".join(c.rjust(w) for c, w in zip(r, widths)) for r in lines]
    text.insert(1, "-+-".join("-" * w for w in widths))
    return (f"{result['dataset']}: accuracy on {result['n_test']} held-out test examples, mean ± sample std over "
            f"{result['config']['seeds']} seeds\n" + "\n".join(text))
