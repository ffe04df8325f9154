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
    rolled_back       object|null the rollback that later moved pushed_version aside: {time, user, reason,
                                 to_version}

`versions`, one object per version under the serving dir (live, rolled back, or a push still staging):
    version           int        the version number (the Pusher's: seconds since the epoch at the push)
    state             str        served (the highest live number: what TF Serving serves), kept (live, older),
                                 rolled_back (moved to <serving_dir>/.rolled-back/), staging (a push in
                                 progress, or killed: <serving_dir>/.staging-<version>/)
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
                                 from_version, to_version}

No metadata at all (no `transferline run` yet in this work dir): a NotFound error, as `transferline report`.
Metadata but no run: `runs` says so in one line (``[]`` with --json), exit 0; `versions` likewise for an empty
serving dir (and lists a serving dir without metadata, its runs unknown).
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os

from components import names
from components.errors import NotFound, UserError
from ops.args import add_config_args, config_from

RUN_KEYS = ("run_id", "started", "state", "stopped_at", "spans", "trainer_mode", "accuracy", "references",
            "blessed", "verdict", "baseline_source", "baseline_version", "pushed_version", "new_push",
            "rolled_back")
VERSION_KEYS = ("version", "state", "served", "path", "run_id", "pushed_at", "accuracy", "baseline_source",
                "baseline_version", "spans", "rollbacks")
REJECTED = "rejected"  # the verdict of a run whose data broke the contract (DataGate failed)


def register(sub) -> None:
    p = sub.add_parser("runs", help="list the pipeline's runs, oldest first: state, accuracy, verdict, push")
    add_config_args(p)
    p.add_argument("--json", action="store_true", help="one JSON document (keys: `pydoc ops.pipeline.ledger`)")
    p.add_argument("--limit", type=int, metavar="N", help="only the latest N runs")
    p.set_defaults(func=runs_command)

    p = sub.add_parser("versions", help="list the versions under the serving dir: served, made by, rollbacks")
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


# ----------------------------------------------------------------------------------------- reading
@dataclasses.dataclass
class RunEntry:
    run_id: str
    started: str
    state: str
    stopped_at: str | None
    spans: list[int]
    trainer_mode: str | None
    accuracy: float | None
    references: dict[str, float]
    blessed: bool | None
    verdict: str | None
    baseline_source: str | None
    baseline_version: int | None
    pushed_version: str | None
    new_push: bool
    rolled_back: dict | None


@dataclasses.dataclass
class VersionEntry:
    version: int
    state: str
    served: bool
    path: str
    run_id: str | None
    pushed_at: str | None
    accuracy: float | None
    baseline_source: str | None
    baseline_version: int | None
    spans: list[int]
    rollbacks: list[dict]


@dataclasses.dataclass
class _Recorded:
    context: object
    states: dict[str, str]
    outputs: dict[str, list]
    summary: object  # pipelines.runs.RunSummary


def _store(metadata):
    """An MLMD store: ``metadata`` is one already (tests: tests/recorded_mlmd.py) or the SQLite file's path."""
    from pipelines.mlmd_store import connect

    return connect(metadata) if isinstance(metadata, str) else metadata


def _recorded_runs(store, pipeline_name: str, lock_held: bool, evaluate=lambda outputs: False) -> list[_Recorded]:
    from pipelines.mlmd_store import run_contexts, run_outputs
    from pipelines.run_history import interrupted_component, rollbacks
    from pipelines.runs import summarize_run

    rollbacks_ = rollbacks(store)
    recorded = []
    for context in run_contexts(store, pipeline_name):
        states, outputs = run_outputs(store, context)
        summary = summarize_run(pipeline_name, context, states, outputs, [], rollbacks_,
                                interrupted_component(store, context, lock_held), evaluate=evaluate(outputs))
        recorded.append(_Recorded(context, states, outputs, summary))
    return recorded


