"""`transferline report`: the HTML page of a real run, its numbers checked against MLMD, TFMA and the data."""
import base64
import collections
import html.parser
import io
import os

import pytest

from conftest import read_rows, run_cli

pytestmark = pytest.mark.slow


class Tables(html.parser.HTMLParser):
    """Every <table id=...> as rows of cell texts, every <img id=...> src, and the text of <p id=...>."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.images, self.paragraphs = {}, {}, {}
        self._table = self._row = self._cell = self._p = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id"):
            self._table = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img" and attrs.get("id"):
            self.images[attrs["id"]] = attrs["src"]
        elif tag == "p" and attrs.get("id"):
            self._p = attrs["id"]
            self.paragraphs[self._p] = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "p":
            self._p = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._p:
            self.paragraphs[self._p] += data

    def rows(self, table_id):
        header, *body = self.tables[table_id]
        return header, {r[0]: r[1:] for r in body}


def _report(runs, run_index):
    s = runs.summary(run_index)
    path = os.path.join(runs.work_dir, "reports", s.run_id, "report.html")
    with open(path, encoding="utf-8") as f:
        return s, Tables(f.read())


def _tfma_overall(uri):
    """Accuracy and example count of the candidate, read straight from TFMA's output."""
    import tensorflow_model_analysis as tfma

    out = {}
    for m in tfma.load_metrics(uri):
        if m.slice_key.single_slice_keys:
            continue
        for kv in m.metric_keys_and_values:
            if kv.key.model_name != "baseline" and not kv.key.is_diff and not kv.key.HasField("sub_key"):
                out[kv.key.name] = kv.value.double_value.value
    return out


def test_every_run_points_at_its_report(slice_runs):
    for result in slice_runs.results:
        lines = [l.strip() for l in result.stdout.splitlines()]
        report = next(l for l in lines if l.startswith("report: ")).split("report: ")[1]
        summary = next(l for l in lines if l.startswith("summary: ")).split("summary: ")[1]
        assert os.path.dirname(report) == os.path.dirname(summary)  # work/reports/<run id>/
        assert os.path.dirname(os.path.dirname(report)) == os.path.join(slice_runs.work_dir, "reports")
        assert os.path.basename(report) == "report.html" and os.path.getsize(report) > 10_000
    first = slice_runs.summary(0)
    assert first.run_id in slice_runs.results[0].stdout


