"""`transferline serve`: the newest pushed model over TF Serving's REST API, for development.

A stand-in for TF Serving, not a replacement: one Python process (http.server threads + TensorFlow) that
answers as TF Serving 2.16.1's REST API wherever a client can tell (README "Serving locally" lists what was
checked against which source lines, and the deliberate deviations). Modules: this one (the command, start-up,
version polling, status), ops/serving/rest/api.py (HTTP: routing, bodies, answers), ops/serving/loaded_model.py (a loaded
version, the :predict path), ops/serving/rest/tensors.py, rest_json.py, rest_writer.py (TF Serving's JSON rules, pure).
As TF Serving's default version policy, it serves the highest version, and polls to follow pushes and
rollbacks. Not here: gRPC, `:classify`/`:regress` (refused as TF Serving refuses them for this model),
several models, request batching.

In production run TF Serving itself over the same directory (it serves <base path>/<MODEL_NAME>, and
the base path is /models). Its model server links TF Text's ops, SentencePiece included
(`SUPPORTED_TENSORFLOW_OPS` in tensorflow_serving/model_servers/BUILD), which this model's graph needs;
not tried here (no Docker on the build machine):

    docker run -p 8501:8501 -v $PWD/work/serving:/models/transferline -e MODEL_NAME=transferline \
        tensorflow/serving:2.16.1
"""
from __future__ import annotations

import errno
import json
import os
import signal
import threading
import time

from components.errors import ConfigError, UserError
from components.serving_dir import served_versions
from ops.serving import request_log
from ops.args import add_config_args, config_from, say
from ops.serving.rest.body import ApiError, bad
from pipelines.config import Config


class PortInUse(UserError):
    """`serve` cannot listen on the port it was given."""