def _needs_tfma(outputs) -> bool:
    """Whether the candidate's accuracy must come from the Evaluator's TFMA results: PushGate records it only
    for a blessed model (and only for an evaluation still on disk)."""
    from pipelines.mlmd_store import prop

    gate = outputs.get(names.GATE)
    if gate and prop(gate[0], names.CANDIDATE_ACCURACY) is not None:
        return False
    evaluation = outputs.get(names.EVALUATION)
    return bool(evaluation) and ("://" in evaluation[0].uri or os.path.exists(evaluation[0].uri))


def list_runs(metadata, pipeline_name: str, *, lock_held: bool = False, evaluate: bool = True) -> list[RunEntry]:
    """Every run of ``pipeline_name``, oldest first. ``metadata``: the MLMD SQLite path or a store;
    ``lock_held``: whether a process holds the work dir's lock now (the latest unfinished run is then RUNNING,
    not INTERRUPTED); ``evaluate``: False never reads TFMA (a not-blessed run's accuracy is then null)."""
    store = _store(metadata)
    recorded = _recorded_runs(store, pipeline_name, lock_held, _needs_tfma if evaluate else (lambda o: False))
    return [_run_entry(r, latest=i == len(recorded) - 1, lock_held=lock_held) for i, r in enumerate(recorded)]


def run_state(states: dict[str, str], failed: str, interrupted: str, *, latest: bool, lock_held: bool
              ) -> tuple[str, str | None]:
    """(COMPLETE / CACHED / FAILED / INTERRUPTED / RUNNING, the component it stopped at or None)."""
    if failed:
        return "FAILED", failed
    if interrupted:
        return "INTERRUPTED", interrupted
    finished = states.get(names.PUSHER) in ("COMPLETE", "CACHED") and all(
        s in ("COMPLETE", "CACHED") for s in states.values())
    if not finished:
        if latest and lock_held:
            return "RUNNING", None
        return "INTERRUPTED", None  # its process died between two steps: nothing is left RUNNING
    if all(s == "CACHED" for s in states.values()):
        return "CACHED", None
    return "COMPLETE", None


def _run_entry(r: _Recorded, *, latest: bool, lock_held: bool) -> RunEntry:
    from pipelines.mlmd_store import prop

    s, outputs = r.summary, r.outputs
    state, stopped_at = run_state(r.states, s.failed, s.interrupted, latest=latest, lock_held=lock_held)
    baseline = outputs.get(names.BASELINE_OUT)
    pushed = outputs.get(names.PUSHED_MODEL)
    pushed_version = (str(prop(pushed[0], names.PUSHED_VERSION))
                      if pushed and prop(pushed[0], names.PUSHED) and prop(pushed[0], names.PUSHED_VERSION) else None)
    verdict = s.gate_reason or (REJECTED if s.failed == names.DATA_GATE else None)
    rb = s.rolled_back
    return RunEntry(
        run_id=s.run_id, started=_iso(r.context.create_time_since_epoch), state=state, stopped_at=stopped_at,
        spans=list(s.spans), trainer_mode=s.trainer_mode.split(" ", 1)[0] or None,
        accuracy=s.metrics.get("accuracy"),
        references={n: float(v) for n, v in s.references.items()},
        blessed=s.blessed, verdict=verdict,
        baseline_source=(prop(baseline[0], names.BASELINE_SOURCE) or None) if baseline else None,
        baseline_version=_int(prop(baseline[0], names.BASELINE_VERSION)) if baseline else None,
        pushed_version=pushed_version,
        new_push=bool(pushed_version) and r.states.get(names.PUSHER) == "COMPLETE",
        rolled_back={k: rb.get(k) for k in ("time", "user", "reason", "to_version")} if rb else None)


