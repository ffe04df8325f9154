"""The `transferline` command line. Thin: parses, loads the config, calls the real code.

User mistakes (bad config, bad encoder handle, bad data) exit with code 2 and a
one-paragraph message, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

# tf.keras must be Keras 2 (tf_keras) before TensorFlow is first imported: TF-Hub layers and
# TF Serving-loadable SavedModels need it (see README, "Install").
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Google client libraries warn about Python 3.11's end of life in every Beam worker process.
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

# Only light modules here: TFX takes ~10 s to import, and `--help` or `submit` should not wait for it.
from components.encoder import EncoderHandleError  # noqa: E402
from pipelines.config import ConfigError, load_config, to_toml  # noqa: E402
from pipelines.kubeflow_submit import KubeflowError  # noqa: E402


def _loaded(module: str, name: str) -> tuple:
    """(module.name,) if that (heavy) module was imported, else (): it cannot have raised otherwise."""
    return (getattr(sys.modules[module], name),) if module in sys.modules else ()


def _user_errors() -> tuple:
    """Errors that are the user's to fix (exit 2)."""
    return ((ConfigError, EncoderHandleError, FileNotFoundError) + _loaded("pipelines.predict", "NoServedModel")
            + _loaded("components.spans", "NoSpans"))


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML config file (see `transferline config`)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any knob, e.g. --set encoder.handle=/path/to/savedmodel (repeatable)")
    p.add_argument("--encoder-handle", metavar="HANDLE",
                   help="'embedded' (default, offline), a SavedModel dir, or a TF-Hub URL")
    p.add_argument("--cache-dir", metavar="DIR", help="where the embedded encoder is built")


def _config(args):
    overrides = list(args.overrides)
    if getattr(args, "encoder_handle", None):
        overrides.append(f"encoder.handle={args.encoder_handle}")
    if getattr(args, "cache_dir", None):
        overrides.append(f"encoder.cache_dir={args.cache_dir}")
    if getattr(args, "data", None):
        overrides.append(f"paths.data_dir={os.path.abspath(args.data)}")
    if getattr(args, "work_dir", None):
        overrides.append(f"paths.work_dir={os.path.abspath(args.work_dir)}")
    config = load_config(args.config, overrides)
    config.beam.extra_args += getattr(args, "beam_args", [])
    return config


def cmd_encoder_build(args) -> int:
    from components.encoder import main_build

    config = _config(args)
    return main_build(config.encoder.cache_dir or None, force=args.force)


def cmd_encoder_check(args) -> int:
    from components.encoder import load_encoder

    config = _config(args)
    encoder = load_encoder(config.encoder.handle, config.encoder.cache_dir or None,
                           log=lambda m: print(m, file=sys.stderr))
    import tensorflow as tf

    dim = encoder(tf.constant(["contract probe"])).shape[1]
    print(f"ok: {config.encoder.handle} embeds strings into {dim}-d float32 vectors")
    return 0


def cmd_config(args) -> int:
    print(to_toml(_config(args)), end="")
    return 0


def cmd_run(args) -> int:
    from components.data_gate import DataRejected
    from pipelines import local_runner, summary

    config = _config(args)
    print(f"[transferline] pipeline '{config.pipeline_name}': data {config.paths.data_dir}, "
          f"work dir {config.paths.work_dir}, encoder {config.encoder.handle}", file=sys.stderr)
    try:
        result, durations = local_runner.run(config, verbose=args.verbose)
    except DataRejected as rejected:
        return _report_rejection(config, rejected)
    print(summary.format_summary(result, durations))
    path = summary.write_summary(result, os.path.join(config.paths.work_dir, "reports", result.run_id),
                                 durations)
    try:
        from pipelines import report

        print(f"  report: {report.write_report(config, result.run_id)[0]}")
    except Exception as e:  # noqa: BLE001  (the run itself succeeded; say why the page is missing)
        print(f"[transferline] warning: the HTML report was not written ({e}); try `transferline report`",
              file=sys.stderr)
    print(f"  summary: {path}")
    if args.command == "retrain" and set(result.executions.values()) == {"CACHED"}:
        print("[transferline] no new data since the last run: everything cached, nothing retrained or pushed",
              file=sys.stderr)
    return 0


def cmd_rollback(args) -> int:
    from pipelines import local_runner
    from pipelines.rollback import rollback

    config = _config(args)
    with local_runner.exclusive(config.paths.work_dir):
        done = rollback(config, args.reason or "", args.to)
    print(f"[transferline] rolled back: serving version {done.to_version} (was {done.from_version}); moved "
          f"{', '.join(map(str, done.moved))} to {os.path.join(config.serving_dir, '.rolled-back')}/\n"
          f"[transferline] recorded: MLMD execution {done.mlmd_execution_id} ({done.user}@{done.host}, "
          f"{done.time}: {done.reason})", file=sys.stderr)
    print(os.path.join(config.serving_dir, str(done.to_version)))
    return 0


