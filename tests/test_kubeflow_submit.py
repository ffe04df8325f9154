"""`transferline submit|schedule` through the real kfp.Client against a fake KFP REST server on 127.0.0.1."""
import os
import socket

import pytest
import yaml

from conftest import run_cli
from fake_kfp import FakeKfp

pytestmark = pytest.mark.slow  # loads TF models, compiles or runs pipelines

CLIENT_TIMEOUT = 180  # each CLI call is bounded; the fake stops itself after its lifetime anyway


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """A compiled pipeline with a pipeline root of its own, shared by the tests (compiling takes ~15 s)."""
    from pipelines.config_loading import load_config
    from pipelines.kubeflow_runner import compile_pipeline

    path = tmp_path_factory.mktemp("submit") / "pipeline.yaml"
    return compile_pipeline(load_config(None, ["kubeflow.pipeline_root=gs://team-bucket/tl/root"]), str(path))


def cli(*args, env=None):
    if env:
        os.environ.update(env)
    try:
        return run_cli(*args, timeout=CLIENT_TIMEOUT)
    finally:
        for k in env or {}:
            os.environ.pop(k, None)


def test_schedule_creates_one_recurring_run_with_cron_concurrency_catchup_spec_and_root(package):
    with FakeKfp(lifetime=CLIENT_TIMEOUT) as fake:
        result = cli("schedule", "--package", package, "--host", fake.host, "--cron", "0 3 * * *",
                     "--set", "kubeflow.pipeline_root=gs://team-bucket/tl/root")
        assert result.returncode == 0, result.stderr[-3000:]
        (job,) = fake.recurring_runs.values()
        assert job["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}  # 5 fields -> KFP's 6
        assert int(job["max_concurrency"]) == 1 and job["no_catchup"] is True and job["mode"] == "ENABLE"
        assert job["display_name"] == "transferline-retrain"
        assert job["runtime_config"]["pipeline_root"] == "gs://team-bucket/tl/root"
        version = fake.versions[job["pipeline_version_reference"]["pipeline_version_id"]]
        with open(package, "rb") as f:
            assert version["spec_bytes"] == f.read()  # exactly the compiled IR
        assert yaml.safe_load(version["spec_bytes"])["defaultPipelineRoot"] == "gs://team-bucket/tl/root"
        (experiment,) = fake.experiments.values()
        assert job["experiment_id"] == experiment["experiment_id"] and experiment["display_name"] == "transferline"
        assert result.stdout.strip().endswith(f"/#/recurringrun/details/{job['recurring_run_id']}")

        # Scheduling again (a new cron) replaces it: never two retraining schedules; same IR, same version.
        result = cli("schedule", "--package", package, "--host", fake.host, "--cron", "0 30 4 * * 1-5")
        assert result.returncode == 0, result.stderr[-3000:]
        (job2,) = fake.recurring_runs.values()
        assert job2["trigger"]["cron_schedule"]["cron"] == "0 30 4 * * 1-5"
        assert job2["pipeline_version_reference"] == job["pipeline_version_reference"]
        assert len(fake.experiments) == 1 and len(fake.pipelines) == 1
        assert "already uploaded" in result.stderr and f"replacing {job['recurring_run_id']}" in result.stderr


def test_submit_compiles_uploads_and_starts_one_run_with_a_bearer_token(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    out = tmp_path / "compiled.yaml"
    with FakeKfp(lifetime=CLIENT_TIMEOUT, token="s3cret") as fake:
        result = cli("submit", "--host", fake.host, "--token-file", str(token_file), "--run-name", "first",
                     "--set", f"kubeflow.package_path={out}", "--image", "example/transferline:1")
        assert result.returncode == 0, result.stderr[-3000:]
        assert out.exists() and "example/transferline:1" in out.read_text()  # compiled now, not a stale file
        (run,) = fake.runs.values()
        assert run["display_name"] == "first"
        assert run["runtime_config"]["pipeline_root"] == "gs://your-bucket/transferline/pipeline_root"
        version = fake.versions[run["pipeline_version_reference"]["pipeline_version_id"]]
        assert version["spec_bytes"] == out.read_bytes()
        assert all(r["headers"].get("authorization") == "Bearer s3cret" for r in fake.requests)


def test_in_cluster_service_account_token_is_used_by_itself(package, tmp_path):
    sa_token = tmp_path / "sa-token"
    sa_token.write_text("pod-token")
    with FakeKfp(lifetime=CLIENT_TIMEOUT, token="pod-token") as fake:
        result = cli("submit", "--package", package, "--host", fake.host,
                     env={"KF_PIPELINES_SA_TOKEN_PATH": str(sa_token)})
        assert result.returncode == 0, result.stderr[-3000:]
        assert len(fake.runs) == 1


def test_a_refused_token_is_a_clear_error(package):
    with FakeKfp(lifetime=CLIENT_TIMEOUT, token="right") as fake:
        result = cli("submit", "--package", package, "--host", fake.host)
    assert result.returncode == 4, result.stderr[-3000:]
    assert "refused the request: HTTP 401" in result.stderr and "token" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("cron, message", [  # every message: tests/test_kfp_cron.py
    ("0 25 * * *", "hour field '25' is out of range (allowed: 0-23"),
])
def test_a_bad_cron_is_explained_and_nothing_is_sent(package, cron, message):
    with FakeKfp(lifetime=CLIENT_TIMEOUT) as fake:
        result = cli("schedule", "--package", package, "--host", fake.host, "--cron", cron)
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
        assert fake.requests == []


def test_an_unreachable_host_is_a_clear_error(package):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("submit", "--package", package, "--host", f"http://127.0.0.1:{port}")
    assert result.returncode == 4, result.stderr[-3000:]
    assert f"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_host_is_a_clear_error(package):
    assert "KF_PIPELINES_ENDPOINT" not in os.environ
    result = run_cli("submit", "--package", package, timeout=CLIENT_TIMEOUT)
    assert result.returncode == 2 and "no Kubeflow Pipelines endpoint" in result.stderr
