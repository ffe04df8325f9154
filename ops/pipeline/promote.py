"""`transferline promote`: the canary on trial becomes the stable version, and who, when and why is recorded.

rollout.mode = canary (components/rollout.py): the serving dir's model config names `stable` and a `canary`
beside it. Promoting rewrites it to serve the canary alone, labelled `stable`: a legal label move for TF
Serving, since the canary has been loaded (AVAILABLE) all through its trial (server_core.cc:504-567). The old
stable version's folder stays under the serving dir (an older version, as after a push in replace mode), so
`rollback` can serve it again. Each promotion is an MLMD execution (type ``transferline.Promote``) in the
pipeline's context, and a line in ``<work_dir>/reports/promotions.jsonl``; `transferline versions` shows it.
`promote` is also what the scheduled retrain calls when the canary's verdict passes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from components import rollout
from components.errors import NotFound, UserError
from components.serving_dir import served_versions
from ops.args import add_config_args, config_from, say
from ops.pipeline.rollback import recorded, who
from pipelines.config import Config
from pipelines.run_history import PROMOTE_EXECUTION_TYPE

PROMOTIONS_LOG = "promotions.jsonl"  # under <work_dir>/reports/, beside rollbacks.jsonl


def register(sub) -> None:
    p = sub.add_parser("promote", help="make the canary on trial the stable version (recorded in MLMD)")
    add_config_args(p)
    p.add_argument("--reason", required=True, help="why; recorded with who and when")
    p.set_defaults(func=command)


def command(args) -> int:
    config = config_from(args)
    done = promote(config, args.reason or "")
    say(f"promoted: version {done.to_version} is stable (was {done.from_version}; still under "
        f"{config.serving_dir}, for a rollback)")
    say(f"recorded: MLMD execution {done.mlmd_execution_id} ({done.user}@{done.host}, {done.time}: {done.reason})")
    print(os.path.join(config.serving_dir, str(done.to_version)))
    return 0


@dataclass
class Promotion:
    from_version: int  # the stable version before
    to_version: int    # the canary, stable now
    user: str
    host: str
    time: str
    reason: str
    mlmd_execution_id: int = 0


def promotions_log(config: Config) -> str:
    return os.path.join(config.work.reports(), PROMOTIONS_LOG)


def promote(config: Config, reason: str) -> Promotion:
    """Moves `stable` to the canary on trial (the model config then serves it alone) and records it. UserError
    without a reason, NotFound without a canary on trial. Takes the work dir's lock (re-entrant)."""
    from pipelines.work_lock import exclusive

    if not reason.strip():
        raise UserError("say why: --reason \"...\" is recorded with the promotion")
    with exclusive(config.paths.work_dir):
        now = rollout.read(config.serving_dir)
        if now.canary is None:
            raise NotFound(f"no canary on trial under {config.serving_dir} ({rollout.describe(now)}); a run with "
                           "--set rollout.mode=canary pushes one")
        if now.canary not in served_versions(config.serving_dir):
            raise NotFound(f"the canary, version {now.canary}, is not under {config.serving_dir} (moved by hand?); "
                           f"nothing promoted: see {now.config_path}")
        rollout.apply(config.serving_dir, config.serve.model_name, rollout.after_promote(now))
        record = Promotion(from_version=now.stable, to_version=now.canary, **who(reason))
        return recorded(config, record, PROMOTE_EXECUTION_TYPE, promotions_log(config))
