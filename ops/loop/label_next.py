"""`transferline label-next --n N` (what to label next, from the request log) and `transferline add-span FILE`
(a labelled CSV, checked against the contract, landed whole as the next span-N/ for `retrain`)."""
from __future__ import annotations

import csv
import datetime
import glob
import os
import shutil
import sys

from components import names
from components.errors import ConfigError, DataRejected, NotFound
from ops.args import add_config_args, config_from, refuse_repository_write, say
from ops.serving.request_log import parse_time, read_requests, request_log_dir
from pipelines.config import ACTIVE_STRATEGIES

HELPER_COLUMNS = ("guess", "score")  # what label-next adds for the labeller; add-span drops them


def register(sub) -> None:
    p = sub.add_parser("label-next", help="the N most informative logged texts not labelled yet, as a CSV to label")
    add_config_args(p, data="data root (span-N/ folders): texts already there are never proposed")
    p.add_argument("--n", type=int, required=True, help="how many texts")
    p.add_argument("--out", metavar="FILE", help="the CSV to write (default <work_dir>/to-label/next-<time>.csv)")
    p.add_argument("--since", metavar="TIME", help="only requests logged since this ISO time (default: all)")
    p.add_argument("--strategy", choices=ACTIVE_STRATEGIES, help="active.strategy (default margin)")
    p.add_argument("--spread", action="store_true", help="spread the picks over clusters (active.spread)")
    p.set_defaults(func=command)
    p = sub.add_parser("add-span", help="check a labelled CSV against the data contract and land it as the next "
                                        "span-N/ (then `transferline run` trains on it)")
    add_config_args(p, work_dir=None, data="data root (span-N/ folders) to add to (paths.data_dir)")
    p.add_argument("file", metavar="FILE", help="CSV with columns text,label (label-next's guess,score are dropped)")
    p.set_defaults(func=add_span_command)


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
                       + (f" since {since}" if since else "") + " (unlabelled, with the model's probabilities)")
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


# ---------------------------------------------------------------------------------------- add-span
def add_span_command(args) -> int:
    print(add_span(config_from(args), args.file, log=say))
    return 0


def next_span(existing) -> int:
    """The number after the highest span (1 when there is none)."""
    return max(existing, default=0) + 1


def add_span(config, path: str, log=lambda m: None) -> str:
    """Checks ``path`` as a run would (same checks and messages), then renames it into place as span-N/."""
    from components.data_gate import text_problems, diagnose_csv_files, problem
    from components.spans import span_dirs

    if not os.path.isfile(path):
        raise NotFound(f"no such file: {path}")
    data_dir = config.paths.data_dir
    refuse_repository_write(data_dir, "the data dir")
    number = next_span(span_dirs(data_dir))
    staging = os.path.join(data_dir, f".staging-span-{number}")  # not span-*: no run reads it half-written
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    staged = os.path.join(staging, os.path.basename(path) if path.endswith(".csv") else "labels.csv")
    try:
        problems = _stage(path, staged) or diagnose_csv_files(staging, "*.csv", config.contract.max_text_chars)
        if not problems:
            with open(staged, newline="", encoding="utf-8") as f:
                rows = [(r[names.TEXT], r[names.LABEL]) for r in csv.DictReader(f)]
            unlabelled = [t for t, lab in rows if not lab.strip()]
            if unlabelled:
                problems.append(problem(f"feature '{names.LABEL}'", f"{len(unlabelled)} row(s) have no label; "
                                        "label every row (or delete the rows you cannot label)", unlabelled))
            problems += _schema_problems(config, rows)
            problems += text_problems(rows, config.contract.max_text_chars, config.contract.max_duplicate_fraction)
        if problems:
            raise DataRejected(problems)
        os.rename(staging, os.path.join(data_dir, f"span-{number}"))  # atomic: the span appears whole
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"{len(rows)} labelled row(s) landed as span-{number}; `transferline run` trains on it")
    return os.path.join(data_dir, f"span-{number}")


def _stage(source: str, staged: str) -> list[dict]:
    """Copies the file, without label-next's helper columns; a file that cannot be read: diagnosed as is."""
    from components.data_gate import diagnose_csv_files

    try:
        with open(source, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            drop = [c for c in HELPER_COLUMNS if c in header]
            if not drop:
                shutil.copyfile(source, staged)
                return []
            rows = [{k: v for k, v in r.items() if k not in drop} for r in reader]
    except (UnicodeDecodeError, csv.Error):
        return diagnose_csv_files(os.path.dirname(os.path.abspath(source)), os.path.basename(source))
    with open(staged, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, [c for c in header if c not in drop])
        writer.writeheader()
        writer.writerows(rows)
    return []


def _schema_problems(config, rows) -> list[dict]:
    """TFDV against the checked-in schema, worded as the DataGate words ExampleValidator's anomalies."""
    import pandas as pd
    import tensorflow_data_validation as tfdv

    from components.data_gate import problem

    frame = pd.DataFrame({names.TEXT: [t or None for t, _ in rows], names.LABEL: [lab or None for _, lab in rows]})
    anomalies = tfdv.validate_statistics(tfdv.generate_statistics_from_dataframe(frame),
                                         tfdv.load_schema_text(config.paths.schema_file))
    return [problem(f"feature '{feature}'", f"{reason.short_description}: {reason.description}")
            for feature, info in sorted(anomalies.anomaly_info.items()) for reason in info.reason]