def test_metrics_and_confusion_matrix_match_tfma(slice_runs):
    from PIL import Image

    s, page = _report(slice_runs, 0)
    tfma_values = _tfma_overall(s.artifacts["Evaluator.evaluation"])
    _, metrics = page.rows("metrics")
    assert metrics["accuracy"] == [f"{tfma_values['sparse_categorical_accuracy']:.4f}"]
    assert metrics["examples"] == [f"{int(tfma_values['example_count'])}"]
    assert metrics["macro F1"] == [f"{s.metrics['macro_f1']:.4f}"]
    header, per_class = page.rows("per-class")
    assert header == ["class", "precision", "recall", "F1"]
    assert set(per_class) == {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    for name, (precision, recall, f1) in per_class.items():
        assert (precision, recall, f1) == tuple(f"{s.per_class[name][k]:.4f}"
                                               for k in ("precision", "recall", "f1_score"))
    # The confusion matrix holds every gate example, and its diagonal is the accuracy.
    header, confusion = page.rows("confusion")
    classes = header[1:]
    counts = {actual: list(map(float, row)) for actual, row in confusion.items()}
    total = sum(map(sum, counts.values()))
    assert total == tfma_values["example_count"]
    correct = sum(counts[c][classes.index(c)] for c in classes)
    assert correct / total == pytest.approx(tfma_values["sparse_categorical_accuracy"], abs=1e-6)
    # Recall of a class = its diagonal cell / its row.
    for c in classes:
        assert counts[c][classes.index(c)] / sum(counts[c]) == pytest.approx(s.per_class[c]["recall"], abs=1e-4)
    src = page.images["confusion-matrix"]
    assert src.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 300


def test_gate_shows_the_decision_thresholds_and_baseline(slice_runs):
    s, page = _report(slice_runs, 0)
    _, gate = page.rows("gate")
    assert gate["Evaluator verdict"] == ["BLESSED"] and gate["push gate"] == ["ok"]
    assert gate["pushed"] == [s.pushed_path]
    assert gate["compared with"] == ["first model (nothing served: the references and the absolute floor decide)"]
    assert gate["references (same gate data)"][0].startswith("majority class 0.")
    _, thresholds = page.rows("thresholds")
    assert thresholds["accuracy"] == ["at least", "0.8000"]  # the default gate.min_accuracy

    s, page = _report(slice_runs, 1)  # the run with an impossible bound (the second MLMD run)
    _, gate = page.rows("gate")
    assert gate["Evaluator verdict"] == ["NOT BLESSED"]
    assert gate["pushed"] == ["nothing (the served model is unchanged)"]
    assert "required >= 1.0000" in gate["why not"][0]
    assert page.rows("thresholds")[1]["accuracy"] == ["at least", "1.0000"]


def test_label_distribution_per_split_and_span_matches_the_data(slice_runs):
    s, page = _report(slice_runs, 0)
    data = os.path.join(slice_runs.root, "data", "span-1", "questions.csv")
    test = os.path.join(slice_runs.root, "test", "questions.csv")
    train_counts = collections.Counter(r["label"] for r in read_rows(data))
    test_counts = collections.Counter(r["label"] for r in read_rows(test))

    header, spans = page.rows("span-labels")
    classes = header[1:-1]
    assert spans["span-1"] == [str(train_counts[c]) for c in classes] + [str(sum(train_counts.values()))]

    header, splits = page.rows("label-distribution")
    assert set(splits) == {"train", "eval", "test"}
    by_split = {k: dict(zip(header[1:-1], map(int, v[:-1]))) for k, v in splits.items()}
    for c in train_counts:  # the span is hash-split into train and eval: together, every row of it
        assert by_split["train"].get(c, 0) + by_split["eval"].get(c, 0) == train_counts[c]
    assert by_split["test"] == dict(test_counts)
    # TFDV's own views are embedded: its anomalies table per split and its Facets statistics.
    assert {"anomalies-train", "anomalies-eval", "anomalies-test"} <= set(page.tables) | set(page.paragraphs)


def test_lineage_matches_mlmd(slice_runs):
    from pipelines.mlmd_store import connect, run_contexts

    s, page = _report(slice_runs, 0)
    store = connect(slice_runs.metadata_path)
    context = next(c for c in run_contexts(store, "transferline") if c.name == s.run_id)
    executions = {e.id for e in store.get_executions_by_context(context.id)}
    _, lineage = page.rows("lineage")
    assert set(lineage) == set(s.executions)
    assert {int(row[1]) for row in lineage.values()} == executions
    assert all(row[0] == "COMPLETE" for row in lineage.values())
    chain = page.paragraphs["chain"]
    assert "span(s) 1" in chain
    assert f"Transform execution {lineage['Transform'][1]}" in chain
    assert f"Trainer execution {lineage['Trainer'][1]}" in chain
    assert f"version {os.path.basename(s.pushed_path)}" in chain

    # A re-run with only the gate changed names the executions of the first run as the producers of what
    # it reused from TFX's cache.
    _, cached = _report(slice_runs, 1)[1].rows("lineage")
    assert cached["Trainer"][0] == "CACHED" and cached["Evaluator"][0] == "COMPLETE"
    assert cached["Trainer"][4] == f"execution {lineage['Trainer'][1]}"


def test_report_cli_picks_runs_and_explains_mistakes(slice_runs, tmp_path):
    result = run_cli("report", "0", "--config", slice_runs.config)
    assert result.returncode == 0, result.stderr[-3000:]
    first = slice_runs.summary(0)
    assert result.stdout.strip() == os.path.join(slice_runs.work_dir, "reports", first.run_id, "report.html")
    assert "gate: BLESSED" in result.stderr

    result = run_cli("report", "no-such-run", "--config", slice_runs.config)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no run 'no-such-run'" in result.stderr and "-1 = latest" in result.stderr

    result = run_cli("report", "--work-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "run `transferline run` first" in result.stderr
