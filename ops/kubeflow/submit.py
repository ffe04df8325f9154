"""Submits the compiled pipeline to Kubeflow Pipelines, once or on a schedule, with kfp.Client.

Both commands file the compiled IR as a version of one KFP pipeline (named after the YAML's content,
so re-submitting unchanged code reuses the version), under one experiment, then start a run or
create/replace the recurring run that is transferline's scheduled retraining.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass

from components.errors import ConfigError, KubeflowError, NotFound
from pipelines.config import Config

# Where a pod's projected KFP service-account token lives (kfp's own default and env override).
SA_TOKEN_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
SA_TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"
HOST_ENV = "KF_PIPELINES_ENDPOINT"  # kfp.Client's own
TOKEN_ENV = "KFP_TOKEN"

_CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()
# (name, lowest, highest, names) for KFP's six fields, seconds first (robfig/cron).
_CRON_FIELDS = (("second", 0, 59, ()), ("minute", 0, 59, ()), ("hour", 0, 23, ()),
                ("day of month", 1, 31, ()), ("month", 1, 12, _MONTHS), ("day of week", 0, 6, _DAYS))


def kfp_cron(expression: str) -> str:
    """KFP's 6-field cron (seconds first) from a standard 5-field one, or a 6-field one checked as is.

    `0 3 * * *` (03:00 daily) becomes `0 0 3 * * *`. Descriptors (@daily, @every 6h) pass through.
    Raises ConfigError explaining the format otherwise.
    """
    text = " ".join(expression.split())
    if text in _CRON_DESCRIPTORS or re.fullmatch(r"@every (\d+(ns|us|ms|s|m|h))+", text):
        return text
    fields = text.split(" ")
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ConfigError(
            f"cron '{expression}' has {len(fields)} field(s); give the standard 5 (minute hour day-of-month "
            f"month day-of-week, e.g. '0 3 * * *' for 03:00 UTC daily) or KFP's 6 (seconds first, "
            f"'0 0 3 * * *'), or a descriptor such as @daily")
    for value, (name, low, high, names) in zip(fields, _CRON_FIELDS):
        problem = _cron_field_problem(value, low, high, names)
        if problem:
            raise ConfigError(f"cron '{expression}': {name} field '{value}' {problem} "
                              f"(allowed: {low}-{high}{', ' + names[0] + '-' + names[-1] if names else ''}, "
                              f"*, lists a,b, ranges a-b, steps */n)")
    return " ".join(fields)


def _cron_field_problem(value: str, low: int, high: int, names: tuple) -> str:
    for part in value.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return "has a bad step"
        if base in ("*", "?"):
            continue
        for bound in base.split("-", 1):
            if bound.upper() in names:
                number = names.index(bound.upper()) + low  # JAN = 1, SUN = 0
            else:
                number = int(bound) if bound.isdigit() else None
            if number is None:
                return "is not a number, name, range or step"
            if not low <= number <= high:
                return "is out of range"
    return ""


@dataclass
class Submitted:
    experiment_id: str
    pipeline_id: str
    version_id: str
    version_name: str
    uploaded: bool  # False: this exact IR was already a version
    run_id: str = ""
    recurring_run_id: str = ""
    replaced: str = ""  # id of the recurring run this one replaced
    link: str = ""


def _host(config: Config, host: str | None) -> str:
    host = host or config.kubeflow.host or os.environ.get(HOST_ENV, "")
    if not host:
        raise ConfigError(f"no Kubeflow Pipelines endpoint: pass --host URL, set kubeflow.host, or export "
                          f"{HOST_ENV} (e.g. http://localhost:8080 after `kubectl port-forward -n kubeflow "
                          f"svc/ml-pipeline-ui 8080:80`)")
    if not host.startswith(("http://", "https://")):
        raise ConfigError(f"Kubeflow Pipelines endpoint '{host}' must start with http:// or https://")
    return host.rstrip("/")


def connect(config: Config, host: str, token: str | None = None):
    """kfp.Client for `host`: a bearer token (--token-file or $KFP_TOKEN) if given, else the pod's KFP
    service-account token if one is mounted, else no auth (port-forward)."""
    import kfp

    token = token or os.environ.get(TOKEN_ENV) or None
    credentials = None
    sa_path = os.environ.get(SA_TOKEN_ENV, SA_TOKEN_PATH)
    if not token and os.path.isfile(sa_path):
        credentials = kfp.client.ServiceAccountTokenVolumeCredentials(sa_path)
    namespace = config.kubeflow.namespace or os.environ.get("KFP_NAMESPACE") or "kubeflow"

    class Client(kfp.Client):
        def get_kfp_healthz(self, sleep_duration=5):
            # kfp asks once at start-up (multi-user or not) but retries a refusal 5 times, 5 s apart,
            # logging a traceback each time; one answer is enough to report a bad token or host.
            return self._healthz_api.healthz_service_get_healthz()

    with _reaching(host):
        return Client(host=host, namespace=namespace, existing_token=token, credentials=credentials)


class _reaching:
    """Turns connection failures and API refusals into a KubeflowError naming the endpoint."""

    def __init__(self, host: str):
        self.host = host

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if error is None:
            return False
        import kfp_server_api
        import urllib3

        if isinstance(error, kfp_server_api.ApiException):
            detail = (error.body or error.reason or "").strip()
            try:
                detail = json.loads(detail).get("message", detail)
            except (ValueError, AttributeError):
                pass
            hint = " (check the token: --token-file or $KFP_TOKEN)" if error.status in (401, 403) else ""
            raise KubeflowError(f"Kubeflow Pipelines at {self.host} refused the request: HTTP {error.status} "
                                f"{detail[:500]}{hint}") from None
        if isinstance(error, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)):
            reason = getattr(error, "reason", None) or error
            raise KubeflowError(f"cannot reach Kubeflow Pipelines at {self.host}: {reason}. Check --host / "
                                f"kubeflow.host / ${HOST_ENV} and that the API is reachable "
                                f"(kubectl port-forward)") from None
        return False


def _equals(key: str, value: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": key, "stringValue": value}]})


def upload(client, package_path: str, name: str) -> tuple[str, str, str, bool]:
    """(pipeline_id, version_id, version_name, uploaded): get-or-create the pipeline, then reuse the version
    holding exactly this IR (by name, the content hash, or the newest version's spec) or upload it."""
    import yaml

    with open(package_path, "rb") as f:
        data = f.read()
    version_name = f"{name}-{hashlib.sha256(data).hexdigest()[:12]}"
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:  # KFP creates the pipeline with a first version (named like the pipeline)
        pipeline_id = client.upload_pipeline(package_path, pipeline_name=name,
                                             description="transferline: text classification by transfer "
                                                         "learning (USE + Keras head), TFX").pipeline_id
        first = client.list_pipeline_versions(pipeline_id).pipeline_versions[0]
        return pipeline_id, first.pipeline_version_id, first.display_name, True
    found = client.list_pipeline_versions(pipeline_id, filter=_equals("display_name", version_name))
    if found.pipeline_versions:
        return pipeline_id, found.pipeline_versions[0].pipeline_version_id, version_name, False
    newest = client.list_pipeline_versions(pipeline_id, sort_by="created_at desc", page_size=1).pipeline_versions
    if newest and newest[0].pipeline_spec == yaml.safe_load(data):
        return pipeline_id, newest[0].pipeline_version_id, newest[0].display_name, False
    version = client.upload_pipeline_version(package_path, pipeline_version_name=version_name,
                                             pipeline_id=pipeline_id)
    return pipeline_id, version.pipeline_version_id, version_name, True


def submit(config: Config, package_path: str, *, host: str | None = None, token: str | None = None,
           run_name: str | None = None) -> Submitted:
    """One run of the compiled pipeline."""
    _check_package(package_path)
    host = _host(config, host)
    client = connect(config, host, token)
    with _reaching(host):
        experiment = client.create_experiment(config.kubeflow.experiment)
        pipeline_id, version_id, version_name, uploaded = upload(client, package_path, config.pipeline_name)
        run = client.run_pipeline(
            experiment.experiment_id,
            run_name or f"{config.pipeline_name} {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC",
            pipeline_id=pipeline_id, version_id=version_id, pipeline_root=config.kubeflow.pipeline_root)
    return Submitted(experiment.experiment_id, pipeline_id, version_id, version_name, uploaded, run_id=run.run_id,
                     link=f"{host}/#/runs/details/{run.run_id}")


def schedule(config: Config, package_path: str, cron: str, *, host: str | None = None,
             token: str | None = None) -> Submitted:
    """The recurring run `<pipeline>-retrain`: one at a time (max_concurrency 1), no backfill of missed
    slots (no_catchup); an existing one of that name is replaced, so scheduling twice never doubles."""
    cron6 = kfp_cron(cron)
    _check_package(package_path)
    host = _host(config, host)
    client = connect(config, host, token)
    job_name = f"{config.pipeline_name}-retrain"
    with _reaching(host):
        experiment = client.create_experiment(config.kubeflow.experiment)
        pipeline_id, version_id, version_name, uploaded = upload(client, package_path, config.pipeline_name)
        existing = client.list_recurring_runs(experiment_id=experiment.experiment_id,
                                              filter=_equals("display_name", job_name)).recurring_runs or []
        for old in existing:
            client.delete_recurring_run(old.recurring_run_id)
        job = client.create_recurring_run(
            experiment.experiment_id, job_name,
            description=f"transferline scheduled retraining ({cron6}, UTC)",
            cron_expression=cron6, max_concurrency=1, no_catchup=True,
            pipeline_id=pipeline_id, version_id=version_id, pipeline_root=config.kubeflow.pipeline_root)
    return Submitted(experiment.experiment_id, pipeline_id, version_id, version_name, uploaded,
                     recurring_run_id=job.recurring_run_id,
                     replaced=",".join(old.recurring_run_id for old in existing),
                     link=f"{host}/#/recurringrun/details/{job.recurring_run_id}")


def _check_package(package_path: str) -> None:
    if not os.path.isfile(package_path):
        raise NotFound(f"no compiled pipeline at {package_path}; run `transferline compile` first")
