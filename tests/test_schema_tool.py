"""`transferline schema propose`: SchemaGen infers a candidate from data; the diff is shown, nothing overwritten."""
import os

from conftest import REPO, TRAIN_CSV, read_rows, run_cli, stratified, write_csv
import pytest

pytestmark = pytest.mark.slow  # loads TF models, compiles or runs pipelines

SCHEMA = os.path.join(REPO, "pipelines", "schema", "schema.pbtxt")


def test_propose_writes_a_candidate_and_diffs_it(tmp_path):
    rows = stratified(read_rows(TRAIN_CSV), 120)
    rows.append({"text": "Is this a brand-new class ?", "label": "YESNO"})
    write_csv(str(tmp_path / "data" / "span-1" / "q.csv"), rows)
    before = open(SCHEMA).read()
    out = tmp_path / "proposed.pbtxt"
    result = run_cli("schema", "propose", "--data", str(tmp_path / "data"), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    proposed = out.read_text()
    assert 'name: "text"' in proposed and 'name: "label"' in proposed
    assert '+  value: "YESNO"' in result.stdout  # the new class shows up in the diff for review
    assert open(SCHEMA).read() == before  # the contract changes only by hand
