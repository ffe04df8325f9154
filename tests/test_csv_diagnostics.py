"""The data contract's file-level checks, without a pipeline: each broken CSV named with its problem.

tests/test_bad_inputs.py runs the same corpus through whole pipeline runs; this is its fast tier.
"""
import pytest

import bad_inputs
from components.data_gate import diagnose_csv_files

KINDS = bad_inputs.corpus()
FILE_LEVEL = ("missing_label_column", "extra_column", "non_utf8", "wrong_delimiter", "header_only", "empty_file",
              "huge_text", "duplicate_label_column", "nul_byte", "thousand_columns")


@pytest.mark.parametrize("kind", FILE_LEVEL)
def test_each_file_level_problem_is_named_with_its_file(kind, tmp_path):
    files, phrase = KINDS[kind]
    bad_inputs.write(str(tmp_path), files)
    problems = diagnose_csv_files(str(tmp_path), "span-*/*.csv", 1000)
    assert len(problems) == 1, problems
    (problem,) = problems
    assert phrase in problem["problem"] and problem["where"].startswith(str(tmp_path / "span-"))


@pytest.mark.parametrize("kind", sorted(set(KINDS) - set(FILE_LEVEL)))
def test_row_level_problems_pass_the_file_checks(kind, tmp_path):
    """These need statistics or the gate (the slow tier shows they halt the run there)."""
    files, _ = KINDS[kind]
    bad_inputs.write(str(tmp_path), files)
    assert diagnose_csv_files(str(tmp_path), "span-*/*.csv", 1000) == []


def test_no_files_at_all_says_what_was_expected(tmp_path):
    (problem,) = diagnose_csv_files(str(tmp_path), "span-*/*.csv")
    assert "no files match 'span-*/*.csv'" in problem["problem"]