class ModelServer:
    """In-process: ModelServer(config, log).start(), then .url, .model, .listening, .shutdown().

    As TF Serving (server_core.cc:353,695-717; server.cc:325 before :439) the port is bound at once (a busy
    port fails fast) but only listened on once a version has loaded: before that, connections are refused.
    serve.listen_before_load listens at once instead (404 until a version loads)."""

    def __init__(self, config: Config, log=print, log_requests: bool | None = None):
        self.config, self.log, self.serving_dir = config, log, config.serving_dir
        self.log_requests = config.serve.log_requests if log_requests is None else log_requests
        self.model = None  # a serve_model.Model, replaced whole: a request keeps the model it started with
        self.states: dict[int, tuple[str, str, str]] = {}  # version -> (state, error_code, error_message)
        self._failed: dict[int, list] = {}  # version -> fingerprint of the files that failed to load
        self._stop, self._httpd, self._threads, self.listening = threading.Event(), None, [], False
        self.request_log = request_log.from_config(config)  # None when [request_log] is off
        self.metrics = None  # an ops/serving/metrics.Metrics with serve.monitoring
        if config.serve.monitoring:
            from ops.serving.metrics import Metrics
            self.metrics = Metrics(config.serve.model_name, self.request_log)

    def record(self, model, signature: str, examples: bool, inputs: list, outputs: dict) -> None:
        """An answered :predict, for the request log (ops/serve_model.predict calls it)."""
        if self.request_log is not None:
            self.request_log.record(self.config.serve.model_name, model.version, signature, examples, inputs, outputs)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ModelServer:
        """Binds (port 0: any free port), loads the newest version, listens once one is loaded; polls."""
        from ops.serving.rest.api import Handler, Server

        serve = self.config.serve
        if serve.listen_backlog < 1 or serve.max_threads < 1 or serve.max_text_chars < 0:
            raise ConfigError("serve.listen_backlog and serve.max_threads must be > 0, serve.max_text_chars >= 0 "
                              "(0 = contract.max_text_chars)")
        host, port = serve.host, serve.port
        try:  # before TensorFlow is imported: a busy port fails fast
            self._httpd = Server((host, port), Handler, serve.listen_backlog, serve.max_threads)
            self._httpd.server_bind()
        except OSError as e:
            if self._httpd is not None:
                self._httpd.server_close()
            raise PortInUse(f"cannot listen on {host}:{port}: " + (
                "the port is already in use (another `transferline serve`, or TF Serving?); choose another "
                "with --port" if e.errno == errno.EADDRINUSE else e.strerror)) from None
        self._httpd.app = self
        if self.config.serve.listen_before_load:
            self._listen()
        self.refresh()  # as TF Serving: the first request is answered by a loaded model
        self._threads.append(threading.Thread(target=self._poll, name="serve-poller", daemon=True))
        self._threads[-1].start()
        return self

    def _listen(self):
        if self.listening:
            return
        self._httpd.server_activate()
        self.listening = True
        self._threads.append(threading.Thread(target=lambda: self._httpd.serve_forever(poll_interval=0.5),
                                              name="serve-http", daemon=True))
        self._threads[-1].start()
        name, model = self.config.serve.model_name, self.model
        self.log(f"serving {name} " + (f"version {model.version}" if model else "no version yet (404 until one "
                                        "loads: serve.listen_before_load)") + f" at {self.url}/v1/models/{name}")

    def shutdown(self):
        self._stop.set()
        if self._httpd is not None:
            if self.listening:
                self._httpd.shutdown()
            self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.request_log is not None:  # write what is queued
            self.request_log.close()

    def _poll(self):
        while not self._stop.wait(self.config.serve.poll_seconds):
            self.refresh()

    def refresh(self):
        """Serves the highest version that loads: a push moves up, a rollback (version moved away) back down."""
        try:
            versions = served_versions(self.serving_dir)[::-1]  # newest first
        except Exception as e:
            return self.log(f"cannot list {self.serving_dir}: {e}")
        current = self.model
        if not versions and current is not None:  # TF Serving unloads too when no version is left
            self.log(f"no versions under {self.serving_dir} any more: version {current.version} unloaded")
            self.model, self.states[current.version] = None, ("END", "OK", "")
            if self.metrics is not None:
                self.metrics.serving(None)
        for version in versions:
            if current is not None and version == current.version:
                return
            if self._load(version, current):
                return

    def _load(self, version: int, current) -> bool:
        from ops.serving import loaded_model as serve_model

        path, fingerprint, started = os.path.join(self.serving_dir, str(version)), None, time.monotonic()
        try:
            fingerprint = serve_model.fingerprint(path)
            if self._failed.get(version) == fingerprint:
                return False  # failed before, unchanged since: not tried (nor logged) on every poll
            self.states[version] = ("LOADING", "OK", "")
            model = serve_model.load(version, path)
        except Exception as e:
            self._failed[version] = fingerprint
            if self.metrics is not None:
                self.metrics.loaded(version, path, time.monotonic() - started, ok=False)
            reason = (str(e).strip().splitlines() or [""])[0][:300]
            code = getattr(e, "error_code", None)
            if code is not None:
                from tensorflow.core.lib.core import error_codes_pb2
                code = error_codes_pb2.Code.Name(code)
            self.states[version] = ("END", code or "UNKNOWN", reason)  # as a failed load's ServableState
            self.log(f"version {version} failed to load and is skipped ({type(e).__name__}: {reason}); "
                     + (f"still serving version {current.version}" if current else "nothing served"))
            return False
        self.model = model  # atomic: requests in flight finish on the model they hold
        self.states[version] = ("AVAILABLE", "OK", "")
        if current is not None:
            self.states[current.version] = ("END", "OK", "")  # unloaded, still listed (ServableStateMonitor)
        took = time.monotonic() - started
        if self.metrics is not None:
            self.metrics.loaded(version, path, took, ok=True)
            self.metrics.serving(version)
        self.log(f"serving version {version} (loaded in {took:.1f} s; was version {current.version})" if current
                 else f"loaded version {version} in {took:.1f} s")
        self._listen()
        return True

    def servable(self, name: str, version: int | None, label: str | None):
        """The Model for a request, or TF Serving's error (server_core.cc:822-841, basic_manager.cc:132)."""
        if label is not None:  # no labels are configured here, as none are by default in TF Serving
            raise bad(f"Unrecognized servable version label: {label}")
        model = self.model
        if name == self.config.serve.model_name and model and version in (None, model.version):
            return model
        request = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
        early = name == self.config.serve.model_name and not self.states  # only seen with listen_before_load
        raise ApiError(404, f"Servable not found for request: {request}"
                            + (f"; no version has loaded yet from {self.serving_dir}" if early else ""))

    def status(self, name: str, version: int | None) -> bytes:
        """GetModelStatus (get_model_status_impl.cc:76-109): every version known, newest first, END ones too."""
        states = dict(self.states) if name == self.config.serve.model_name else {}
        if version is not None and version not in states:
            raise ApiError(404, f"Could not find version {version} of model {name}")
        if not states:
            raise ApiError(404, f"Could not find any versions of model {name}")
        listed = [version] if version is not None else sorted(states, reverse=True)
        return json.dumps({"model_version_status": [
            {"version": str(v), "state": states[v][0],
             "status": {"error_code": states[v][1], "error_message": states[v][2]}} for v in listed]},
            indent=1, ensure_ascii=False).encode()


def serve_forever(config: Config, log=print) -> None:
    """`transferline serve`: answers until Ctrl-C or SIGTERM, then shuts down cleanly."""
    server, stop = ModelServer(config, log), threading.Event()
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C, `kill`, `docker stop`: the same clean exit. SIGINT too, explicitly: a process started in
        # the background of a script inherits SIGINT ignored, and would not stop on it otherwise.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    try:
        server.start()
        if not server.listening:
            log(f"waiting for a version under {server.serving_dir}: as TF Serving, the port "
                f"({server.url}) opens once one has loaded (serve.listen_before_load = true listens at once)")
        log(f"TF Serving's REST API (a development stand-in); watching {server.serving_dir} every "
            f"{config.serve.poll_seconds:g} s; Ctrl-C to stop")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    log("stopped")


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve the newest pushed model over TF Serving's REST API, on loopback "
                                     "(a development stand-in for TF Serving)")
    add_config_args(p)
    p.add_argument("--host", help="address to listen on (serve.host, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (serve.port, default 8501 as TF Serving's REST API)")
    p.add_argument("--model-name", help="the <name> in /v1/models/<name> (serve.model_name)")
    p.add_argument("--monitoring", action="store_true", default=None,
                   help="Prometheus metrics at /monitoring/prometheus/metrics (serve.monitoring)")
    p.set_defaults(func=command)


def command(args) -> int:
    extra = [f"serve.{flag}={getattr(args, flag)}" for flag in ("host", "port", "model_name", "monitoring")
             if getattr(args, flag) is not None]
    serve_forever(config_from(args, *extra), log=say)
    return 0
