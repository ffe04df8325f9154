"""`transferline init DIR --train FILE`: a self-contained project from one labelled CSV file.

    DIR/transferline.toml   the config; every path in it relative to it (the folder can be moved)
    DIR/data/span-1/        the training rows as text,label (later labelled data: span-2/, span-3/, ...)
    DIR/data/test/          the held-out test set: --test FILE, or a stratified --test-fraction (fixed seed)
    DIR/schema.pbtxt        the data contract: text and label required, one value each, the classes seen
    DIR/work/               made by the first run: pipeline outputs, MLMD, reports, serving/

Everything is checked before anything is written: a refusal (one line, non-zero exit) creates nothing.
Texts and labels are stripped of surrounding whitespace; nothing else is changed.
"""
from __future__ import annotations

import collections
import csv
import os
import shlex
import shutil

from components import names
from components.csv_checks import delimiter_hint, duplicate_columns, listed, parse_csv, ragged, with_line_breaks
from components.errors import DataFileError, ProjectExists
from ops.args import say

SEED = 42                  # the held-out split is the same on every machine
IMBALANCE_WARNING = 10.0   # warn when the largest class has this many times the rows of the smallest
# init raises contract.max_text_chars to the longest text, up to this; a longer text is refused, not adopted:
# it is nearly always an unclosed quote that ran on (and Python's csv module, which the ExampleGen's reader
# uses, stops at 131,072 characters a field by default).
MAX_TEXT_CHARS = 100_000


def register(sub) -> None:
    p = sub.add_parser("init", help="start a project from your own labelled CSV file (then: run, predict, serve)")
    p.add_argument("dir", metavar="DIR", help="the project folder to create")
    p.add_argument("--train", required=True, metavar="FILE", help="labelled CSV file: one text and its label a row")
    test = p.add_mutually_exclusive_group()
    test.add_argument("--test", metavar="FILE", help="a held-out test file with the same columns")
    test.add_argument("--test-fraction", type=float, default=0.1, metavar="F",
                      help="else hold out this stratified fraction of --train as the test set (default 0.1)")
    p.add_argument("--text-column", default=names.TEXT, metavar="C", help="the column holding the texts (default text)")
    p.add_argument("--label-column", default=names.LABEL, metavar="L",
                   help="the column holding the labels (default label)")
    p.add_argument("--delimiter", default=",", metavar="D", help="the files' field delimiter (default ','; '\\t' for tab)")
    p.add_argument("--min-class-rows", type=int, default=10, metavar="N",
                   help="refuse a class with fewer training rows than this (default 10)")
    p.add_argument("--force", action="store_true", help="replace the data, schema and config of an existing project "
                                                        "(its work/ folder is kept)")
    p.set_defaults(func=command)


def command(args) -> int:
    project = init_project(args.dir, args.train, test=args.test, test_fraction=args.test_fraction,
                           text_column=args.text_column, label_column=args.label_column,
                           delimiter=args.delimiter.replace("\\t", "\t"), min_class_rows=args.min_class_rows,
                           force=args.force)
    config = os.path.join(args.dir, names.PROJECT_FILE)
    print(f"created {args.dir}: {project['train']} training rows, {len(project['classes'])} classes "
          f"({', '.join(project['classes'])}), {project['test']} test rows; config {config}")
    print("next:")
    print(f"  transferline run --config {config}")
    print(f"  transferline predict --config {config} {shlex.quote(project['example'])}")
    return 0


