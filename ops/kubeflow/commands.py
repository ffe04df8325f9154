"""`transferline compile | kserve | submit | schedule | bake`: the pipeline on Kubeflow Pipelines (README, "Running on
Kubeflow"). Compiling is pipelines/kubeflow_runner.py; talking to KFP is ops/kubeflow/submit.py; the KServe manifest
is ops/kubeflow/kserve.py."""
from __future__ import annotations

import argparse

from components.errors import UserError
from ops.args import add_config_args, config_from, say


def register(sub) -> None:
    p = sub.add_parser("compile", help="compile for Kubeflow Pipelines (KubeflowV2DagRunner) to <work_dir>/kubeflow/pipeline.yaml")
    _add_kubeflow_args(p, client=False)
    p.add_argument("--output", metavar="FILE", help="where to write the IR (.yaml; kubeflow.package_path)")
    p.set_defaults(func=compile_command)

    p = sub.add_parser("kserve", help="write the KServe InferenceService (TF Serving 2.16.1) over "
                                      "kubeflow.serving_dir to <work_dir>/kubeflow/inferenceservice.yaml")
    add_config_args(p, work_dir=None)
    p.add_argument("--canary-percent", type=int, metavar="N",
                   help="canaryTrafficPercent: share of requests for the newest revision, 0..100; 0 = no canary "
                        "(kubeflow.canary_traffic_percent)")
    p.add_argument("--output", metavar="FILE", help="where to write it (.yaml; kubeflow.kserve_path)")
    p.set_defaults(func=kserve_command)

    p = sub.add_parser("submit", help="compile, upload and start one run on Kubeflow Pipelines")
    _add_kubeflow_args(p, client=True)
    p.add_argument("--run-name", help="display name of the run (default: pipeline name and UTC time)")
    p.set_defaults(func=submit_command)

    p = sub.add_parser("schedule", help="compile, upload and (re)create the recurring retraining run on KFP")
    _add_kubeflow_args(p, client=True)
    p.add_argument("--cron", help="when, in UTC: 5-field cron ('0 3 * * *') or KFP's 6-field (kubeflow.cron)")
    p.set_defaults(func=schedule_command)

    p = sub.add_parser("bake", help="put the embedded encoder and the staged schema under ROOT "
                                    "(the Dockerfile runs this; see kubeflow/README.md)")
    add_config_args(p, work_dir=None)
    p.add_argument("--root", help="image root (default /opt/transferline, what the compiled pipeline expects)")
    p.set_defaults(func=bake_command)


def _add_kubeflow_args(p: argparse.ArgumentParser, client: bool) -> None:
    add_config_args(p, work_dir=None)
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


def _kubeflow_config(args):
    extra = [f"kubeflow.{knob}={getattr(args, flag)}"
             for flag, knob in (("image", "image"), ("pipeline_root", "pipeline_root"), ("kf_encoder", "encoder_handle"),
                                ("namespace", "namespace"), ("experiment", "experiment"))
             if getattr(args, flag, None)]
    return config_from(args, *extra)


def compile_command(args) -> int:
    from pipelines.kubeflow_runner import main_compile

    return main_compile(_kubeflow_config(args), args.output)


def kserve_command(args) -> int:
    from ops.kubeflow import kserve

    config = config_from(args)
    path = kserve.write_manifest(config, args.output, args.canary_percent)
    percent = config.kubeflow.canary_traffic_percent if args.canary_percent is None else args.canary_percent
    say(f"KServe InferenceService {config.serve.model_name}: TF Serving {kserve.TF_SERVING_VERSION} over "
        f"{config.kubeflow.serving_dir}" + (f", canary {percent}% to the newest revision" if percent else ""))
    say(f"apply with: kubectl apply -f {path}")
    print(path)
    return 0


def bake_command(args) -> int:
    from pipelines.kubeflow_runner import IMAGE_ROOT, bake

    paths = bake(config_from(args), args.root or IMAGE_ROOT, log=say)
    print("\n".join(paths.values()))
    return 0


def submit_command(args) -> int:
    return _submit_or_schedule(args, None)


def schedule_command(args) -> int:
    config = _kubeflow_config(args)
    return _submit_or_schedule(args, args.cron or config.kubeflow.cron, config)


def _submit_or_schedule(args, cron: str | None, config=None) -> int:
    from ops.kubeflow import submit as kubeflow_submit

    config = config or _kubeflow_config(args)
    if cron is not None:
        kubeflow_submit.kfp_cron(cron)  # a bad cron fails before anything is compiled or sent
    package = args.package
    if not package:  # compile what is checked out now, so a stale YAML is never submitted
        from pipelines import kubeflow_runner

        package = kubeflow_runner.compile_pipeline(config)
        say(f"compiled {package}")
    token = _read_token(args.token_file) if args.token_file else None
    if cron is None:
        done = kubeflow_submit.submit(config, package, host=args.host, token=token, run_name=args.run_name)
        what = f"run {done.run_id}"
    else:
        done = kubeflow_submit.schedule(config, package, cron, host=args.host, token=token)
        what = (f"recurring run {done.recurring_run_id} ({kubeflow_submit.kfp_cron(cron)}, UTC; one at a time, "
                f"no catch-up)" + (f", replacing {done.replaced}" if done.replaced else ""))
    say(f"pipeline {config.pipeline_name}, version {done.version_name} "
        f"({'uploaded' if done.uploaded else 'already uploaded'}), experiment {config.kubeflow.experiment}")
    say(what)
    say(f"models land in {config.kubeflow.serving_dir}/<version>/")
    print(done.link)
    return 0


def _read_token(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise UserError(f"--token-file {path}: {e.strerror}") from None
