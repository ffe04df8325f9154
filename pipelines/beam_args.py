"""The Beam pipeline args of a run: the user's extra args, plus the DirectRunner's settings.

`beam.direct_running_mode = "auto"` picks the mode from the rows the run reads. On small data a run's
Beam cost is fixed cost: `multi_processing` starts a worker process per CPU for every Beam stage, and
each worker loads the encoder (Transform) or the candidate and baseline models (Evaluator) again, while
TensorFlow already uses every core inside one process. `in_memory` runs it all in the runner's process.
Above `beam.auto_in_memory_max_rows` the pure-Python stages (CSV parsing, TFDV statistics) gain from
parallel workers, so auto switches to `multi_processing`. Unknown size (remote data, e.g. the compiled
Kubeflow pipeline) counts as large. An explicit mode, or a --runner in extra_args, is kept as given.
(`multi_processing` has been reported to drop records silently: tensorflow/data-validation#247.)

With the DirectRunner the workers are this Python environment, so TFX's own dependency packaging is
switched off: without one of its dependency flags, every Beam component copies TFX's installed source and
builds an sdist of it for remote workers (tfx/utils/dependency_utils.py, make_beam_dependency_flags),
~1.5 s of CPU per component, which the DirectRunner never stages. `sdk_container_image` is the flag that
says "the workers already have the dependencies"; the DirectRunner does not read it otherwise.
"""
from __future__ import annotations

import glob
import os

AUTO = "auto"
LOCAL_ENVIRONMENT = "local-python-environment"  # a marker only: see above
DIRECT_RUNNING_MODES = (AUTO, "in_memory", "multi_threading", "multi_processing")


def running_mode(mode: str, max_in_memory_rows: int, rows: int | None) -> str:
    """The DirectRunner mode for a run reading `rows` rows (None: unknown)."""
    if mode != AUTO:
        return mode
    return "in_memory" if rows is not None and rows <= max_in_memory_rows else "multi_processing"


def pipeline_args(extra_args: list[str], mode: str, num_workers: int, max_in_memory_rows: int,
                  rows: int | None = None) -> list[str]:
    """extra_args as given; with no --runner among them, the DirectRunner's mode and worker count."""
    args = list(extra_args)
    if not any(a.startswith("--runner") for a in args):
        mode = running_mode(mode, max_in_memory_rows, rows)
        args += [f"--sdk_container_image={LOCAL_ENVIRONMENT}", f"--direct_running_mode={mode}",
                 f"--direct_num_workers={1 if mode == 'in_memory' else num_workers}"]
    return args


def _data_lines(pattern: str) -> int:
    """Lines after each file's header, over the files matching `pattern` (a CSV row per line here)."""
    total = 0
    for path in glob.glob(pattern):
        with open(path, "rb") as f:
            total += max(sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) - 1, 0)
    return total


def count_rows(data_dir: str, file_pattern: str, window: int, test_data_dir: str) -> int | None:
    """Rows a run reads: the chosen spans' files plus the test set; None when the data is not local."""
    if "://" in data_dir or "://" in (test_data_dir or "") or not os.path.isdir(data_dir):
        return None
    from components.errors import NoSpans
    from components.span_folders import span_file_glob
    from components.spans import choose_spans, span_dirs

    try:
        chosen = choose_spans(data_dir, window)
    except NoSpans:  # the ExampleGen says so, in words
        return None
    dirs = span_dirs(data_dir)
    files = span_file_glob(file_pattern)
    rows = sum(_data_lines(os.path.join(dirs[s], files)) for s in chosen)
    return rows + (_data_lines(os.path.join(test_data_dir, "*.csv")) if test_data_dir else 0)