def list_versions(metadata, pipeline_name: str, serving_dir: str) -> list[VersionEntry]:
    """Every version under ``serving_dir`` (live, rolled back, staging), oldest first, with the run that pushed
    it. ``metadata``: the MLMD SQLite path, a store, or None (no metadata: the runs are unknown)."""
    from components.serving_dir import provenance, rolled_back_dir, served_versions
    from pipelines.mlmd_store import prop
    from pipelines.run_history import rollbacks

    store = _store(metadata) if metadata is not None else None
    recorded = _recorded_runs(store, pipeline_name, lock_held=True) if store is not None else []
    rollbacks_ = rollbacks(store) if store is not None else []

    folders = {}  # version -> (state, path); a live folder wins over an older copy set aside
    for name in _listdir(rolled_back_dir(serving_dir)):
        number = name.split("-", 1)[0]
        if number.isdigit():
            folders.setdefault(int(number), ("rolled_back", os.path.join(rolled_back_dir(serving_dir), name)))
    for name in _listdir(serving_dir):
        if name.startswith(names.STAGING_PREFIX) and name[len(names.STAGING_PREFIX):].isdigit():
            folders[int(name[len(names.STAGING_PREFIX):])] = ("staging", os.path.join(serving_dir, name))
    live = served_versions(serving_dir)
    for v in live:
        folders[v] = ("served" if v == live[-1] else "kept", os.path.join(serving_dir, str(v)))

    made_by = {}  # version -> the first run whose Pusher recorded it
    for r in recorded:
        pushed = r.outputs.get(names.PUSHED_MODEL)
        if pushed and prop(pushed[0], names.PUSHED) and prop(pushed[0], names.PUSHED_VERSION):
            made_by.setdefault(int(prop(pushed[0], names.PUSHED_VERSION)), r)

    entries = []
    for version, (state, path) in sorted(folders.items()):
        info = provenance(path) if state != "staging" else {}
        r = made_by.get(version)
        gate = r.outputs.get(names.GATE) if r else None
        baseline = r.outputs.get(names.BASELINE_OUT) if r else None
        if baseline:
            source, compared = prop(baseline[0], names.BASELINE_SOURCE) or None, _int(
                prop(baseline[0], names.BASELINE_VERSION))
        else:  # MLMD does not know it: what the Pusher wrote into the version itself
            compared = info.get("compared_with_version")
            source = None if compared is None else ("served" if compared else "first_model")
        spans = list(r.summary.spans) if r else [int(n) for n in str(info.get(names.SPANS) or "").split(",") if n]
        moved_it = [{k: rb.get(k) for k in ("time", "user", "host", "reason", "from_version", "to_version")}
                    for rb in rollbacks_ if str(version) in str(rb.get("moved", "")).split(",")]
        entries.append(VersionEntry(
            version=version, state=state, served=state == "served", path=path,
            run_id=r.summary.run_id if r else None, pushed_at=info.get("pushed_at"),
            accuracy=prop(gate[0], names.CANDIDATE_ACCURACY) if gate else None,
            baseline_source=source, baseline_version=compared, spans=spans, rollbacks=moved_it))
    return entries


def _listdir(folder: str) -> list[str]:
    import tensorflow as tf

    return [n.rstrip("/") for n in tf.io.gfile.listdir(folder)] if tf.io.gfile.isdir(folder) else []


def _int(value) -> int | None:
    return None if value is None or value == "" else int(value)


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    return "; ".join(f"{r.get('time')} by {r.get('user')} ({r.get('reason')!r}) -> {r.get('to_version')}"
                     for r in e.rollbacks) or "-"


def format_versions(entries: list[VersionEntry]) -> str:
    """One line per version, oldest first, under a header."""
    header = ["VERSION", "STATE", "RUN", "ACCURACY", "SPANS", "COMPARED WITH", "ROLLED BACK"]
    rows = [[str(e.version), e.state.replace("_", " ").upper() if e.served else e.state.replace("_", " "),
             e.run_id or "(not in MLMD)", _acc(e.accuracy), ",".join(map(str, e.spans)) or "-", _compared_words(e),
             _rollback_words(e)] for e in entries]
    return _table(header, rows)
