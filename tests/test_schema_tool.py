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


def test_adopt_takes_the_proposals_classes_keeps_the_rest_backs_up_and_diffs(tmp_path):
    from ops.pipeline.schema import adopt_schema
    from pipelines.pipeline import label_names

    contract = tmp_path / "schema.pbtxt"
    contract.write_text(open(SCHEMA).read())
    proposal = tmp_path / "proposed.pbtxt"
    # What SchemaGen infers: no curated comment, its own presence figures, one more class.
    proposal.write_text('feature { name: "label" type: BYTES domain: "label" presence { min_count: 1 } }\n'
                        'string_domain { name: "label" value: "NUM" value: "YESNO" value: "ABBR" value: "DESC" '
                        'value: "ENTY" value: "HUM" value: "LOC" }\n')
    diff, backup = adopt_schema(str(contract), str(proposal))
    assert '+  value: "YESNO"' in diff and diff.count("\n+ ") == 1
    assert open(backup).read() == open(SCHEMA).read()
    assert label_names(str(contract)) == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM", "YESNO"]
    adopted = contract.read_text()
    assert adopted.startswith("# The data contract") and "min_fraction: 1.0" in adopted  # curated parts kept
    assert adopt_schema(str(contract), str(proposal)) == ("", None)  # adopting again changes nothing


def test_adopt_without_a_proposal_says_what_to_run(tmp_path):
    contract = tmp_path / "schema.pbtxt"
    contract.write_text(open(SCHEMA).read())
    result = run_cli("schema", "adopt", "--work-dir", str(tmp_path), "--set", f"paths.schema_file={contract}")
    assert result.returncode == 2
    assert "no proposal at" in result.stderr and "transferline schema propose" in result.stderr


def test_commands_never_write_into_the_repository(tmp_path):
    """The default project's data and schema are the repository's: adopt and add-span refuse, in one line."""
    before = open(SCHEMA).read()
    (tmp_path / "proposed.pbtxt").write_text(before)
    result = run_cli("schema", "adopt", "--proposal", str(tmp_path / "proposed.pbtxt"))
    assert result.returncode == 2 and "part of the transferline repository" in result.stderr
    assert "transferline init" in result.stderr and "Traceback" not in result.stderr
    rows = tmp_path / "rows.csv"
    rows.write_text("text,label\nWhat is a question ?,DESC\n")
    result = run_cli("add-span", str(rows))
    assert result.returncode == 2 and "data/trec is part of the transferline repository" in result.stderr
    assert open(SCHEMA).read() == before and not os.path.exists(os.path.join(REPO, "data", "trec", "span-2"))
