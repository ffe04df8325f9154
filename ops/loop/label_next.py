"""`transferline label-next --n N`: what to label next, from the request log, as a CSV to fill in and land with
`transferline add-span` (ops/loop/spans.py)."""
from __future__ import annotations

import csv
import datetime
import glob
import os

from components import names
from components.errors import ConfigError, NotFound
from ops.args import add_config_args, config_from, say
from ops.serving.request_log import parse_time, read_requests, request_log_dir
from pipelines.config import ACTIVE_STRATEGIES

HELPER_COLUMNS = ("guess", "score")  # what label-next adds for the labeller; add-span drops them (ops/loop/spans.py)


def register(sub) -> None:
    p = sub.add_parser("label-next", help="the N most informative logged texts not labelled yet, as a CSV to label")
    add_config_args(p, data="data root (span-N/ folders): texts already there are never proposed")
    p.add_argument("--n", type=int, required=True, help="how many texts")
    p.add_argument("--out", metavar="FILE", help="the CSV to write (default <work_dir>/to-label/next-<time>.csv)")
    p.add_argument("--since", metavar="TIME", help="only requests logged since this ISO time (default: all)")
    p.add_argument("--strategy", choices=ACTIVE_STRATEGIES, help="active.strategy (default margin)")
    p.add_argument("--spread", action="store_true", help="spread the picks over clusters (active.spread)")
    p.set_defaults(func=command)


def command(args) -> int:
    if args.n <= 0:
        raise ConfigError("--n must be > 0")
    extra = [f"active.strategy={args.strategy}"] if args.strategy else []
    extra += ["active.spread=true"] if args.spread else []
    path, rows = label_next(config_from(args, *extra), args.n, args.out, args.since, log=say)
    say(f"{len(rows)} text(s) to label: fill the label column, then `transferline add-span {path}`")
    print(path)
    return 0


def labelled_texts(config) -> set[str]:
    """Normalized texts of every span, and of the held-out test set (labelling those would leak the gate)."""
    from ops.loop.ranking import normalize

    files = glob.glob(os.path.join(config.paths.data_dir, config.data.file_pattern))
    if config.paths.test_data_dir:
        files += glob.glob(os.path.join(config.paths.test_data_dir, "*.csv"))
    found = set()
    for path in files:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            found.update(normalize(r.get(names.TEXT) or "") for r in csv.DictReader(f))
    return found


def label_next(config, n: int, out: str | None = None, since: str | None = None, log=lambda m: None):
    """Ranks the logged texts by active.strategy, drops labelled ones and duplicates; writes the CSV."""
    import numpy as np

    from ops.loop import ranking

    traffic = read_requests(request_log_dir(config), parse_time(since, "--since") if since else None)
    strategy = config.active.strategy
    known = labelled_texts(config)
    keep = [i for i, (t, p) in enumerate(zip(traffic["text"], traffic["probabilities"]))
            if t.strip() and ranking.normalize(t) not in known and (p or strategy == "random")]
    if not keep:
        raise NotFound(f"no logged request to propose under {request_log_dir(config)}"
                       + (f" since {since}" if since else "") + " (unlabelled, with the model's probabilities)"
                       + (f"; {traffic.attrs['malformed']} malformed line(s) skipped" if traffic.attrs["malformed"]
                          else ""))
    texts = [traffic["text"][i] for i in keep]
    dicts = [traffic["probabilities"][i] for i in keep]
    classes = sorted({c for d in dicts for c in d})
    probs = np.array([[d.get(c, 0.0) for c in classes] for d in dicts]) if classes else np.zeros((len(keep), 1))
    order = ranking.first_of_each(texts, ranking.rank(probs, strategy, seed=len(texts)))
    pool = order[:n * config.active.pool_factor]
    log(f"{len(traffic)} logged, {len(keep)} unlabelled, {len(order)} distinct; embedding the best {len(pool)} "
        "for near-duplicates")
    from components.encoder import embed_texts

    vectors = embed_texts(config.encoder.handle, config.encoder.cache_dir, [texts[i] for i in pool], log)
    clusters = ranking.cluster(vectors, n) if config.active.spread else None
    chosen = [pool[j] for j in ranking.pick(range(len(pool)), vectors, n, config.active.near_duplicate, clusters)]
    out = out or os.path.join(config.work.to_label, f"next-{datetime.datetime.now():%Y%m%dT%H%M%S}.csv")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    rows = [{names.TEXT: texts[i], names.LABEL: "", "guess": classes[int(np.argmax(probs[i]))] if dicts[i] else "",
             "score": f"{float(np.max(probs[i])):.4f}" if dicts[i] else ""} for i in chosen]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, [names.TEXT, names.LABEL, *HELPER_COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    return out, rows
