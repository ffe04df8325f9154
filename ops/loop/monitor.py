"""`transferline monitor [--since TIME] [--until TIME]`: has the traffic moved away from the training data?

Reads the request log of the window (default: the last monitor.window_hours), compares it with the data the
served model was trained on (ops/loop/monitor_checks.py: found through MLMD) and writes a terminal summary, JSON
and one HTML page under <work_dir>/monitor/<time>/, and an MLMD execution whose input is the served Model.
Exit codes for alerting: 0 fine, 6 drift (ops/loop/verdicts.py Drift), 7 too little traffic (NotEnoughTraffic).
"""
from __future__ import annotations

import datetime
import json
import os
import sys

from components import names
from ops.loop.verdicts import Drift, NotEnoughTraffic
from ops.args import add_config_args, config_from
from ops.serving.request_log import parse_time, read_requests, request_log_dir

MONITOR_EXECUTION = "transferline.Monitor"   # MLMD execution type of a check (input: the served Model)
MONITOR_REPORT = "transferline.MonitorReport"  # its output artifact: the folder with monitor.json and .html


def register(sub) -> None:
    p = sub.add_parser("monitor", help="compare the logged traffic with the served model's training data; "
                                       "exit 0 fine, 6 drift, 7 not enough traffic")
    add_config_args(p)
    p.add_argument("--since", metavar="TIME", help="ISO time, e.g. 2025-01-31T00:00 (UTC unless an offset is "
                                                   "given); default: --until minus monitor.window_hours")
    p.add_argument("--until", metavar="TIME", help="ISO time (default: now)")
    p.set_defaults(func=command)


def command(args) -> int:
    config = config_from(args)
    result = run_monitor(config, args.since, args.until)
    print(format_summary(result), file=sys.stderr)
    print(result.get("html_path") or result["json_path"])
    if result["verdict"] == "drift":
        moved = [c for c, v in result["checks"].items() if v["moved"]]
        raise Drift(f"drift: {', '.join(moved)} moved beyond their thresholds (see {result['json_path']})")
    if result["verdict"] == "not_enough_traffic":
        raise NotEnoughTraffic(f"{result['requests']} logged request(s) between {result['since']} and "
                               f"{result['until']}: fewer than monitor.min_requests ({config.monitor.min_requests})"
                               "; no verdict")
    return 0


def window(config, since: str | None, until: str | None):
    end = parse_time(until, "--until") if until else datetime.datetime.now(datetime.timezone.utc)
    start = parse_time(since, "--since") if since else end - datetime.timedelta(hours=config.monitor.window_hours)
    return start, end


def run_monitor(config, since: str | None = None, until: str | None = None, log=lambda m: None) -> dict:
    """The check; writes monitor.json (and, with enough traffic, monitor.html); returns the result."""
    start, end = window(config, since, until)
    traffic = read_requests(request_log_dir(config), start, end)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    out_dir = os.path.join(config.work.monitor_dir, stamp)
    os.makedirs(out_dir, exist_ok=True)
    result = {"since": start.isoformat(), "until": end.isoformat(), "requests": len(traffic),
              "malformed_lines": traffic.attrs["malformed"], "json_path": os.path.join(out_dir, "monitor.json")}
    if len(traffic) < config.monitor.min_requests:
        result["verdict"] = "not_enough_traffic"
        return _write_json(result)

    import numpy as np

    from ops.loop import monitor_checks as md

    served = md.served_model(config)
    model, splits = md.training_data(config, served)
    train_texts, train_labels = splits.get(names.TRAIN_SPLIT, ([], []))
    gate_texts = [t for s in names.gate_splits() for t in splits.get(s, ([], []))[0]]
    gate_labels = [lab for s in names.gate_splits() for lab in splits.get(s, ([], []))[1]]
    texts = list(traffic["text"])
    predicted = [lab for lab in traffic["label"] if lab]
    traffic_scores = traffic["score"].dropna().to_numpy(dtype=float)
    log(f"{len(traffic)} requests vs {len(train_texts)} training and {len(gate_texts)} gate rows of served "
        f"version {served['version']}")
    stats = {"traffic": md.statistics(texts, list(traffic["label"])),
             "training": md.statistics(train_texts, train_labels),
             "gate": md.statistics(gate_texts, gate_labels)}
    predicted_stats = md.statistics([t for t, lab in zip(texts, traffic["label"]) if lab], predicted)
    vocab = md.vocabulary(train_texts)
    gate_scores = md.scores(served["path"], gate_texts)
    m = config.monitor
    oov = {"traffic": md.oov_rate(texts, vocab), "gate": md.oov_rate(gate_texts, vocab)}
    low = {"traffic": float(np.mean(traffic_scores < m.low_confidence)) if len(traffic_scores) else 0.0,
           "gate": float(np.mean(gate_scores < m.low_confidence))}
    values = {
        "text_length": {"value": md.tfdv_distance(stats["traffic"], stats["training"], md.LENGTH)},
        "oov_rate": {"value": oov["traffic"] - oov["gate"], **oov},
        "empty_share": {"value": float(np.mean([not t.strip() for t in texts]))},
        "long_share": {"value": float(np.mean([len(t) > m.long_text_chars for t in texts]))},
    }
    if predicted:  # rows from a sidecar without probabilities have no prediction to compare
        values["label"] = {"value": md.tfdv_distance(predicted_stats, stats["gate"], names.LABEL)}
        values["low_confidence"] = {"value": low["traffic"] - low["gate"], **low}
    topic = md.topic_figures(config, train_texts, texts, log)
    if topic:  # the embedding of every request vs the training texts' (ops/loop/monitor_checks.py topic_shift)
        values["off_topic"], topic_similarities = topic
    checks = md.judge(values, m)
    result["low_confidence_threshold"] = m.low_confidence
    result.update({
        "verdict": "drift" if any(c["moved"] for c in checks.values()) else "fine", "checks": checks,
        "served_version": served["version"], "versions_in_traffic": sorted({str(v) for v in traffic["version"]}),
        "training": {"rows": len(train_texts), "gate_rows": len(gate_texts), "spans": served["provenance"].get(
            names.SPANS, ""), "model": served["provenance"].get("model", "")},
        "html_path": os.path.join(out_dir, "monitor.html")})
    from ops.loop.monitor_page import write_page

    write_page(result, stats, {"traffic": texts, "training": train_texts},
               {"traffic": predicted, "gate": gate_labels}, {"traffic": traffic_scores, "gate": gate_scores},
               topic_similarities if topic else None)
    result["mlmd_execution_id"] = _record(config, model, result, out_dir)
    return _write_json(result)


