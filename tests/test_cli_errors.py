"""The CLI's contract, without a pipeline: typed user errors and their exit codes, bugs keep their
traceback, every command registered, and `transferline --help` never imports TensorFlow."""
import subprocess
import sys

import pytest

from components import errors
from ops import cli
from ops.loop import verdicts
from ops.serving.serve import PortInUse

COMMANDS = {"init", "run", "retrain", "rollback", "predict", "config", "encoder", "schema", "report", "serve",
            "monitor", "label-next", "add-span", "study", "compile", "kserve", "submit", "schedule", "bake",
            "kubeflow-check", "runs", "versions", "accept-span", "remove-span", "evaluate", "promote", "canary"}


@pytest.mark.parametrize("error, code", [
    (errors.UserError, 2), (errors.ConfigError, 2), (errors.EncoderHandleError, 2), (errors.NoSpans, 2),
    (errors.NotFound, 2), (PortInUse, 2), (errors.DataRejected([]), 3), (errors.KubeflowError, 4),
    (errors.Busy, 5), (verdicts.Drift, 6), (verdicts.NotEnoughTraffic, 7), (verdicts.CanaryFails, 6)])
def test_each_user_error_exits_with_its_code_and_one_line(error, code, monkeypatch, capsys):
    def command(args):
        raise error("what went wrong, and what to do") if isinstance(error, type) else error

    monkeypatch.setattr(cli, "COMMANDS", ())
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].add_parser("boom").set_defaults(func=command)
    assert cli.main(["boom"]) == code
    err = capsys.readouterr().err
    assert err.startswith("transferline: ") and "Traceback" not in err and len(err.strip().splitlines()) <= 3


def test_a_bug_keeps_its_traceback(monkeypatch):
    """FileNotFoundError and friends are not user errors: a lost artifact must not pass for one."""
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].add_parser("bug").set_defaults(
        func=lambda args: open("/nonexistent/artifact"))
    with pytest.raises(FileNotFoundError):
        cli.main(["bug"])


def test_every_command_is_registered():
    sub = cli.build_parser()._subparsers._group_actions[0]
    assert set(sub.choices) == COMMANDS


def test_help_is_light():
    """Every command module is imported for --help: none may pull in TensorFlow or TFX (~10 s)."""
    code = ("import sys, ops.cli; ops.cli.build_parser(); "
            "print(sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_version_names_the_stack_without_tensorflow():
    code = ("import sys, ops.cli\ntry:\n    ops.cli.main(['--version'])\nexcept SystemExit as e:\n"
            "    print(e.code, sorted(m for m in ('tensorflow', 'tfx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    first, last = out.stdout.strip().splitlines()
    assert first.startswith("transferline 0.") and "tfx 1.16.0" in first and "tensorflow 2." in first
    assert last == "0 []"


def test_data_rejected_survives_being_wrapped_in_a_message():
    problems = [{"where": "span-1/q.csv", "problem": "is empty", "examples": ["a"]}]
    wrapped = RuntimeError(f"Beam failed: {errors.DataRejected(problems)}")
    rebuilt = errors.DataRejected.from_message(str(wrapped))
    assert rebuilt.problems == problems and rebuilt.exit_code == 3
    assert errors.DataRejected.from_message("something else") is None
    assert errors.format_problems(problems) == "  - span-1/q.csv: is empty\n      e.g. 'a'"
