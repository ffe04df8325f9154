"""The ledger's entries, read from MLMD and the serving dir: one RunEntry per run, one VersionEntry per version
(`transferline runs | versions`, ops/pipeline/ledger.py, which formats them and documents their JSON keys)."""
from __future__ import annotations

import dataclasses
import datetime
import os

from components import names

REJECTED = "rejected"  # the verdict of a run whose data broke the contract (DataGate failed)


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
    pushed_as: str | None  # stable or canary (rollout.mode), null when nothing was pushed or not recorded
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
    promotions: list[dict]


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
        pushed_as=(prop(pushed[0], names.PUSHED_AS) or None) if pushed_version else None,
        rolled_back={k: rb.get(k) for k in ("time", "user", "reason", "to_version")} if rb else None)


def list_versions(metadata, pipeline_name: str, serving_dir: str) -> list[VersionEntry]:
    """Every version under ``serving_dir`` (live, rolled back, staging), oldest first, with the run that pushed
    it. ``metadata``: the MLMD SQLite path, a store, or None (no metadata: the runs are unknown)."""
    from components import rollout
    from components.serving_dir import provenance, rolled_back_dir, served_versions
    from pipelines.mlmd_store import prop
    from pipelines.run_history import promotions, rollbacks

    store = _store(metadata) if metadata is not None else None
    recorded = _recorded_runs(store, pipeline_name, lock_held=True) if store is not None else []
    rollbacks_ = (rollbacks(store) if store is not None else []) + _replaced_canaries(recorded)
    promotions_ = promotions(store) if store is not None else []
    now = rollout.read(serving_dir)

    folders = {}  # version -> (state, path); a live folder wins over an older copy set aside
    for name in _listdir(rolled_back_dir(serving_dir)):
        number = name.split("-", 1)[0]
        if number.isdigit():
            folders.setdefault(int(number), ("rolled_back", os.path.join(rolled_back_dir(serving_dir), name)))
    for name in _listdir(serving_dir):
        if name.startswith(names.STAGING_PREFIX) and name[len(names.STAGING_PREFIX):].isdigit():
            folders[int(name[len(names.STAGING_PREFIX):])] = ("staging", os.path.join(serving_dir, name))
    for v in served_versions(serving_dir):  # served: the stable version (the highest, or the model config's)
        state = "served" if v == now.stable else "canary" if v == now.canary else "kept"
        folders[v] = (state, os.path.join(serving_dir, str(v)))

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
        moved_it = [{**{k: rb.get(k) for k in ("time", "user", "host", "reason", "from_version", "to_version")},
                     "canary": rb.get("canary") or None}
                    for rb in rollbacks_ if str(version) in str(rb.get("moved", "")).split(",")]
        promoted = [{k: p.get(k) for k in ("time", "user", "host", "reason", "from_version", "to_version")}
                    for p in promotions_ if p.get("to_version") == version]
        entries.append(VersionEntry(
            version=version, state=state, served=state == "served", path=path,
            run_id=r.summary.run_id if r else None, pushed_at=info.get("pushed_at"),
            accuracy=prop(gate[0], names.CANDIDATE_ACCURACY) if gate else None,
            baseline_source=source, baseline_version=compared, spans=spans, rollbacks=moved_it,
            promotions=promoted))
    return entries


def _replaced_canaries(recorded: list[_Recorded]) -> list[dict]:
    """A canary the Pusher set aside for a newer one (PushedModel REPLACED_CANARY), as a rollback record."""
    from pipelines.mlmd_store import prop

    out = []
    for r in recorded:
        pushed = r.outputs.get(names.PUSHED_MODEL)
        replaced = _int(prop(pushed[0], names.REPLACED_CANARY)) if pushed else None
        if replaced and r.states.get(names.PUSHER) == "COMPLETE":
            out.append({"time": _iso(r.context.create_time_since_epoch), "user": None, "host": None,
                        "reason": f"replaced by canary {prop(pushed[0], names.PUSHED_VERSION)} (run {r.summary.run_id})",
                        "from_version": replaced, "to_version": None, "moved": str(replaced), "canary": replaced})
    return out


def _listdir(folder: str) -> list[str]:
    import tensorflow as tf

    return [n.rstrip("/") for n in tf.io.gfile.listdir(folder)] if tf.io.gfile.isdir(folder) else []


def _int(value) -> int | None:
    return None if value is None or value == "" else int(value)


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
