"""`transferline runs` and `transferline versions`: what exists, from MLMD and the serving dir (never from logs).

Both list oldest first, newest last (the latest lands next to the prompt, as in `ls` of the serving dir and as
MLMD orders the runs). ``--json`` prints one JSON document instead: a list of objects, oldest first, with the
keys below (stable: a script may rely on them; a value not known is null, never a missing key).

`runs`, one object per run of the pipeline (one MLMD run context: a `transferline run` whose PushGate finds its
baseline stale records two, the held-back one and the one that compared again with what is served now):
    run_id            str        TFX's run id (as in <work_dir>/reports/<run id>/; `transferline report RUN`)
    started           str        when the run began, ISO 8601 UTC (MLMD: the run context's creation time)
    state             str        COMPLETE (ran to the end), CACHED (every step cached: nothing new), FAILED (a
                                 component raised: see stopped_at), INTERRUPTED (its process died during
                                 stopped_at, or between steps: stopped_at null), RUNNING (the latest run while a
                                 process holds the work dir's lock)
    stopped_at        str|null   the component that FAILED, or during which the process died
    spans             [int]      the spans trained on
    trainer_mode      str|null   head, wide_deep or fine_tune (the Trainer's training.json)
    accuracy          float|null the candidate's accuracy on the gate data (PushGate's record, else the Evaluator's)
    references        object     {"majority_accuracy": float, "tfidf_lr_accuracy": float} on the same gate data
                                 ({} when the References step did not run)
    blessed           bool|null  the Evaluator's verdict
    verdict           str|null   PushGate's reason (ok, not_blessed, below_reference, stale_baseline,
                                 already_served, same_training, rolled_back: components/names.py GateReason),
                                 "rejected" (the data broke the contract: DataGate failed), null (no verdict)
    baseline_source   str|null   what the candidate was compared with: served, first_model, classes_changed or none
    baseline_version  int|null   the served version it was compared with (0: none)
    pushed_version    str|null   the version this run's Pusher records: new, or an earlier one (new_push false)
    new_push          bool       this run's Pusher pushed pushed_version itself (not a cached step)
    pushed_as         str|null   stable (served at once, or the first version in canary mode) or canary
                                 (rollout.mode = canary: on trial beside stable); null when nothing was pushed
    rolled_back       object|null the rollback that later moved pushed_version aside: {time, user, reason,
                                 to_version}

`versions`, one object per version under the serving dir (live, rolled back, or a push still staging):
    version           int        the version number (the Pusher's: seconds since the epoch at the push)
    state             str        served (the stable version: the highest live number, or the one the serving
                                 dir's model config labels stable), canary (on trial beside it: rollout.mode =
                                 canary), kept (live, not served), rolled_back (moved to
                                 <serving_dir>/.rolled-back/), staging (a push in progress, or killed:
                                 <serving_dir>/.staging-<version>/)
    served            bool       state == "served"
    path              str        its folder
    run_id            str|null   the run whose Pusher pushed it (MLMD); null when MLMD does not know it
    pushed_at         str|null   when (the version's own provenance file, assets.extra/transferline.json)
    accuracy          float|null that run's candidate accuracy on the gate data (PushGate)
    baseline_source   str|null   what it was compared with before the push: served, first_model, classes_changed
                                 or none
    baseline_version  int|null   the version it was compared with (0: none: the references and the floor decided)
    spans             [int]      the spans it was trained on
    rollbacks         [object]   the rollbacks that moved it aside, oldest first: {time, user, host, reason,
                                 from_version, to_version, canary} (canary: the canary version a rollback
                                 dropped, or one a later canary push replaced (user null); else null)
    promotions        [object]   the promotions that made it stable (`transferline promote`), oldest first:
                                 {time, user, host, reason, from_version, to_version}

No metadata at all (no `transferline run` yet in this work dir): a NotFound error, as `transferline report`.
Metadata but no run: `runs` says so in one line (``[]`` with --json), exit 0; `versions` likewise for an empty
serving dir (and lists a serving dir without metadata, its runs unknown).
"""
from __future__ import annotations

import dataclasses
import json
import os

from components import names
from components.errors import NotFound, UserError
from ops.args import add_config_args, config_from
from ops.pipeline.ledger_entries import REJECTED, RunEntry, VersionEntry, list_runs, list_versions

RUN_KEYS = ("run_id", "started", "state", "stopped_at", "spans", "trainer_mode", "accuracy", "references",
            "blessed", "verdict", "baseline_source", "baseline_version", "pushed_version", "new_push",
            "pushed_as", "rolled_back")
VERSION_KEYS = ("version", "state", "served", "path", "run_id", "pushed_at", "accuracy", "baseline_source",
                "baseline_version", "spans", "rollbacks", "promotions")


def register(sub) -> None:
    p = sub.add_parser("runs", help="list the pipeline's runs, oldest first: state, accuracy, verdict, push")
    add_config_args(p)
    p.add_argument("--json", action="store_true", help="one JSON document (keys: `pydoc ops.pipeline.ledger`)")
    p.add_argument("--limit", type=int, metavar="N", help="only the latest N runs")
    p.set_defaults(func=runs_command)

    p = sub.add_parser("versions", help="list the versions under the serving dir: served (stable), canary, made "
                                        "by, rollbacks, promotions")
    add_config_args(p)
    p.add_argument("--json", action="store_true", help="one JSON document (keys: `pydoc ops.pipeline.ledger`)")
    p.set_defaults(func=versions_command)


