"""The monitor's HTML page, in the report's style: verdict, the checks, and the plots a person would look at."""
from __future__ import annotations

import collections

import numpy as np

from ops.report.html_parts import e, png, table
from ops.report.html_parts import STYLE as _STYLE


def _figure(width=6.0, height=3.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _img(fig, alt: str) -> str:
    fig.tight_layout()
    return f"<img alt='{e(alt)}' src='data:image/png;base64,{png(fig)}'>"


def _lengths(texts: dict) -> str:
    fig, ax = _figure()
    lengths = {k: np.array([len(t) for t in v]) for k, v in texts.items()}
    top = max(int(np.percentile(np.concatenate(list(lengths.values())), 99)) + 1, 10)
    bins = np.linspace(0, top, 40)
    for name, values in lengths.items():
        ax.hist(np.clip(values, 0, top), bins=bins, density=True, alpha=0.5, label=f"{name} ({len(values)})")
    ax.set_xlabel("text length (characters; longer shown at the right edge)")
    ax.set_ylabel("density")
    ax.legend()
    return _img(fig, "text length: traffic vs training data")


def _labels(labels: dict) -> str:
    fig, ax = _figure()
    classes = sorted({c for v in labels.values() for c in v})
    width = 0.8 / max(len(labels), 1)
    for i, (name, values) in enumerate(labels.items()):
        counts = collections.Counter(values)
        share = [counts[c] / max(len(values), 1) for c in classes]
        ax.bar(np.arange(len(classes)) + i * width, share, width, label=name)
    ax.set_xticks(np.arange(len(classes)) + width * (len(labels) - 1) / 2, classes)
    ax.set_ylabel("share")
    ax.legend()
    return _img(fig, "predicted labels of the traffic vs labels of the gate data")


def _confidence(scores: dict, threshold: float) -> str:
    fig, ax = _figure()
    for name, values in scores.items():
        if len(values):
            ax.hist(values, bins=np.linspace(0, 1, 21), density=True, alpha=0.5, label=f"{name} ({len(values)})")
    ax.axvline(threshold, color="k", ls="--", lw=1)
    ax.set_xlabel("top score")
    ax.set_ylabel("density")
    ax.legend()
    return _img(fig, "confidence: traffic vs gate data")


def _topic(similarities, topic: dict) -> str:
    fig, ax = _figure()
    ax.hist(similarities, bins=40, alpha=0.7, label=f"requests ({len(similarities)})")
    ax.axvline(topic["similarity_threshold"], color="k", ls="--", lw=1,
               label=f"threshold: {topic['expected']:.0%} of held-out training texts below")
    ax.set_xlabel(f"mean cosine similarity to the {topic['neighbours']} nearest training texts")
    ax.set_ylabel("requests")
    ax.legend()
    return _img(fig, "similarity of the requests to the training texts")


def _topic_section(result: dict, similarities) -> list[str]:
    topic = result["checks"].get("off_topic")
    if not topic or similarities is None:
        return []
    return ["<h2>Topic</h2>",
            f"<p><b>{topic['share']:.1%}</b> of {topic['requests_embedded']} requests are less similar to the "
            f"{topic['training_embedded']} training texts than {topic['expected']:.0%} of the training texts "
            f"themselves (similarity below {topic['similarity_threshold']:.3f}; median similarity: requests "
            f"{topic['median_similarity']:.3f}, held-out training texts {topic['median_training_similarity']:.3f})."
            "</p>", _topic(similarities, topic),
            table("least_similar", ["similarity", "request (least similar to the training texts first)"],
                  [[f"{x['similarity']:.3f}", x["text"]] for x in topic["least_similar"]])]


def write_page(result: dict, stats: dict, texts: dict, labels: dict, scores: dict, topic_similarities=None) -> None:
    from ops.loop.monitor_checks import CHECKS

    moved = result["verdict"] == "drift"
    rows = [[check, "MOVED" if v["moved"] else "ok", f"{v['value']:+.4f}", f"{v['threshold']:g}", CHECKS[check][1],
             CHECKS[check][0]] for check, v in result["checks"].items()]
    low = result["checks"].get("low_confidence", {}).get("traffic")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>transferline monitor</title>"
             f"<style>{_STYLE}</style></head><body><h1>transferline: monitor</h1>",
             f"<p>Traffic {e(result['since'])} .. {e(result['until'])}: <b>{result['requests']}</b> logged "
             f"request(s), served version <b>{result['served_version']}</b> (versions in the traffic: "
             f"{e(', '.join(result['versions_in_traffic']))}); training data: {result['training']['rows']} rows, "
             f"gate data {result['training']['gate_rows']} rows (spans {e(result['training']['spans'])}).</p>",
             f"<h2>Verdict: <span class='{'no' if moved else 'ok'}' id='verdict'>"
             f"{'drift' if moved else 'no drift'}</span></h2>",
             table("checks", ["check", "", "value", "threshold", "knob", "what"], rows),
             "<h2>Text length</h2>", _lengths(texts),
             "<h2>Labels</h2>", _labels(labels),
             "<h2>Confidence</h2>", _confidence(scores, threshold=result.get("low_confidence_threshold", 0.5)),
             f"<p>Low-confidence share of the traffic: {low:.3f}</p>" if low is not None else "",
             *_topic_section(result, topic_similarities)]
    try:
        from tensorflow_data_validation.utils import display_util

        parts.append("<details><summary>Statistics: traffic vs training data (TFDV Facets Overview; loads Facets "
                     "from the web)</summary>" + display_util.get_statistics_html(
                         stats["traffic"], stats["training"], lhs_name="traffic", rhs_name="training") + "</details>")
    except Exception:  # the Facets view is a convenience; the page stands without it
        pass
    parts.append("</body></html>")
    with open(result["html_path"], "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
