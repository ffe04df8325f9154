"""`transferline canary [--since TIME] [--until TIME]`: is the canary as good as stable on live traffic?

Reads the shadowed requests of the window from the request log (`serve` in shadow mode logs stable's answer and
the canary's for each instance: ops/serving/shadow.py) and compares the two: top-class agreement, each class's
predicted share, mean confidence, scoring time, and, where labels arrived later for shadowed texts (a span under
paths.data_dir holding the text), the accuracy of each on that overlap. A verdict from the rollout.* thresholds:
exit 0 pass, 6 fail (CanaryFails), 7 too little traffic (NotEnoughTraffic), as `monitor`'s. JSON under
<work_dir>/canary/<time>/canary.json. The scheduled retrain calls ``run_canary`` to promote or drop a canary.
"""
from __future__ import annotations

import csv
import datetime
import glob
import json
import os
import sys

from components import names
from components.errors import NotFound
from ops.args import add_config_args, config_from
from ops.loop.verdicts import CanaryFails, NotEnoughTraffic
from ops.serving.request_log import parse_time, read_requests, request_log_dir

PASS, FAIL, TOO_LITTLE = "pass", "fail", "not_enough_traffic"


class NoCanary(NotFound):
    """The serving dir has no canary on trial: nothing to judge."""


def register(sub) -> None:
    p = sub.add_parser("canary", help="the canary vs stable on the shadowed traffic; exit 0 pass, 6 fail, "
                                      "7 not enough traffic")
    add_config_args(p, data="data root (span-N/ folders): labels that arrived for shadowed texts")
    p.add_argument("--since", metavar="TIME", help="ISO time, e.g. 2025-01-31T00:00 (UTC unless an offset is "
                                                   "given); default: the canary's push time")
    p.add_argument("--until", metavar="TIME", help="ISO time (default: now)")
    p.set_defaults(func=command)


def command(args) -> int:
    config = config_from(args)
    result = run_canary(config, args.since, args.until)
    print(format_summary(result), file=sys.stderr)
    print(result["json_path"])
    raise_verdict(result, config)
    return 0


def raise_verdict(result: dict, config) -> None:
    """The verdict as the CLI's exit code: CanaryFails (6), NotEnoughTraffic (7), or nothing (pass)."""
    if result["verdict"] == FAIL:
        failed = [c for c, v in result["checks"].items() if v.get("passed") is False]
        raise CanaryFails(f"canary version {result['canary']} fails: {', '.join(failed)} beyond the rollout.* "
                          f"thresholds (see {result['json_path']})")
    if result["verdict"] == TOO_LITTLE:
        raise NotEnoughTraffic(f"{result['shadowed']} shadowed instance(s) of canary version {result['canary']} "
                               f"between {result['since']} and {result['until']}: fewer than rollout.min_requests "
                               f"({config.rollout.min_requests}); no verdict")


def pushed_at(serving_dir: str, version: int) -> datetime.datetime | None:
    """When the version was pushed (its provenance file, assets.extra/transferline.json), None if unknown."""
    from components.serving_dir import provenance

    stamp = provenance(os.path.join(serving_dir, str(version))).get("pushed_at")
    try:
        return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z") if stamp else None
    except ValueError:
        return None


def run_canary(config, since: str | None = None, until: str | None = None) -> dict:
    """The check on the serving dir's canary; writes canary.json; returns the result. NoCanary without one."""
    from components import rollout

    state = rollout.read(config.serving_dir)
    if state.canary is None:
        raise NoCanary(f"no canary on trial in {config.serving_dir} (" + (
            f"serving version {state.stable} alone" if state.stable is not None else "nothing pushed")
            + f"; rollout.mode = {config.rollout.mode}): nothing to judge")
    end = parse_time(until, "--until") if until else datetime.datetime.now(datetime.timezone.utc)
    pushed = pushed_at(config.serving_dir, state.canary)
    start = parse_time(since, "--since") if since else pushed or end - datetime.timedelta(
        hours=config.monitor.window_hours)
    traffic = read_requests(request_log_dir(config), start, end)
    result = judge(traffic, state.stable, state.canary, labels_by_text(config), config.rollout)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    out_dir = os.path.join(config.work.canary_dir, stamp)
    os.makedirs(out_dir, exist_ok=True)
    result.update(since=start.isoformat(), until=end.isoformat(), malformed_lines=traffic.attrs["malformed"],
                  canary_pushed_at=pushed.isoformat() if pushed else None,
                  json_path=os.path.join(out_dir, "canary.json"))
    with open(result["json_path"], "w") as f:
        json.dump(result, f, indent=1)
    return result