def _write_json(result: dict) -> dict:
    with open(result["json_path"], "w") as f:
        json.dump(result, f, indent=1)
    return result


def _record(config, model, result: dict, out_dir: str) -> int:
    """An MLMD execution of the check: input the served Model artifact, output the report folder."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from pipelines.mlmd_store import connect

    store = connect(config.metadata_path, writable=True)
    exec_type = store.put_execution_type(pb.ExecutionType(name=MONITOR_EXECUTION))
    report_type = store.put_artifact_type(pb.ArtifactType(name=MONITOR_REPORT))
    execution = pb.Execution(type_id=exec_type, last_known_state=pb.Execution.COMPLETE)
    for key, value in (("verdict", result["verdict"]), ("since", result["since"]), ("until", result["until"]),
                       ("moved", ",".join(c for c, v in result["checks"].items() if v["moved"]))):
        execution.custom_properties[key].string_value = value
    execution.custom_properties["requests"].int_value = result["requests"]
    for check, v in result["checks"].items():  # the figures, to compare checks over time without the JSON
        execution.custom_properties[check].double_value = v["value"]
        execution.custom_properties[f"{check}_threshold"].double_value = v["threshold"]
    for key in ("share", "expected", "similarity_threshold"):
        if key in result["checks"].get("off_topic", {}):
            execution.custom_properties[f"off_topic_{key}"].double_value = result["checks"]["off_topic"][key]
    execution.custom_properties[names.SERVED_VERSION].int_value = result["served_version"]
    report = pb.Artifact(type_id=report_type, uri=out_dir, state=pb.Artifact.LIVE)
    report.custom_properties["verdict"].string_value = result["verdict"]
    execution_id, _, _ = store.put_execution(execution, [  # the model as MLMD holds it (not moved here)
        (store.as_recorded(model), pb.Event(type=pb.Event.INPUT)), (report, pb.Event(type=pb.Event.OUTPUT))], [])
    return execution_id


def format_summary(result: dict) -> str:
    from ops.loop.monitor_checks import CHECKS

    head = f"monitor {result['since']} .. {result['until']}: {result['requests']} logged request(s)"
    if result.get("malformed_lines"):
        head += f" ({result['malformed_lines']} malformed line(s) skipped)"
    if result["verdict"] == "not_enough_traffic":
        return head + " - not enough traffic to judge"
    lines = [head + f", served version {result['served_version']}: "
             + ("DRIFT" if result["verdict"] == "drift" else "no drift")]
    for check, v in result["checks"].items():
        lines.append(f"  {'MOVED' if v['moved'] else 'ok':5} {check:14} {v['value']:+.3f} (threshold "
                     f"{v['threshold']:g}, {CHECKS[check][1]}): {CHECKS[check][0]}")
        if check == "off_topic":
            lines.append(f"{'':22}{v['share']:.1%} of {v['requests_embedded']} requests below similarity "
                         f"{v['similarity_threshold']:.3f} (expected {v['expected']:.1%}); least similar: "
                         + "; ".join(repr(x["text"][:60]) for x in v["least_similar"][:3]))
    return "\n".join(lines)
