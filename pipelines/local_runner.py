"""Runs the pipeline locally: LocalDagRunner, Beam DirectRunner, MLMD in SQLite under the work dir.

Thin on purpose: resolve the encoder handle, build the pipeline, run it while
showing which component runs and for how long, then summarise from MLMD.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import sys
import time

from tfx import v1 as tfx

from components.baseline import STALE
from components.data_gate import DataRejected, diagnose_csv_files
from components.encoder import resolve_handle
from components.serving_dir import served_versions
from pipelines.config import Config
from pipelines.pipeline import create_pipeline, stage_schema_file
from pipelines.summary import RunSummary, summarize


class ComponentProgress(logging.Handler):
    """Turns LocalDagRunner's 'Component X is running/finished.' log records into timed progress lines."""

    def __init__(self, out=sys.stderr):
        super().__init__(logging.INFO)
        self.out = out
        self.started: dict[str, float] = {}
        self.durations: dict[str, float] = {}

    def emit(self, record):
        if record.msg not in ("Component %s is running.", "Component %s is finished."):
            return
        node = record.args[0]
        if record.msg.endswith("running."):
            self.started[node] = time.monotonic()
            print(f"[transferline] {node:<22} running ...", file=self.out, flush=True)
        else:
            self.durations[node] = time.monotonic() - self.started.get(node, time.monotonic())
            print(f"[transferline] {node:<22} done in {self.durations[node]:6.1f} s",
                  file=self.out, flush=True)


class _Errors(logging.Handler):
    """Holds ERROR records back: a rejected user file needs one message, not Beam's traceback."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


def _quiet_tfx_logs(out) -> _Errors:
    """Keeps TFX/Beam INFO chatter off the terminal (our progress handler still receives TFX's records),
    shows warnings, and holds errors back for the caller to show or drop."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    warnings_only = logging.StreamHandler(out)
    warnings_only.setLevel(logging.WARNING)
    warnings_only.addFilter(lambda r: r.levelno < logging.ERROR
                            and "property_predicate is not supported" not in r.getMessage()
                            and "`custom_executor_spec` is deprecated" not in r.getMessage())
    errors = _Errors()
    for name in ("absl", "apache_beam"):
        logger = logging.getLogger(name)
        logger.propagate = False  # the root logger may print everything
        logger.addHandler(warnings_only)
        logger.addHandler(errors)
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return errors


def _as_data_error(config: Config, error: Exception) -> DataRejected | None:
    """A failure deep inside TFX/Beam caused by the user's CSV files, as DataRejected naming them."""
    rejected = DataRejected.from_message(str(error))
    if rejected:
        return rejected
    max_chars = config.contract.max_text_chars
    try:
        problems = diagnose_csv_files(config.paths.data_dir, config.data.file_pattern, max_chars)
        if config.paths.test_data_dir:
            problems += diagnose_csv_files(config.paths.test_data_dir, "*.csv", max_chars)
    except Exception:  # the diagnosis must never hide the original error
        return None
    return DataRejected(problems) if problems else None


class Busy(Exception):
    """Another run (or a rollback) holds this work dir; the message says which process."""


@contextlib.contextmanager
def exclusive(work_dir: str):
    """One pipeline run or rollback at a time per work dir (MLMD and the push destination are shared).

    An flock: the kernel releases it when its process ends, so a killed run never blocks the next.
    """
    os.makedirs(work_dir, exist_ok=True)
    f = open(os.path.join(work_dir, ".lock"), "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise Busy(f"another transferline run or rollback is using {work_dir} ({holder}); "
                   f"nothing was done: run this again when it has finished") from None
    try:
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        f.flush()
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def stage_schema(config: Config) -> Config:
    """A copy of the config whose schema_file is a content-addressed copy under the work dir
    (see pipelines.pipeline.staged_schema_name for why)."""
    staged = stage_schema_file(config.paths.schema_file, os.path.join(config.paths.work_dir, "schema"))
    return dataclasses.replace(config, paths=dataclasses.replace(config.paths, schema_file=staged))


def run(config: Config, *, verbose: bool = False, out=sys.stderr) -> tuple[RunSummary, dict[str, float]]:
    """Runs the pipeline; returns the run's summary (from MLMD) and each component's wall time."""
    with exclusive(config.paths.work_dir):
        return _run(config, verbose=verbose, out=out)


def _run(config: Config, *, verbose: bool, out) -> tuple[RunSummary, dict[str, float]]:
    config = stage_schema(config)
    handle = resolve_handle(config.encoder.handle, config.encoder.cache_dir or None,
                            log=lambda m: print(f"[transferline] {m}", file=out))
    progress = ComponentProgress(out)
    absl_logger = logging.getLogger("absl")
    errors = None if verbose else _quiet_tfx_logs(out)
    absl_logger.addHandler(progress)
    try:  # one process runs one pipeline (the CLI's); handlers are left for its lifetime
        refresh = 0
        while True:
            pipeline = create_pipeline(
                config, handle,
                metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                    config.metadata_path),
                beam_pipeline_args=config.beam_pipeline_args(),
                baseline_refresh=refresh)
            try:
                tfx.orchestration.LocalDagRunner().run(pipeline)
            except DataRejected:
                raise
            except Exception as e:
                rejected = _as_data_error(config, e)
                if rejected is None:  # not the data: show everything
                    if errors:
                        print("\n".join(errors.lines), file=out)
                    raise
                raise rejected from None
            result = summarize(config.metadata_path, config.pipeline_name)
            if result.gate_reason != STALE or refresh:
                return result, progress.durations
            # A cached comparison against a model that is no longer served: compare again, with what is.
            refresh = served_versions(config.serving_dir)[-1]
            print(f"[transferline] the served model changed since this candidate was compared; "
                  f"comparing again with served version {refresh}", file=out)
    finally:
        absl_logger.removeHandler(progress)
