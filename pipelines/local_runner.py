"""Runs the pipeline locally: LocalDagRunner, Beam DirectRunner, MLMD in SQLite under the work dir.

Thin on purpose: resolve the encoder handle, build the pipeline, run it while
showing which component runs and for how long, then summarise from MLMD.
"""
from __future__ import annotations

import logging
import os
import sys
import time

from tfx import v1 as tfx

from components.baseline import STALE, served_versions
from components.encoder import resolve_handle
from pipelines.config import Config
from pipelines.pipeline import create_pipeline
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


def _quiet_tfx_logs(absl_logger: logging.Logger, out) -> None:
    """Keep TFX/Beam INFO chatter off the terminal; our progress handler still receives TFX's records."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logger.propagate = False  # the root logger may print everything at INFO
    warnings_only = logging.StreamHandler(out)
    warnings_only.setLevel(logging.WARNING)
    absl_logger.addHandler(warnings_only)
    warnings_only.addFilter(lambda r: "property_predicate is not supported" not in r.getMessage())
    for name in ("apache_beam", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run(config: Config, *, verbose: bool = False, out=sys.stderr) -> tuple[RunSummary, dict[str, float]]:
    """Runs the pipeline; returns the run's summary (from MLMD) and each component's wall time."""
    os.makedirs(config.paths.work_dir, exist_ok=True)
    handle = resolve_handle(config.encoder.handle, config.encoder.cache_dir or None,
                            log=lambda m: print(f"[transferline] {m}", file=out))
    progress = ComponentProgress(out)
    absl_logger = logging.getLogger("absl")
    if not verbose:
        _quiet_tfx_logs(absl_logger, out)
    absl_logger.addHandler(progress)
    try:
        refresh = 0
        while True:
            pipeline = create_pipeline(
                config, handle,
                metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                    config.metadata_path),
                beam_pipeline_args=config.beam_pipeline_args(),
                baseline_refresh=refresh)
            tfx.orchestration.LocalDagRunner().run(pipeline)
            result = summarize(config.metadata_path, config.pipeline_name)
            if result.gate_reason != STALE or refresh:
                return result, progress.durations
            # A cached comparison against a model that is no longer served: compare again, with what is.
            refresh = served_versions(config.serving_dir)[-1]
            print(f"[transferline] the served model changed since this candidate was compared; "
                  f"comparing again with served version {refresh}", file=out)
    finally:
        absl_logger.removeHandler(progress)
