"""What a local run shows: our progress lines on the terminal, everything else in the run's log file.

TensorFlow, TFX, absl and Beam write to stderr from Python and from C++ (and, in multi-processing mode,
from worker processes), including harmless `Exception ignored in: AtomicFunction.__del__` tracebacks. A
newcomer reads those as failures. So, unless `--verbose`, file descriptor 2 itself points at
``<work_dir>/logs/<time>.log`` for the run, and progress goes to a duplicate of the real stderr.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time

from components.names import PROGRESS_LOGGER
from pipelines.work_dir import WorkDir


class ComponentProgress(logging.Handler):
    """Turns LocalDagRunner's 'Component X is running/finished.' log records into timed progress lines."""

    def __init__(self, out):
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
            print(f"[transferline] {node:<22} done in {self.durations[node]:6.1f} s", file=self.out, flush=True)


def progress_line(record: logging.LogRecord) -> str:
    """A component's own progress record (`names.PROGRESS_LOGGER`, node id in `node`) as a progress line."""
    return f"[transferline] {getattr(record, 'node', ''):<22} {record.getMessage()}"


class StepProgress(logging.Handler):
    """Prints what components log to `names.PROGRESS_LOGGER` (the Trainer's epochs) as progress lines."""

    def __init__(self, out):
        super().__init__(logging.INFO)
        self.out = out

    def emit(self, record):
        print(progress_line(record), file=self.out, flush=True)


@contextlib.contextmanager
def _step_progress(out):
    """Components' progress lines to `out` while the run lasts, and only there (not the root logger's handlers)."""
    logger = logging.getLogger(PROGRESS_LOGGER)
    handler, level, propagate = StepProgress(out), logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


class RunLog:
    """The open run: ``out`` is the terminal (our lines), ``path`` the log file (None when verbose)."""

    def __init__(self, out, path: str | None, progress: ComponentProgress):
        self.out, self.path, self.progress = out, path, progress


def _log_unraisable(log_file):
    """Exceptions Python can only report (a __del__ at interpreter exit) go to the log, not the terminal."""
    def hook(unraisable):
        print(f"Exception ignored in: {unraisable.object!r}: {unraisable.exc_type.__name__}: "
              f"{unraisable.exc_value}", file=log_file, flush=True)
    return hook


@contextlib.contextmanager
def captured(work_dir: str, verbose: bool, out=None):
    """Yields a RunLog for one run; restores stderr afterwards (the log stays the unraisable hook's target)."""
    from absl import logging as absl_logging

    out = out or sys.stderr
    absl = logging.getLogger("absl")
    absl_logging.set_verbosity(absl_logging.INFO)  # TFX's progress records come at INFO
    if verbose:
        progress = ComponentProgress(out)
        absl.addHandler(progress)
        try:
            with _step_progress(out):
                yield RunLog(out, None, progress)
        finally:
            absl.removeHandler(progress)
        return
    os.makedirs(WorkDir(work_dir).logs, exist_ok=True)
    path = os.path.join(WorkDir(work_dir).logs, time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}.log")
    log_file = open(path, "a", buffering=1, encoding="utf-8")
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    saved_fd = os.dup(2)
    os.dup2(log_file.fileno(), 2)  # C++ logs, warnings and worker processes too
    python_stderr, sys.stderr = sys.stderr, log_file  # in case sys.stderr is not fd 2 (a test harness, say)
    progress = ComponentProgress(terminal if out is python_stderr else out)
    to_file = logging.StreamHandler(log_file)
    loggers = [logging.getLogger(name) for name in ("absl", "apache_beam", "tensorflow")]
    for logger in loggers:
        logger.propagate = False  # the root logger would print everything
        logger.addHandler(to_file)
    absl.addHandler(progress)
    sys.unraisablehook = _log_unraisable(log_file)
    try:
        with _step_progress(progress.out):
            yield RunLog(progress.out, path, progress)
    finally:
        absl.removeHandler(progress)
        for logger in loggers:
            logger.removeHandler(to_file)
        sys.stderr.flush()
        sys.stderr = python_stderr
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        terminal.close()
