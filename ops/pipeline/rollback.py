"""`transferline rollback`: make an earlier pushed version the served one, and record who, when and why.

TF Serving serves the highest version number under its base path. Rolling back therefore moves the
newer versions out of the way, into ``<serving_dir>/.rolled-back/<version>/`` (a rename: atomic on a
local or mounted filesystem, and TF Serving ignores folders whose name is not a number), and TF Serving
unloads them and serves the target within its polling interval. Nothing is deleted: a version can be
moved back by hand. Each rollback is an MLMD execution (type ``transferline.Rollback``) in the pipeline's
context, and a line in ``<work_dir>/reports/rollbacks.jsonl``.

With a canary on trial (rollout.mode = canary; components/rollout.py), `rollback` drops the canary instead
(`drop_canary`): the model config goes back to stable alone, then the canary's folder is moved aside; recorded
the same way, with ``canary`` set. A rollback while the serving dir has a model config (or in canary mode) also
rewrites it to serve the target alone, unlabelled (`stable` cannot move to a version not loaded yet).
"""
from __future__ import annotations

import getpass
import json
import os
import socket
import time
from dataclasses import asdict, dataclass


from components import rollout
from components.errors import NotFound, UserError
from components.serving_dir import rolled_back_dir, served_versions
from ops.args import add_config_args, config_from, say
from pipelines.config import Config
from pipelines import run_history
from pipelines.run_history import ROLLBACK_EXECUTION_TYPE, record_event
from pipelines.mlmd_store import connect


def register(sub) -> None:
    p = sub.add_parser("rollback", help="serve the previous pushed version again, or drop the canary on trial "
                                        "(recorded in MLMD)")
    add_config_args(p)
    p.add_argument("--reason", required=True, help="why; recorded with who and when")
    p.add_argument("--to", type=int, metavar="VERSION", help="an earlier version (default: the previous one)")
    p.set_defaults(func=command)


def command(args) -> int:
    from pipelines.work_lock import exclusive

    config = config_from(args)
    with exclusive(config.paths.work_dir):
        done = rollback(config, args.reason or "", args.to)
    if done.canary:
        say(f"canary dropped: version {done.canary} moved to {rolled_back_dir(config.serving_dir)}/; serving "
            f"stable version {done.to_version} alone")
    else:
        say(f"rolled back: serving version {done.to_version} (was {done.from_version}); moved "
            f"{', '.join(map(str, done.moved))} to {rolled_back_dir(config.serving_dir)}/")
    say(f"recorded: MLMD execution {done.mlmd_execution_id} ({done.user}@{done.host}, {done.time}: {done.reason})")
    print(os.path.join(config.serving_dir, str(done.to_version)))
    return 0


@dataclass
class Rollback:
    from_version: int
    to_version: int
    moved: list[int]
    user: str
    host: str
    time: str
    reason: str
    canary: int = 0  # the canary this dropped (drop_canary), 0 for a rollback of the served version
    mlmd_execution_id: int = 0


def _check_reason(reason: str) -> None:
    if not reason.strip():
        raise UserError("say why: --reason \"...\" is recorded with the rollback")


def rollback(config: Config, reason: str, to_version: int | None = None) -> Rollback:
    """Moves every version newer than the target aside; the target defaults to the previous version. With a
    canary on trial and no target, drops the canary (drop_canary)."""
    from tfx.dsl.io import fileio

    _check_reason(reason)
    serving_dir = config.serving_dir
    now = rollout.read(serving_dir)
    if now.canary is not None and to_version is None:
        return drop_canary(config, reason)
    versions = served_versions(serving_dir)
    served = now.stable if now.stable is not None else (versions[-1] if versions else None)
    earlier = [v for v in versions if served is not None and v < served]
    if not earlier and to_version is None:
        raise NotFound(f"nothing to roll back to: {serving_dir} holds {len(versions)} version(s) "
                       f"({', '.join(map(str, versions)) or 'none'})" + (f", served: {served}" if served else ""))
    target = earlier[-1] if to_version is None else to_version
    if target not in earlier:
        raise NotFound(f"version {target} is not an earlier version under {serving_dir}; "
                       f"the versions are {', '.join(map(str, versions))} (served: {served})")
    moved = [v for v in versions if v > target]
    if now.config_path or config.rollout.mode == "canary":  # the config names the target before the moves
        rollout.apply(serving_dir, config.serve.model_name, rollout.after_rollback(target))
    aside = rolled_back_dir(serving_dir)
    fileio.makedirs(aside)
    for v in reversed(moved):  # newest first: the served version only ever steps down
        fileio.rename(os.path.join(serving_dir, str(v)), os.path.join(aside, f"{v}-{int(time.time())}"))
    return _recorded(config, Rollback(from_version=served, to_version=target, moved=moved, **who(reason)))


def drop_canary(config: Config, reason: str) -> Rollback:
    """Ends the canary's trial without promoting it: the model config serves stable alone, then the canary's
    folder is moved to .rolled-back/; recorded as a rollback (MLMD ``transferline.Rollback`` with ``canary``,
    and rollbacks.jsonl). NotFound when no canary is on trial. Takes the work dir's lock (re-entrant)."""
    from pipelines.work_lock import exclusive

    _check_reason(reason)
    with exclusive(config.paths.work_dir):
        now = rollout.read(config.serving_dir)
        if now.canary is None:
            raise NotFound(f"no canary on trial under {config.serving_dir} ({rollout.describe(now)}); "
                           "`transferline rollback` without a canary serves the previous version")
        rollout.apply(config.serving_dir, config.serve.model_name, rollout.after_drop(now))
        return _recorded(config, Rollback(from_version=now.canary, to_version=now.stable, moved=[now.canary],
                                          canary=now.canary, **who(reason)))


def who(reason: str) -> dict:
    """Who, where and when, with why: the fields every operator's record carries."""
    return {"user": getpass.getuser(), "host": socket.gethostname(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "reason": reason}


def _recorded(config: Config, record: Rollback) -> Rollback:
    return recorded(config, record, ROLLBACK_EXECUTION_TYPE, config.work.rollbacks_log)


def recorded(config: Config, record, execution_type: str, log: str):
    """An operator's event (a dataclass with ``mlmd_execution_id``): an MLMD execution of ``execution_type`` in
    the pipeline's context, and a JSON line appended to ``log``."""
    record.mlmd_execution_id = record_event(connect(config.metadata_path, writable=True), config.pipeline_name,
                                            execution_type,
                                            {k: v for k, v in asdict(record).items() if k != "mlmd_execution_id"})
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a") as f:
        f.write(json.dumps(asdict(record)) + "\n")
    return record


def rollbacks(metadata_path: str) -> list[dict]:
    """Every recorded rollback, oldest first, from MLMD."""
    if not os.path.exists(metadata_path):
        return []
    return run_history.rollbacks(connect(metadata_path))
