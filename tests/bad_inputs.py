"""The bad-input corpus: each kind of broken input as small CSV files beside good TREC rows.

Each kind maps to (files to write under a data root, a phrase the rejection message must contain).
"""
from conftest import TRAIN_CSV, read_rows, stratified

HEADER = "text,label\n"


def _csv(rows):
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows([r["text"], r["label"]] for r in rows)
    return out.getvalue()


def corpus():
    good = stratified(read_rows(TRAIN_CSV), 60, seed=3)
    good_csv = _csv(good)
    body = good_csv[len(HEADER):]
    hum = [r for r in read_rows(TRAIN_CSV) if r["label"] == "HUM"][:54] + good[:6]
    return {
        "missing_label_column": ({"span-1/q.csv": "text\n" + "".join(f'"{r["text"]}"\n' for r in good)},
                                 "missing column(s) ['label']"),
        "extra_column": ({"span-1/q.csv": "text,label,source\n" + "".join(
            f'"{r["text"]}",{r["label"]},web\n' for r in good)}, "unexpected column(s) ['source']"),
        "unknown_label": ({"span-1/q.csv": good_csv + "Is it raining in Paris ?,YESNO\n"}, "YESNO"),
        "empty_text": ({"span-1/q.csv": good_csv + ",HUM\n"}, "feature 'text'"),
        "whitespace_text": ({"span-1/q.csv": good_csv + '"   ",HUM\n'}, "only whitespace"),
        "huge_text": ({"span-1/q.csv": good_csv + f'"{"why " * 262144}?",DESC\n'},
                      "longer than 1,000 characters"),
        "non_utf8": ({"span-1/q.csv": good_csv.encode() + "Où est le café ?,LOC\n".encode("latin-1")},
                     "is not UTF-8 text"),
        "wrong_delimiter": ({"span-1/q.csv": HEADER.replace(",", ";") + "".join(
            f'{r["text"].replace(";", " ")};{r["label"]}\n' for r in good)}, "uses ';' as delimiter"),
        "header_only": ({"span-1/q.csv": good_csv, "span-2/q.csv": HEADER}, "has a header but no rows"),
        "empty_file": ({"span-1/q.csv": good_csv, "span-2/q.csv": ""}, "is empty"),
        "duplicates_en_masse": ({"span-1/q.csv": good_csv + body * 3}, "repeat another row exactly"),
        "label_drift": ({"span-1/q.csv": good_csv, "span-2/q.csv": _csv(hum)},
                        "the training data with span-2 vs without it (span 1), 'label'"),
        "duplicate_label_column": ({"span-1/q.csv": "text,label,label\n" + "".join(
            f'"{r["text"]}",{r["label"]},{r["label"]}\n' for r in good)}, "has column(s) ['label'] more than once"),
        "nul_byte": ({"span-1/q.csv": good_csv + "Who is \x00 ?,HUM\n"}, "NUL byte"),  # its line, or the gate's count
        "thousand_columns": ({"span-1/q.csv": "text,label," + ",".join(f"c{i}" for i in range(1000)) + "\n" + "".join(
            f'"{r["text"]}",{r["label"]}' + ",x" * 1000 + "\n" for r in good)}, "... and 990 more]"),
        "one_class": ({"span-1/q.csv": _csv(hum[:54])}, "only one class, 'HUM'"),
        "numeric_text_column": ({"span-1/q.csv": HEADER + "".join(f"{i},NUM\n" for i in range(60))},
                                "Expected data of type: BYTES but got INT"),
    }


def write(root, files):
    import os

    for rel, content in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