def read_labelled(path: str, text_column: str, label_column: str, delimiter: str = ",") -> list[tuple[str, str]]:
    """(text, label) rows of a labelled CSV file; DataFileError (one line) when it cannot be used."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataFileError(f"{path}: cannot be read ({e.strerror or e})") from None
    rows, found = parse_csv(raw, path, delimiter)
    if found:
        raise DataFileError(f"{found[0]['where']} {found[0]['problem']}")
    header = [h.strip() for h in rows[0]]
    hint = delimiter_hint(header) if delimiter == "," else None
    if hint:  # before the field counts: texts with commas make a ';' file look ragged, not mis-delimited
        flag = "'\\t'" if hint == "\t" else repr(hint)  # as typed in a shell
        raise DataFileError(f"{path} has one column, [{listed(header)}] (the file seems to use {flag}: give "
                            f"--delimiter {flag})")
    found = ragged(rows, path)
    if found:
        raise DataFileError(f"{found[0]['where']} {found[0]['problem']}")
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise DataFileError(f"{path} has no column {' or '.join(map(repr, missing))}; columns found: "
                            f"{listed(header)}; name yours with --text-column and --label-column")
    twice = [c for c in duplicate_columns(header) if c in (text_column, label_column)]
    if twice:
        raise DataFileError(f"{path} has the column(s) {listed(twice)} more than once: which one is meant is not "
                            "knowable; rename or drop the others")
    t, y = header.index(text_column), header.index(label_column)
    out = [(r[t].strip(), r[y].strip()) for r in rows[1:] if r]
    empty = [i + 2 for i, (text, label) in enumerate(out) if not text or not label]
    if empty:
        raise DataFileError(f"{path}: {len(empty)} row(s) have an empty text or label (first at line {empty[0]})")
    if not out:
        raise DataFileError(f"{path} has a header but no rows")
    huge = [i + 2 for i, (text, _) in enumerate(out) if len(text) > MAX_TEXT_CHARS]
    if huge:
        n = max(len(text) for text, _ in out)
        raise DataFileError(f"{path}: {len(huge)} text(s) longer than {MAX_TEXT_CHARS:,} characters (the longest "
                            f"{n:,}; first at row {huge[0]}): an unclosed quote that swallowed the rows after it? "
                            "fix or drop those rows")
    return out


def check_classes(rows: list[tuple[str, str]], path: str, min_rows: int) -> collections.Counter:
    """The class counts; DataFileError for fewer than 2 classes or a class with fewer than min_rows rows."""
    counts = collections.Counter(label for _, label in rows)
    if len(counts) < 2:
        raise DataFileError(f"{path}: only one class ({next(iter(counts))!r}, {len(rows)} rows); "
                            "a classifier needs at least 2")
    small = sorted((n, c) for c, n in counts.items() if n < min_rows)
    if small:
        raise DataFileError(f"{path}: class {small[0][1]!r} has {small[0][0]} row(s); each class needs at least "
                            f"{min_rows} (--min-class-rows)" + (f"; {len(small) - 1} more class(es) too small"
                                                               if len(small) > 1 else ""))
    return counts


def split_test(rows, fraction: float):
    """(train, test): a stratified held-out fraction (scikit-learn), the same on every machine."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < fraction < 1.0:
        raise DataFileError(f"--test-fraction {fraction}: give a fraction between 0 and 1, e.g. 0.1")
    try:
        return train_test_split(rows, test_size=fraction, random_state=SEED, stratify=[y for _, y in rows])
    except ValueError as e:  # too few rows for one test row per class
        raise DataFileError(f"cannot hold out a stratified {fraction:.0%} test set: {e}") from None


def warnings_for(counts: collections.Counter, train, test) -> list[str]:
    """Worth knowing, not worth refusing: strong class imbalance, texts both in train and test."""
    out = []
    (big, n_big), (small, n_small) = counts.most_common()[0], counts.most_common()[-1]
    if n_big >= IMBALANCE_WARNING * n_small:
        out.append(f"strong class imbalance: {big!r} has {n_big} rows, {small!r} {n_small} "
                   f"({n_big / n_small:.0f}×); accuracy favours the big classes, read the per-class figures")
    shared = {t for t, _ in train} & {t for t, _ in test}
    if shared:
        out.append(f"{len(shared)} test text(s) also appear in the training rows, e.g. {sorted(shared)[0]!r}: "
                   "the test accuracy will flatter the model")
    return out


def notes_for(rows) -> list[str]:
    """What init adopts as it is, said once: texts with line breaks, a raised max_text_chars."""
    from pipelines.config import ContractConfig

    out = []
    breaks = with_line_breaks(t for t, _ in rows)
    if breaks:
        out.append(f"{breaks} text(s) hold line breaks (quoted newlines in the CSV): kept as they are")
    longest = max(len(t) for t, _ in rows)
    if longest > ContractConfig.max_text_chars:
        out.append(f"the longest text has {longest:,} characters: contract.max_text_chars raised to it (default "
                   f"{ContractConfig.max_text_chars:,}; init refuses texts over {MAX_TEXT_CHARS:,})")
    return out


