"""Beam's portability path, locally: a Python job service and an external SDK worker pool, each its own process.

Flink and Spark run Python pipelines this way: the runner submits the pipeline (protos) to a job service,
which asks an external worker pool for SDK harness processes and sends them bundles over the Fn API (gRPC).
Here the job service is Beam's own (local_job_service_main, an FnApiRunner behind the Job API) and the
pool is Beam's worker_pool_main servicer (one SDK worker subprocess per request); both on 127.0.0.1.

    with services() as beam:        # beam.args: ["--runner=PortableRunner", "--job_endpoint=...", ...]
        ... transferline run --beam-arg=<each of beam.args> ...
        beam.workers_started()      # SDK workers the pool started: proof the work went through it

Used by tests/test_portable_runner.py and bench/suite.py. Start-up and shutdown are bounded (timeouts).
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time

# The pool's gRPC server on loopback: worker_pool_main itself binds [::] (all interfaces).
_POOL = """import logging, sys, time, grpc
from apache_beam.portability.api import beam_fn_api_pb2_grpc
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer
from apache_beam.utils import thread_pool_executor
server = grpc.server(thread_pool_executor.shared_unbounded_instance())
port = server.add_insecure_port("127.0.0.1:" + sys.argv[1])
beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(
    BeamFnExternalWorkerPoolServicer(use_process=True, data_buffer_time_limit_ms=-1), server)
server.start()
logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True)  # "Starting worker ..." per worker
print("pool on", port, flush=True)
while True:
    time.sleep(3600)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, what: str, log, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    log.seek(0)
    raise RuntimeError(f"{what} did not come up on 127.0.0.1:{port} within {timeout:.0f} s:\n{log.read()[-3000:]}")


def _stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


class Services:
    """The running pair: `args` for the pipeline, and what the pool and the job service logged."""

    def __init__(self, args: list[str], pool_log, job_log):
        self.args, self._pool_log, self._job_log = args, pool_log, job_log

    @staticmethod
    def _read(log) -> str:
        log.flush()
        with open(log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def pool_log(self) -> str:
        return self._read(self._pool_log)

    def job_log(self) -> str:
        return self._read(self._job_log)

    def workers_started(self) -> int:
        return self.pool_log().count("Starting worker")


@contextlib.contextmanager
def services(start_timeout: float = 90, job_timeout: int = 900, env: dict | None = None):
    """Starts the worker pool and the job service; yields a Services; stops both (bounded) on the way out."""
    env = {**os.environ, **(env or {})}
    # The pool starts each SDK worker as plain `python` (worker_pool_main): this interpreter's, first on PATH.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    job_port, pool_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as staging, \
            tempfile.NamedTemporaryFile("w+", suffix=".log") as job_log, \
            tempfile.NamedTemporaryFile("w+", suffix=".log") as pool_log:
        procs = []
        try:
            # The pool's SDK workers inherit its environment (PYTHONPATH: this project; TF_USE_LEGACY_KERAS).
            procs.append(subprocess.Popen([sys.executable, "-c", _POOL, str(pool_port)], env=env,
                                          stdout=pool_log, stderr=subprocess.STDOUT, text=True))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                 f"--port={job_port}", f"--staging_dir={staging}"],
                env=env, stdout=job_log, stderr=subprocess.STDOUT, text=True))
            _wait_listening(pool_port, procs[0], "the SDK worker pool", pool_log, start_timeout)
            _wait_listening(job_port, procs[1], "the job service", job_log, start_timeout)
            # --job_server_timeout bounds each Beam job: the PortableRunner client also applies it to the job's
            # state stream, so with Beam's default (60 s) any job running longer fails "Deadline Exceeded".
            yield Services(["--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}",
                            "--environment_type=EXTERNAL", f"--environment_config=localhost:{pool_port}",
                            f"--job_server_timeout={job_timeout}"],
                           pool_log, job_log)
        finally:
            for proc in reversed(procs):
                _stop(proc)