def labels_by_text(config) -> dict[str, str]:
    """Normalized text -> label, from every span CSV under paths.data_dir (a later span wins)."""
    from ops.loop.ranking import normalize

    found = {}
    for path in sorted(glob.glob(os.path.join(config.paths.data_dir, config.data.file_pattern))):
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                if (row.get(names.LABEL) or "").strip():
                    found[normalize(row.get(names.TEXT) or "")] = row[names.LABEL].strip()
    return found


def judge(traffic, stable: int | None, canary: int, labels: dict[str, str], r) -> dict:
    """The figures and the verdict over a request-log frame (read_requests'), pure: ``labels`` normalized text ->
    label, ``r`` the rollout config. Only instances the canary scored count (shadow = scored, its version)."""
    import numpy as np

    from ops.loop.ranking import normalize

    version = traffic["canary_version"].astype(str)
    shadowed = traffic[(traffic["shadow"] == "scored") & (version == str(canary))]
    outcome = {s: int((traffic["shadow"] == s).sum()) for s in ("dropped", "failed")}
    result = {"stable": stable, "canary": canary, "shadowed": len(shadowed), "logged": len(traffic),
              "not_shadowed": outcome, "stable_versions": sorted({str(v) for v in shadowed["version"]})}
    if len(shadowed) < r.min_requests or len(shadowed) == 0:
        return {**result, "verdict": TOO_LITTLE, "checks": {}}
    ours, theirs = list(shadowed["label"]), list(shadowed["canary_label"])
    classes = sorted(set(ours) | set(theirs))
    shares = {c: {"stable": ours.count(c) / len(ours), "canary": theirs.count(c) / len(theirs)} for c in classes}
    shift = max(classes, key=lambda c: abs(shares[c]["canary"] - shares[c]["stable"]))
    confidence = {"stable": float(np.mean(shadowed["score"])), "canary": float(np.mean(shadowed["canary_score"]))}
    # one row per request: each instance row carries its request's scoring times
    requests = shadowed.drop_duplicates(["time", "scoring_ms", "canary_ms"])
    latency = {who: {"median_ms": _quantile(requests[col], 0.5), "p90_ms": _quantile(requests[col], 0.9)}
               for who, col in (("stable", "scoring_ms"), ("canary", "canary_ms"))}
    ratio = (latency["canary"]["median_ms"] / latency["stable"]["median_ms"]
             if latency["stable"]["median_ms"] else None)
    known = [(labels[k], a, b) for k, a, b in zip(map(normalize, shadowed["text"]), ours, theirs) if k in labels]
    accuracy = {"labelled": len(known), "stable": float(np.mean([t == a for t, a, _ in known])) if known else None,
                "canary": float(np.mean([t == b for t, _, b in known])) if known else None}
    checks = {
        "agreement": _check(float(np.mean([a == b for a, b in zip(ours, theirs)])), r.min_agreement, at_least=True),
        "class_shift": {**_check(abs(shares[shift]["canary"] - shares[shift]["stable"]), r.max_class_shift),
                        "class": shift},
        "confidence_drop": _check(confidence["stable"] - confidence["canary"], r.max_confidence_drop),
        "latency_ratio": _check(ratio, r.max_latency_ratio),
        "accuracy_drop": _check(accuracy["stable"] - accuracy["canary"] if known else None, r.max_accuracy_drop,
                                judged=len(known) >= r.min_labelled),
    }
    failed = any(c["passed"] is False for c in checks.values())
    return {**result, "verdict": FAIL if failed else PASS, "checks": checks, "class_shares": shares,
            "confidence": confidence, "latency": latency, "shadowed_requests": len(requests), "accuracy": accuracy}


def _quantile(values, q: float) -> float | None:
    values = values.dropna()
    return float(values.quantile(q)) if len(values) else None


def _check(value, threshold: float, at_least: bool = False, judged: bool = True) -> dict:
    """passed: True / False, or None when not judged (no figure, or too few labelled texts)."""
    passed = None if value is None or not judged else (value >= threshold if at_least else value <= threshold)
    return {"value": value, "threshold": threshold, "passed": passed}