def schema_text(classes: list[str], source: str) -> str:
    """The project's data contract (tensorflow_metadata's Schema proto as text) with a comment on changing it."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    for name in (names.TEXT, names.LABEL):
        feature = schema.feature.add(name=name, type=schema_pb2.BYTES)
        feature.presence.min_fraction, feature.presence.min_count = 1.0, 1
        feature.shape.dim.add(size=1)
        if name == names.LABEL:
            feature.domain = names.LABEL
    schema.string_domain.add(name=names.LABEL, value=classes)
    return (f"# The data contract of this project, made by `transferline init` from {source}.\n"
            "# Every run's data is checked against it; a label outside the string_domain below halts the run\n"
            "# before training. To add a class on purpose: land its rows as a new span (data/span-N/), run\n"
            "# `transferline schema propose`, review the diff, then `transferline schema adopt` (or edit the\n"
            "# string_domain values below by hand).\n" + text_format.MessageToString(schema))


def config_text(source: str, max_text_chars: int) -> str:
    from pipelines.config import ContractConfig

    contract = ""
    if max_text_chars > ContractConfig.max_text_chars:
        contract = f"\n[contract]\n# the longest text in {source} has {max_text_chars} characters\n" \
                   f"max_text_chars = {max_text_chars}\n"
    return (f"# A transferline project, made by `transferline init` from {source}. Paths are relative to this\n"
            "# file, so the folder can be moved whole. Every knob and its default: `transferline config`.\n"
            "[paths]\n"
            'data_dir = "data"             # span-N/ folders of text,label CSV; land new labelled data as span-2/, ...\n'
            'test_data_dir = "data/test"   # the held-out test set: the gate evaluates on it too\n'
            'schema_file = "schema.pbtxt"  # the data contract\n'
            'work_dir = "work"             # pipeline outputs, MLMD, reports, logs; serving/ holds the models\n'
            "\n[gate]\n"
            "# No absolute floor: the first model must beat the majority class and TF-IDF + logistic regression,\n"
            "# measured on the same gate data in the same run, by reference_margin; later models must not\n"
            "# fall behind the served one (max_accuracy_drop).\n"
            "min_accuracy = 0.0\nreference_margin = 0.0\n" + contract)


def _write_csv(path: str, rows) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(names.COLUMNS)
        writer.writerows(rows)


def init_project(directory: str, train_file: str, *, test: str | None = None, test_fraction: float = 0.1,
                 text_column: str = names.TEXT, label_column: str = names.LABEL, delimiter: str = ",",
                 min_class_rows: int = 10, force: bool = False) -> dict:
    """Checks everything, then writes the project; returns what it wrote (counts, classes, an example text)."""
    config_path = os.path.join(directory, names.PROJECT_FILE)
    if os.path.exists(config_path) and not force:
        raise ProjectExists(f"{directory} already holds a project ({config_path}); give --force to replace its "
                            "data, schema and config, or choose another folder")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ProjectExists(f"{directory} exists and is not a folder")
    rows = read_labelled(train_file, text_column, label_column, delimiter)
    counts = check_classes(rows, train_file, min_class_rows)
    if test:
        test_rows = read_labelled(test, text_column, label_column, delimiter)
        unknown = sorted({y for _, y in test_rows} - set(counts))
        if unknown:
            raise DataFileError(f"{test}: label(s) {', '.join(map(repr, unknown))} never occur in {train_file}; "
                                "a test set can only hold classes the model is trained on")
        train_rows = rows
    else:
        train_rows, test_rows = split_test(rows, test_fraction)
    for warning in warnings_for(counts, train_rows, test_rows):
        say(f"warning: {warning}")
    for note in notes_for([*train_rows, *test_rows]):
        say(f"note: {note}")

    classes = sorted(counts)
    source = os.path.basename(train_file)
    data = os.path.join(directory, "data")
    if force and os.path.isdir(data):
        shutil.rmtree(data)
    _write_csv(os.path.join(data, "span-1", "train.csv"), train_rows)
    _write_csv(os.path.join(data, "test", "test.csv"), test_rows)
    with open(os.path.join(directory, "schema.pbtxt"), "w", encoding="utf-8") as f:
        f.write(schema_text(classes, source))
    with open(config_path, "w", encoding="utf-8") as f:
        f.write(config_text(source, max(len(t) for t, _ in [*train_rows, *test_rows])))
    return {"train": len(train_rows), "test": len(test_rows), "classes": classes, "example": test_rows[0][0]}