# ----------------------------------------------------------------------------------------- the commands
def runs_command(args) -> int:
    from pipelines.work_lock import is_held

    config = config_from(args)
    if not os.path.exists(config.metadata_path):
        raise NotFound(f"no pipeline metadata in {config.paths.work_dir}; run `transferline run` first "
                       "(or give --work-dir)")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit}: give a number of runs, 1 or more")
    entries = list_runs(config.metadata_path, config.pipeline_name, lock_held=is_held(config.paths.work_dir))
    if args.limit:
        entries = entries[-args.limit:]
    if args.json:
        print(json.dumps([dataclasses.asdict(e) for e in entries], indent=2))
    elif not entries:
        print(f"no runs of pipeline '{config.pipeline_name}' yet in {config.paths.work_dir}; "
              "`transferline run` makes one")
    else:
        print(format_runs(entries))
    return 0


def versions_command(args) -> int:
    config = config_from(args)
    has_metadata = os.path.exists(config.metadata_path)
    if not has_metadata and not os.path.exists(config.serving_dir):
        raise NotFound(f"no pipeline metadata and no serving dir in {config.paths.work_dir}; run "
                       "`transferline run` first (or give --work-dir)")
    entries = list_versions(config.metadata_path if has_metadata else None, config.pipeline_name,
                            config.serving_dir)
    if args.json:
        print(json.dumps([dataclasses.asdict(e) for e in entries], indent=2))
    elif not entries:
        print(f"no versions under {config.serving_dir} yet; a run whose model passes the gate pushes one")
    else:
        print(format_versions(entries))
    return 0


# ----------------------------------------------------------------------------------------- formatting
_VERDICTS = {
    names.GateReason.OK: "blessed",
    names.GateReason.OK_CLASSES_CHANGED: "blessed (classes changed: vs the references)",
    names.GateReason.NOT_BLESSED: "NOT BLESSED",
    names.GateReason.BELOW_REFERENCE: "REFUSED: below the references",
    names.GateReason.STALE: "held back: stale baseline",
    names.GateReason.ALREADY_SERVED: "held back: already served",
    names.GateReason.SAME_TRAINING: "held back: same training",
    names.GateReason.ROLLED_BACK: "held back: rolled back before",
    REJECTED: "REJECTED: data contract",
}


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])


def _acc(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def verdict_words(verdict: str | None) -> str:
    return "-" if verdict is None else _VERDICTS.get(verdict, verdict)


def state_words(e: RunEntry) -> str:
    """COMPLETE, CACHED, FAILED at Evaluator, INTERRUPTED during Trainer, RUNNING."""
    if e.state == "FAILED":
        return f"FAILED at {e.stopped_at}"
    if e.state == "INTERRUPTED":
        return f"INTERRUPTED during {e.stopped_at}" if e.stopped_at else "INTERRUPTED between steps"
    return e.state


def _pushed_words(e: RunEntry) -> str:
    if not e.pushed_version:
        return "-"
    words = e.pushed_version if e.new_push else f"{e.pushed_version} (earlier)"
    words += " as canary" if e.pushed_as == "canary" else ""
    return words + (" rolled back" if e.rolled_back else "")


def format_runs(entries: list[RunEntry]) -> str:
    """One line per run, oldest first, under a header."""
    header = ["RUN", "STARTED (UTC)", "SPANS", "MODE", "ACCURACY", "MAJORITY", "TF-IDF+LR", "VERDICT", "PUSHED",
              "STATE"]
    rows = [[e.run_id, e.started.replace("T", " ").rstrip("Z"), ",".join(map(str, e.spans)) or "-",
             e.trainer_mode or "-", _acc(e.accuracy), _acc(e.references.get(names.MAJORITY_ACCURACY)),
             _acc(e.references.get(names.TFIDF_ACCURACY)), verdict_words(e.verdict), _pushed_words(e),
             state_words(e)] for e in entries]
    return _table(header, rows)


def _compared_words(e: VersionEntry) -> str:
    if e.baseline_source is None:
        return "-"
    if e.baseline_source == "classes_changed":
        return f"the references (classes changed since version {e.baseline_version})"
    return f"version {e.baseline_version}" if e.baseline_source == "served" else "nothing served (first model)"


def _rollback_words(e: VersionEntry) -> str:
    def one(r: dict) -> str:
        if r.get("canary") and r.get("user") is None:  # set aside by the Pusher for a newer canary
            return f"{r.get('time')}: {r.get('reason')}"
        what = "canary dropped" if r.get("canary") else f"-> {r.get('to_version')}"
        return f"{r.get('time')} by {r.get('user')} ({r.get('reason')!r}) {what}"
    return "; ".join(map(one, e.rollbacks)) or "-"


def _promotion_words(e: VersionEntry) -> str:
    return "; ".join(f"{p.get('time')} by {p.get('user')} ({p.get('reason')!r}) from {p.get('from_version')}"
                     for p in e.promotions) or "-"


def format_versions(entries: list[VersionEntry]) -> str:
    """One line per version, oldest first, under a header. SERVED is the stable version; CANARY the one on
    trial beside it (rollout.mode = canary)."""
    header = ["VERSION", "STATE", "RUN", "ACCURACY", "SPANS", "COMPARED WITH", "PROMOTED", "ROLLED BACK"]
    rows = [[str(e.version), e.state.replace("_", " ").upper() if e.state in ("served", "canary")
             else e.state.replace("_", " "),
             e.run_id or "(not in MLMD)", _acc(e.accuracy), ",".join(map(str, e.spans)) or "-", _compared_words(e),
             _promotion_words(e), _rollback_words(e)] for e in entries]
    return _table(header, rows)
