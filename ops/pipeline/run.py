"""`transferline run` and `transferline retrain`: the pipeline, locally, ending with its summary."""
from __future__ import annotations

import sys

from components.errors import DataRejected, format_problems
from components.names import COMPONENTS
from ops.args import add_config_args, config_from, say


def register(sub) -> None:
    for name, text in (("run", "run the pipeline locally (LocalDagRunner)"),
                       ("retrain", "run over the current spans (for cron): cheap and says so when no new data "
                                   "arrived; one at a time per work dir")):
        p = sub.add_parser(name, help=text)
        add_config_args(p, work_dir="pipeline root, MLMD, reports and logs",
                        data="training data root (span-N/ folders of CSV)")
        p.add_argument("--beam-arg", dest="beam_args", action="append", default=[], metavar="ARG",
                       help="extra Beam pipeline arg, passed through (repeatable), e.g. "
                            "--beam-arg=--runner=FlinkRunner")
        p.add_argument("--verbose", action="store_true", help="show TFX and Beam logs (else: in the run's log file)")
        p.set_defaults(func=run)


def run(args) -> int:
    config = config_from(args)
    say(f"pipeline '{config.pipeline_name}': data {config.paths.data_dir}, work dir {config.paths.work_dir}, "
        f"encoder {config.encoder.handle}")
    from components.span_folders import check_local_data
    from pipelines.work_lock import exclusive

    check_local_data(config.paths.data_dir, config.paths.test_data_dir, config.data.file_pattern)  # before TFX
    with exclusive(config.paths.work_dir):  # before TFX's ~10 s import: a second run is refused at once
        from pipelines import run_inputs
        from pipelines.mlmd_store import adopt_move

        if moved := adopt_move(config.paths.work_dir, config.metadata_path):  # the project was moved
            say(f"the work dir moved to {config.paths.work_dir}: {moved} artifact path(s) in MLMD follow it")
        if args.command == "retrain" and config.rollout.mode == "canary":  # the canary on trial first
            from ops.loop.canary import settle
            settle(config, log=say)
        inputs = run_inputs.input_digest(config)  # before the run reads the data (pipelines/run_inputs.py)
        last = run_inputs.unchanged_since(config, run_inputs.fingerprint(config, inputs))
        if last is not None:  # without TF: TFX would find everything cached
            return _nothing_changed(config, last)
        from pipelines import local_runner
        from ops.pipeline import summary

        try:
            done = local_runner.run(config, verbose=args.verbose)
        except DataRejected as rejected:
            _explain_rejection(config, rejected)
            return rejected.exit_code
        run_inputs.record(config, run_inputs.fingerprint(config, inputs), done.record.summary)
    s = done.record.summary
    print(summary.format_summary(s, done.durations))
    path = summary.write_summary(s, config.paths.work_dir, done.durations)
    try:
        from ops.report import page as report

        print(f"  report: {report.write_report(config, done.record)[0]}")
    except Exception as e:  # noqa: BLE001  (the run itself succeeded; say why the page is missing)
        say(f"warning: the HTML report was not written ({e}); try `transferline report`")
    print(f"  summary: {path}")
    if done.log_path:
        print(f"  log: {done.log_path}")
    print("next:\n" + "\n".join("  " + step for step in summary.next_steps(s, _project_flags(args))))
    if args.command == "retrain" and set(s.executions.values()) == {"CACHED"} and len(s.executions) == len(
            COMPONENTS):
        say("no new data since the last run: everything cached, nothing retrained or pushed")
    return 0


def _nothing_changed(config, last: dict) -> int:
    """The data, config, code and served versions are those of the last run, which finished: say so."""
    import os

    say("no new data since the last run: everything cached, nothing retrained or pushed")
    served = sorted(int(n) for n in (os.listdir(config.serving_dir) if os.path.isdir(config.serving_dir) else [])
                    if n.isdigit())
    print(f"Run {last['run_id']} of '{config.pipeline_name}' stands (same data, config, code and served "
          f"versions): gate {last.get('gate_reason') or '-'}; serving "
          + (f"version {served[-1]} ({config.serving_dir})" if served else "nothing"))
    for name, file in (("report", "report.html"), ("summary", "summary.json")):  # that run's
        if os.path.exists(path := os.path.join(config.work.reports(last["run_id"]), file)):
            print(f"  {name}: {path}")
    return 0


def _project_flags(args) -> str:
    """The flags that name this project, for the `next:` commands."""
    import shlex

    return " ".join(f"{flag} {shlex.quote(value)}" for flag, value in (
        ("--config", args.config), ("--work-dir", args.work_dir)) if value)


def _explain_rejection(config, rejected: DataRejected) -> None:
    """Why the data was rejected, and TFDV's HTML page (statistics + anomalies)."""
    from ops.pipeline import rejection

    print("transferline: the data was rejected; nothing was trained or pushed, the served model is unchanged.",
          file=sys.stderr)
    print(format_problems(rejected.problems), file=sys.stderr)
    stopped, page = rejection.write_rejection_report(config, rejected)
    if stopped:
        print(f"  stopped at: {stopped}", file=sys.stderr)
    if page:
        print(f"  data report (TFDV statistics and anomalies): {page}", file=sys.stderr)
