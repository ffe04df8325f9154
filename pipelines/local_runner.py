"""Runs the pipeline locally: LocalDagRunner, Beam DirectRunner, MLMD in SQLite under the work dir.

Thin on purpose: stage the schema, resolve the encoder handle, build the pipeline, run it (progress on
the terminal, the rest in the run's log: pipelines/run_log.py), read the run back from MLMD.
"""
from __future__ import annotations

import dataclasses
import sys

from tfx import v1 as tfx

from components import spans
from components.data_gate import rejection_for
from components.encoder import resolve_handle
from components.errors import DataRejected
from components.names import GateReason
from components.rollout import read as rollout_state
from components.span_folders import span_file_glob
from pipelines import beam_args, run_log
from pipelines.config import Config
from pipelines.mlmd_store import adopt_move
from pipelines.pipeline import create_pipeline, stage_schema_file
from pipelines.run_history import mark_interrupted
from pipelines.runs import RecordedRun, read_run
from pipelines.work_lock import exclusive


@dataclasses.dataclass
class LocalRun:
    record: RecordedRun          # the run as MLMD holds it (record.summary: in words)
    durations: dict[str, float]  # component id -> wall seconds, for the components that ran
    log_path: str | None         # everything TF, TFX and Beam printed (None with verbose)


def stage_schema(config: Config) -> Config:
    """A copy of the config whose schema_file is a content-addressed copy under the work dir
    (see pipelines.pipeline.staged_schema_name for why)."""
    staged = stage_schema_file(config.paths.schema_file, config.work.schema_dir)
    return dataclasses.replace(config, paths=dataclasses.replace(config.paths, schema_file=staged))


def run(config: Config, *, verbose: bool = False, out=None) -> LocalRun:
    """Runs the pipeline under the work dir's lock; raises DataRejected when the data breaks the contract."""
    with exclusive(config.paths.work_dir):
        with run_log.captured(config.paths.work_dir, verbose, out) as log:
            return _run(stage_schema(config), log)


def _run(config: Config, log: run_log.RunLog) -> LocalRun:
    # A moved project: MLMD's paths follow the work dir before TFX reads them (pipelines/relocate.py).
    adopt_move(config.paths.work_dir, config.metadata_path)
    # We hold the lock, so no run is alive: what an earlier run left RUNNING died with its process.
    for run_id, component in mark_interrupted(config.metadata_path, config.pipeline_name):
        print(f"[transferline] run {run_id} was interrupted during {component} (its process ended); "
              "marked in MLMD", file=log.out)
    files = span_file_glob(config.data.file_pattern)
    skipped = spans.choose(spans.span_files(config.paths.data_dir, files))[1]
    if skipped:  # a span folder still being filled: not a span yet (components/span_folders.py)
        print(f"[transferline] {spans.skipped_message(config.paths.data_dir, skipped, files)}", file=log.out)
    handle = resolve_handle(config.encoder.handle, config.encoder.cache_dir or None,
                            log=lambda m: print(f"[transferline] {m}", file=log.out))
    rows = beam_args.count_rows(config.paths.data_dir, config.data.file_pattern, config.data.train_spans,
                                config.paths.test_data_dir)
    args = config.beam_pipeline_args(rows)
    # To the run's log file (the terminal with --verbose).
    print(f"[transferline] Beam args ({rows} rows read): {' '.join(args)}", file=sys.stderr)
    refresh = 0
    while True:
        pipeline = create_pipeline(
            config, handle,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                config.metadata_path),
            beam_pipeline_args=args,
            baseline_refresh=refresh)
        try:
            tfx.orchestration.LocalDagRunner().run(pipeline)
        except DataRejected:
            raise
        except Exception as e:
            rejected = rejection_for(e, config.paths.data_dir, config.data.file_pattern,
                                     config.paths.test_data_dir, config.contract.max_text_chars)
            if rejected is None:  # not the data: a bug or the machine; the log has TFX's and Beam's side
                if log.path:
                    print(f"[transferline] the run failed; TFX and Beam logs: {log.path}", file=log.out)
                raise
            raise rejected from None
        record = read_run(config.metadata_path, config.pipeline_name)
        record.summary.skipped_spans = skipped  # now, even when the ExampleGen was cached
        if record.summary.gate_reason != GateReason.STALE or refresh:
            return LocalRun(record, log.progress.durations, log.path)
        # A cached comparison against a model that is no longer served: compare again, with what is.
        refresh = rollout_state(config.serving_dir).stable  # stable: never a canary on trial
        if not refresh:  # nothing served any more: nothing to compare again with (the stale verdict stands)
            return LocalRun(record, log.progress.durations, log.path)
        print(f"[transferline] the served model changed since this candidate was compared; "
              f"comparing again with served version {refresh}", file=log.out)