_WHAT = {"agreement": "top class the same as stable's (at least)",
         "class_shift": "largest change of a class's predicted share (at most)",
         "confidence_drop": "stable's mean top score minus the canary's (at most)",
         "latency_ratio": "canary's median scoring time / stable's (at most)",
         "accuracy_drop": "stable's accuracy minus the canary's on texts labelled since (at most)"}


def format_summary(result: dict) -> str:
    head = (f"canary version {result['canary']} vs stable {result['stable']}, {result['since']} .. "
            f"{result['until']}: {result['shadowed']} shadowed instance(s)")
    missed = result["not_shadowed"]
    if missed["dropped"] or missed["failed"]:
        head += f" ({missed['dropped']} not shadowed: queue full; {missed['failed']} the canary failed)"
    if result.get("malformed_lines"):
        head += f" ({result['malformed_lines']} malformed line(s) skipped)"
    if result["verdict"] == TOO_LITTLE:
        return head + " - not enough traffic to judge (rollout.min_requests)"
    lines = [head + ": " + ("PASS" if result["verdict"] == PASS else "FAIL")]
    for check, v in result["checks"].items():
        mark = {True: "ok", False: "FAIL", None: "-"}[v["passed"]]
        value = "n/a" if v["value"] is None else f"{v['value']:.3f}"
        extra = f" ({v['class']})" if "class" in v else ""
        lines.append(f"  {mark:4} {check:15} {value}{extra} (threshold {v['threshold']:g}): {_WHAT[check]}")
    lat, acc = result["latency"], result["accuracy"]
    lines.append(f"  confidence: stable {result['confidence']['stable']:.3f}, canary "
                 f"{result['confidence']['canary']:.3f}; scoring ms (median/p90 over {result['shadowed_requests']} "
                 f"requests): stable {_ms(lat['stable'])}, canary {_ms(lat['canary'])}")
    lines.append(f"  labelled since: {acc['labelled']} shadowed instance(s)" + (
        f", accuracy stable {acc['stable']:.3f}, canary {acc['canary']:.3f}" if acc["labelled"] else "")
        + ("" if result["checks"]["accuracy_drop"]["passed"] is not None else " (too few to judge: "
           "rollout.min_labelled)"))
    return "\n".join(lines)


def _ms(d: dict) -> str:
    return "/".join("n/a" if d[k] is None else f"{d[k]:.1f}" for k in ("median_ms", "p90_ms"))


def settle(config, log=lambda m: None, now: datetime.datetime | None = None) -> str:
    """The scheduled retrain's first step in canary mode: a canary on trial for rollout.promote_after_hours
    (since its push) is promoted if its verdict passes, dropped if it fails, else left. Returns what was done:
    none | manual | early | promoted | dropped | too_little."""
    from components import rollout
    from ops.pipeline.promote import promote
    from ops.pipeline.rollback import drop_canary

    state, hours = rollout.read(config.serving_dir), config.rollout.promote_after_hours
    if state.canary is None:
        return "none"
    if hours <= 0:
        log(f"canary version {state.canary} on trial: not settled automatically (rollout.promote_after_hours = 0)"
            "; `transferline canary`, then `promote` or `rollback`")
        return "manual"
    now = now or datetime.datetime.now(datetime.timezone.utc)
    pushed = pushed_at(config.serving_dir, state.canary)
    age = (now - pushed).total_seconds() / 3600 if pushed else None
    if age is None or age < hours:
        log(f"canary version {state.canary} on trial for " + (f"{age:.1f} h" if age is not None else "an unknown "
            "time (no pushed_at in its provenance)") + f", of {hours:g} (rollout.promote_after_hours): left on trial")
        return "early"
    result = run_canary(config, until=now.isoformat())
    why = (f"scheduled retrain: canary verdict {result['verdict']} after {age:.1f} h, {result['shadowed']} "
           f"shadowed instance(s) ({result['json_path']})")
    if result["verdict"] == PASS:
        promote(config, why)
        log(f"canary version {state.canary} promoted to stable ({why})")
        return "promoted"
    if result["verdict"] == FAIL:
        drop_canary(config, why)
        failed = [c for c, v in result["checks"].items() if v["passed"] is False]
        log(f"canary version {state.canary} dropped: {', '.join(failed)} beyond thresholds ({why}); stable "
            f"version {state.stable} serves alone")
        return "dropped"
    log(f"canary version {state.canary}: {result['shadowed']} shadowed instance(s) since its push, fewer than "
        f"rollout.min_requests ({config.rollout.min_requests}): left on trial ({result['json_path']})")
    return "too_little"
