"""Which span-N/ folders a run reads: the pure choice, TF-free (components/spans.py lists the folders)."""
import glob
import os
import re


def choose(listing: dict[int, list[str]], window: int = 0) -> tuple[list[int], list[int]]:
    """(the newest `window` spans with data files, oldest first (0 = all); the span folders skipped: no data file).

    A span-N/ folder with no data file yet (just created, an upload in progress, only a README or temporary
    files) is skipped, not an error: a scheduled retrain between `mkdir span-N` and the upload trains on the
    spans that are complete, and the run says which folders it skipped.
    """
    ready = sorted(n for n, files in listing.items() if files)
    return (ready[-window:] if window else ready), sorted(n for n, files in listing.items() if not files)


def skipped_message(data_dir: str, skipped: list[int], files: str) -> str:
    return (f"skipped {', '.join(f'span-{n}/' for n in skipped)} under {data_dir}: no file matching '{files}' yet "
            "(a span is read once its data file is there)")


def span_file_glob(file_pattern: str) -> str:
    """The file part of data.file_pattern ('span-*/*.csv' -> '*.csv'): what a span folder and the test set hold.
    The one place the pattern is taken apart (config_loading.validate checks its 'span-*/' form)."""
    return file_pattern.split("/", 1)[-1]


def eval_source(spans: list[int], newest_rows: int, eval_share: float, min_eval_rows: int) -> list[int]:
    """The spans the eval split is drawn from (by the same stable hash): the newest alone, as long as its
    share (``newest_rows`` x ``eval_share``) reaches ``min_eval_rows`` (data.min_eval_rows); else every span
    read, so that a 15-row span never decides early stopping, phase 2 or the gate on ~3 rows."""
    if len(spans) < 2 or newest_rows * eval_share >= min_eval_rows:
        return spans[-1:]
    return list(spans)


def check_local_data(data_dir: str, test_data_dir: str, file_pattern: str) -> None:
    """Before TFX starts (seconds, not the minute an ExampleGen takes to fail): the data root exists and holds
    a span-N/ folder with a data file, and the test set dir exists. Local paths only; a URI is TFX's to read."""
    from components.errors import NoSpans, NotFound  # TF-free, as this module

    files = span_file_glob(file_pattern)
    for what, path in (("data dir (paths.data_dir, --data)", data_dir), ("test set dir (paths.test_data_dir)",
                                                                          test_data_dir)):
        if path and "://" not in path and not os.path.isdir(path):
            raise NotFound(f"the {what} {path} " + ("is not a folder" if os.path.exists(path) else "does not exist"))
    if "://" in data_dir:
        return
    entries = [os.path.join(data_dir, n) for n in os.listdir(data_dir) if re.fullmatch(r"span-\d+", n)]
    broken = [p for folder in [data_dir, *entries, test_data_dir] if folder and os.path.isdir(folder)
              for p in sorted(glob.glob(os.path.join(folder, "span-*" if folder == data_dir else files)))
              if os.path.islink(p) and not os.path.exists(p)]
    if broken:  # else a broken span-N link is silently no span, and a broken file fails deep in the ExampleGen
        from components.csv_checks import problem
        from components.errors import DataRejected

        raise DataRejected([problem(p, f"is a broken symbolic link (to {os.readlink(p)}, which does not exist): "
                                       "restore its target or remove the link") for p in broken])
    listing = {int(os.path.basename(p)[5:]): glob.glob(os.path.join(p, files)) for p in entries if os.path.isdir(p)}
    spans, skipped = choose(listing)
    if not spans:
        raise NoSpans(no_spans_message(data_dir, skipped, files))


def no_spans_message(data_dir: str, skipped: list[int], files: str) -> str:
    return (f"{data_dir}: no span-N/ folder with a file matching '{files}' to train on (labelled data lands as "
            "span-1/, span-2/, ...)" + (f"; {skipped_message(data_dir, skipped, files)}" if skipped else ""))
