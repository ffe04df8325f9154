"""Which span-N/ folders a run reads: the pure choice, TF-free (components/spans.py lists the folders)."""


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