def _report_rejection(config, rejected) -> int:
    """Prints why the data was rejected and writes TFDV's HTML (statistics + anomalies); exit code 3."""
    from components.data_gate import format_problems
    from pipelines import reports

    print("transferline: the data was rejected; nothing was trained or pushed, the served model is unchanged.",
          file=sys.stderr)
    print(format_problems(rejected.problems), file=sys.stderr)
    stopped, html = reports.write_rejection_report(config, rejected)
    if stopped:
        print(f"  stopped at: {stopped}", file=sys.stderr)
    if html:
        print(f"  data report (TFDV statistics and anomalies): {html}", file=sys.stderr)
    return 3


def cmd_predict(args) -> int:
    import json

    from pipelines.predict import newest_served_model, predict

    config = _config(args)
    texts = list(args.texts)
    if args.file:
        with (sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")) as f:
            texts += [line.rstrip("\n") for line in f if line.strip()]
    if not texts:
        raise ConfigError("nothing to classify: give texts as arguments, or --file FILE (- for stdin)")
    model_dir = newest_served_model(config.serving_dir)
    print(f"[transferline] model {model_dir}", file=sys.stderr)
    for row in predict(model_dir, texts):
        print(json.dumps(row) if args.json else f"{row['label']}\t{row['score']:.3f}\t{row['text']}")
    return 0


def cmd_report(args) -> int:
    import logging

    from pipelines import report

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # TFMA's readers warn about TF1 APIs they use
    logging.getLogger("absl").setLevel(logging.ERROR)
    config = _config(args)
    path, text = report.write_report(config, args.run)
    print(text, file=sys.stderr)
    print(path)
    return 0


def cmd_serve(args) -> int:
    from pipelines import serve

    for flag in ("host", "port", "model_name"):
        if getattr(args, flag) is not None:
            args.overrides.append(f"serve.{flag}={getattr(args, flag)}")
    serve.serve_forever(_config(args), log=lambda m: print(f"[transferline] {m}", file=sys.stderr, flush=True))
    return 0


def cmd_study_labels(args) -> int:
    from pipelines import study

    if args.sizes:
        args.overrides.append(f"study.sizes={args.sizes.replace('all', '0')}")
    if args.seeds:
        args.overrides.append(f"study.seeds={args.seeds}")
    if args.out:
        args.overrides.append(f"study.out_dir={os.path.abspath(args.out)}")
    result = study.run_study(_config(args), quick=args.quick,
                             log=lambda m: print(f"[transferline] {m}", file=sys.stderr, flush=True))
    print(study.format_table(result))
    print(f"  table: {result['json_path']}\n  learning curve: {result['png_path']}")
    return 0


def cmd_schema_propose(args) -> int:
    from pipelines.schema_tool import propose_schema

    config = _config(args)
    out = os.path.abspath(args.out or os.path.join(config.paths.work_dir, "schema", "proposed.pbtxt"))
    print(f"[transferline] inferring a schema from {config.paths.data_dir} with SchemaGen ...", file=sys.stderr)
    diff = propose_schema(config, out)
    print(diff if diff else "the inferred schema matches the checked-in one")
    print(f"[transferline] proposed schema: {out}\n[transferline] review the diff; to adopt, edit "
          f"{config.paths.schema_file} by hand (keep its curated constraints)", file=sys.stderr)
    return 0


def _kubeflow_overrides(args) -> None:
    for flag, knob in (("image", "image"), ("pipeline_root", "pipeline_root"), ("kf_encoder", "encoder_handle"),
                       ("namespace", "namespace"), ("experiment", "experiment")):
        value = getattr(args, flag, None)
        if value:
            args.overrides.append(f"kubeflow.{knob}={value}")


def cmd_compile(args) -> int:
    from pipelines.kubeflow_runner import main_compile

    _kubeflow_overrides(args)
    return main_compile(_config(args), args.output)


def cmd_bake(args) -> int:
    from pipelines.kubeflow_runner import IMAGE_ROOT, bake

    paths = bake(_config(args), args.root or IMAGE_ROOT, log=lambda m: print(f"[transferline] {m}", file=sys.stderr))
    print("\n".join(paths.values()))
    return 0


def _submit_or_schedule(args, cron: str | None) -> int:
    from pipelines import kubeflow_submit

    _kubeflow_overrides(args)
    config = _config(args)
    if cron is not None:
        kubeflow_submit.kfp_cron(cron)  # a bad cron fails before anything is compiled or sent
    package = args.package
    if not package:  # compile what is checked out now, so a stale YAML is never submitted
        from pipelines import kubeflow_runner

        package = kubeflow_runner.compile_pipeline(config)
        print(f"[transferline] compiled {package}", file=sys.stderr)
    token = None
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as f:
            token = f.read().strip()
    if cron is None:
        done = kubeflow_submit.submit(config, package, host=args.host, token=token, run_name=args.run_name)
        what = f"run {done.run_id}"
    else:
        done = kubeflow_submit.schedule(config, package, cron, host=args.host, token=token)
        what = (f"recurring run {done.recurring_run_id} ({kubeflow_submit.kfp_cron(cron)}, UTC; one at a time, "
                f"no catch-up)" + (f", replacing {done.replaced}" if done.replaced else ""))
    print(f"[transferline] pipeline {config.pipeline_name}, version {done.version_name} "
          f"({'uploaded' if done.uploaded else 'already uploaded'}), experiment {config.kubeflow.experiment}\n"
          f"[transferline] {what}\n[transferline] models land in {config.kubeflow.serving_dir}/<version>/",
          file=sys.stderr)
    print(done.link)
    return 0


def cmd_submit(args) -> int:
    return _submit_or_schedule(args, None)


def cmd_schedule(args) -> int:
    return _submit_or_schedule(args, args.cron or _config(args).kubeflow.cron)


def _add_kubeflow_args(p: argparse.ArgumentParser, client: bool) -> None:
    _add_config_args(p)
    p.add_argument("--image", help="container image every task runs in (kubeflow.image)")
    p.add_argument("--pipeline-root", help="gs:// (or other TFX filesystem) root for outputs (kubeflow.pipeline_root)")
    p.add_argument("--kf-encoder", metavar="HANDLE",
                   help="encoder the pods load: a TF-Hub URL (default) or 'embedded', baked into the image")
    if client:
        p.add_argument("--package", metavar="FILE", help="submit this compiled YAML as is (default: compile now)")
        p.add_argument("--host", help="KFP API endpoint URL (kubeflow.host, $KF_PIPELINES_ENDPOINT)")
        p.add_argument("--namespace", help="KFP user namespace, multi-user clusters (kubeflow.namespace)")
        p.add_argument("--experiment", help="experiment to file runs under (kubeflow.experiment)")
        p.add_argument("--token-file", metavar="FILE",
                       help="bearer token file ($KFP_TOKEN also works; in a pod the KFP service-account "
                            "token is used by itself)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transferline",
        description="Text classification by transfer learning, as a TFX pipeline: "
                    "Universal Sentence Encoder embeddings + a small Keras head.",
        epilog="exit codes: 0 done; 2 a usage, config or encoder-handle error; 3 the data was rejected "
               "(nothing trained or pushed); 4 Kubeflow Pipelines unreachable or refused the request; 5 another "
               "run or rollback holds the work dir (nothing done).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for name, text in (("run", "run the pipeline locally (LocalDagRunner)"),
                       ("retrain", "run over the current spans (for cron): cheap and says so when no new data "
                                   "arrived; one at a time per work dir")):
        p = sub.add_parser(name, help=text)
        _add_config_args(p)
        p.add_argument("--data", metavar="DIR", help="training data root (span-N/ folders of CSV)")
        p.add_argument("--work-dir", metavar="DIR", help="pipeline root, MLMD and reports")
        p.add_argument("--beam-arg", dest="beam_args", action="append", default=[], metavar="ARG",
                       help="extra Beam pipeline arg, passed through (repeatable), e.g. "
                            "--beam-arg=--runner=FlinkRunner")
        p.add_argument("--verbose", action="store_true", help="show TFX and Beam logs")
        p.set_defaults(func=cmd_run)

    p = sub.add_parser("rollback", help="serve the previous pushed version again (recorded in MLMD)")
    _add_config_args(p)
    p.add_argument("--work-dir", metavar="DIR", help="work dir of the runs (its serving/ holds the models)")
    p.add_argument("--reason", required=True, help="why; recorded with who and when")
    p.add_argument("--to", type=int, metavar="VERSION", help="an earlier version (default: the previous one)")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("predict", help="classify texts with the newest pushed model")
    _add_config_args(p)
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    p.add_argument("--file", metavar="FILE", help="one text per line; - for stdin")
    p.add_argument("--work-dir", metavar="DIR", help="work dir of the run (its serving/ holds the models)")
    p.add_argument("--json", action="store_true", help="one JSON object per text, with all probabilities")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("config", help="print the effective config as TOML (a starting config file)")
    _add_config_args(p)
    p.set_defaults(func=cmd_config)

    schema = sub.add_parser("schema", help="the data contract: propose a schema from new data")
    schema_sub = schema.add_subparsers(dest="schema_command", metavar="ACTION", required=True)
    p = schema_sub.add_parser("propose", help="infer a schema with SchemaGen and diff it against the checked-in one")
    _add_config_args(p)
    p.add_argument("--data", metavar="DIR", help="data root to infer from (default: paths.data_dir)")
    p.add_argument("--work-dir", metavar="DIR", help="where the proposal is written (schema/proposed.pbtxt)")
    p.add_argument("--out", metavar="FILE", help="write the proposed schema here instead")
    p.set_defaults(func=cmd_schema_propose)

    enc = sub.add_parser("encoder", help="the sentence encoder: build the embedded one, check a handle")
    enc_sub = enc.add_subparsers(dest="encoder_command", metavar="ACTION", required=True)
    p = enc_sub.add_parser("build", help="build the embedded USE SavedModel (idempotent); prints its path")
    _add_config_args(p)
    p.add_argument("--force", action="store_true", help="rebuild even if a build exists")
    p.set_defaults(func=cmd_encoder_build)
    p = enc_sub.add_parser("check", help="load an encoder handle and check it embeds strings")
    _add_config_args(p)
    p.set_defaults(func=cmd_encoder_check)

    p = sub.add_parser("report", help="write one self-contained HTML page about a run (default: the latest)")
    _add_config_args(p)
    p.add_argument("run", nargs="?", metavar="RUN",
                   help="run id (as in work/reports/), or an index: -1 the latest (default), 0 the first")
    p.add_argument("--work-dir", metavar="DIR", help="work dir of the runs (MLMD, reports)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("serve", help="serve the newest pushed model over TF Serving's REST API, on loopback "
                                     "(a development stand-in for TF Serving)")
    _add_config_args(p)
    p.add_argument("--work-dir", metavar="DIR", help="work dir of the runs (its serving/ holds the models)")
    p.add_argument("--host", help="address to listen on (serve.host, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (serve.port, default 8501 as TF Serving's REST API)")
    p.add_argument("--model-name", help="the <name> in /v1/models/<name> (serve.model_name)")
    p.set_defaults(func=cmd_serve)

    study_parser = sub.add_parser("study", help="measurements: the label-efficiency study")
    study_sub = study_parser.add_subparsers(dest="study_command", metavar="STUDY", required=True)
    p = study_sub.add_parser("labels", help="frozen USE + our head vs TF-IDF + logistic regression at growing "
                                            "numbers of labels, on the held-out test set")
    _add_config_args(p)
    p.add_argument("--sizes", help="comma-separated training-set sizes, 'all' for all (study.sizes; "
                                   "default 100,500,all)")
    p.add_argument("--seeds", type=int, help="subsets per size (study.seeds; default 5)")
    p.add_argument("--out", metavar="DIR", help="where the JSON table and PNG go (study.out_dir)")
    p.add_argument("--quick", action="store_true", help="a tiny budget for smoke tests: at most 3 epochs per "
                                                        "head; the figures mean nothing")
    p.add_argument("--work-dir", metavar="DIR", help="work dir (default place of the output)")
    p.set_defaults(func=cmd_study_labels)

    p = sub.add_parser("compile", help="compile for Kubeflow Pipelines (KubeflowV2DagRunner) to kubeflow/pipeline.yaml")
    _add_kubeflow_args(p, client=False)
    p.add_argument("--output", metavar="FILE", help="where to write the IR (.yaml; kubeflow.package_path)")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("submit", help="compile, upload and start one run on Kubeflow Pipelines")
    _add_kubeflow_args(p, client=True)
    p.add_argument("--run-name", help="display name of the run (default: pipeline name and UTC time)")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("schedule", help="compile, upload and (re)create the recurring retraining run on KFP")
    _add_kubeflow_args(p, client=True)
    p.add_argument("--cron", help="when, in UTC: 5-field cron ('0 3 * * *') or KFP's 6-field (kubeflow.cron)")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("bake", help="put the embedded encoder and the staged schema under ROOT "
                                    "(the Dockerfile runs this; see kubeflow/README.md)")
    _add_config_args(p)
    p.add_argument("--root", help="image root (default /opt/transferline, what the compiled pipeline expects)")
    p.set_defaults(func=cmd_bake)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _user_errors() as e:
        print(f"transferline: error: {e}", file=sys.stderr)
        return 2
    except KubeflowError as e:
        print(f"transferline: error: {e}", file=sys.stderr)
        return 4
    except _loaded("pipelines.local_runner", "Busy") as e:
        print(f"transferline: {e}", file=sys.stderr)
        return 5
    except KeyboardInterrupt:
        print("transferline: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
