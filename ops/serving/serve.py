"""`transferline serve`: the newest pushed model over TF Serving's REST API, for development.

A stand-in for TF Serving, not a replacement: one Python process (http.server threads + TensorFlow) that
answers as TF Serving 2.16.1's REST API wherever a client can tell (README "Serving locally" lists what was
checked against which source lines, and the deliberate deviations). Modules: this one (the command, start-up,
version polling, status), ops/serving/rest/api.py (HTTP: routing, bodies, answers), ops/serving/loaded_model.py (a loaded
version, the :predict path), ops/serving/rest/tensors.py, rest_json.py, rest_writer.py (TF Serving's JSON rules, pure).
As TF Serving's default version policy, it serves the highest version, and polls to follow pushes and
rollbacks; with --model-config-file, the models, version policies and labels of a TF Serving ModelServerConfig
(ops/serving/model_config.py), re-read every serve.model_config_poll_seconds. In rollout.mode = canary it serves
<serving_dir>/models.config by itself (the Pusher's, promote's and rollback's: components/rollout.py) and answers
stable's traffic from stable while the canary scores it off the request path (ops/serving/shadow.py). With
--grpc-port, TF Serving's gRPC API too (ops/serving/grpc_api.py). Not here: `:classify`/`:regress` (refused as TF Serving refuses them for this model), request batching.

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
from components.names import CANARY_LABEL, STABLE_LABEL
from components.serving_dir import served_versions
from ops.serving import model_config, request_log
from ops.args import add_config_args, config_from, say
from ops.serving.rest.body import ApiError, bad
from pipelines.config import Config


class PortInUse(UserError):
    """`serve` cannot listen on the port it was given."""


class ModelServer:
    """In-process: ModelServer(config, log).start(), then .url, .lookup(), .listening, .shutdown().

    Serves serve.model_name from the serving dir (latest version), or the models of serve.model_config_file
    (TF Serving's ModelServerConfig: ops/serving/model_config.py), each with the versions its policy asks for.
    As TF Serving (server_core.cc:353,695-717; server.cc:325 before :439) the port is bound at once (a busy
    port fails fast) but only listened on once every model has a loaded version: before that, connections are
    refused. serve.listen_before_load listens at once instead (404 until a version loads)."""

    def __init__(self, config: Config, log=print, log_requests: bool | None = None):
        self.config, self.log, self.serving_dir = config, log, config.serving_dir
        self.log_requests = config.serve.log_requests if log_requests is None else log_requests
        self.config_file = config.serve.model_config_file or None
        # rollout.mode = canary: the serving dir's own model config, followed (a missing file = the latest version)
        self.rollout_file = not self.config_file and config.rollout.mode == "canary"
        if self.rollout_file:
            from components import rollout
            self.config_file = rollout.config_path(self.serving_dir)
        self._request = threading.local()  # this request thread's lookup: did it ask for stable's answer?
        self.models: dict[str, _Served] = {}  # name -> model; the dict is replaced whole when the config changes
        self.labels: dict[str, dict[str, int]] = {}  # model -> label -> version, replaced whole (SC:565-566)
        # model -> version -> (state, error_code, error_message); unloaded ones stay listed (ServableStateMonitor)
        self.states: dict[str, dict[int, tuple[str, str, str]]] = {}
        self._lock = threading.RLock()  # one writer of models / loads at a time (the version and config pollers)
        self._applied, self._config_error, self._said = None, None, set()
        self._stop, self._httpd, self._threads, self.listening = threading.Event(), None, [], False
        self._grpc, self.grpc_port = None, None  # the gRPC server (serve.grpc_port >= 0) and its port, once listening
        self.request_log = request_log.from_config(config)  # None when [request_log] is off
        self.shadow = None  # an ops/serving/shadow.Shadow in canary mode, with the request log on
        if config.rollout.mode == "canary" and self.request_log is not None:
            from ops.serving.shadow import Shadow
            self.shadow = Shadow(self.request_log, self._canary, config.serve.predict_chunk,
                                 config.rollout.shadow_queue, log)
        self.metrics = None  # an ops/serving/metrics.Metrics with serve.monitoring
        if config.serve.monitoring:
            from ops.serving.metrics import Metrics
            self.metrics = Metrics(config.serve.model_name, self.request_log)

    def record(self, model, signature: str, examples: bool, inputs: list, outputs: dict,
               seconds: float | None = None) -> None:
        """An answered :predict, for the request log (loaded_model.predict and grpc_api call it); in shadow
        mode a request that asked for stable (unversioned or labels/stable) goes to the canary first."""
        if self.request_log is None:
            return
        name = next((n for n, m in self.models.items() if any(x is model for x in m.loaded.values())),
                    self.config.serve.model_name)
        if (self.shadow is not None and getattr(self._request, "stable", False) and signature == "serving_default"
                and self._canary(name) is not None):
            return self.shadow.submit(name, model, signature, examples, inputs, outputs, seconds)
        self.request_log.record(name, model.version, signature, examples, inputs, outputs, seconds=seconds)

    def rollout(self, name: str) -> tuple[int | None, int | None]:
        """(stable, canary) of a model in shadow mode: the versions its labels name, the canary being the other
        loaded version when no label names it yet (components/rollout.py); (None, None) otherwise."""
        if self.config.rollout.mode != "canary" or name != self.config.serve.model_name:
            return None, None
        labels, served = self.labels.get(name, {}), self.models.get(name)
        stable = labels.get(STABLE_LABEL)
        loaded = served.loaded if served else {}
        if stable not in loaded:
            return None, None
        canary = labels.get(CANARY_LABEL)
        if canary is None or canary == stable:
            canary = max((v for v in loaded if v != stable), default=None)
        return stable, canary

    def _canary(self, name: str):
        """The loaded canary Model of a model in shadow mode, None when there is none."""
        served, (_, canary) = self.models.get(name), self.rollout(name)
        return served.loaded.get(canary) if served and canary is not None else None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def model(self):
        """The newest loaded version of serve.model_name (or of the only model), None if none."""
        served = self.models.get(self.config.serve.model_name) or (
            next(iter(self.models.values())) if len(self.models) == 1 else None)
        return served.latest() if served else None

    def start(self) -> ModelServer:
        """Reads the model config, binds (port 0: any free port), loads the versions, listens once every model
        has one; polls the model directories (and the config file, serve.model_config_poll_seconds)."""
        from ops.serving.rest.api import Handler, Server

        serve = self.config.serve
        if serve.listen_backlog < 1 or serve.max_threads < 1 or serve.max_text_chars < 0:
            raise ConfigError("serve.listen_backlog and serve.max_threads must be > 0, serve.max_text_chars >= 0 "
                              "(0 = contract.max_text_chars)")
        entries = self._first_config()  # a bad file fails before the port is taken
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
        if serve.grpc_port >= 0:  # bound when it listens (ops/serving/grpc_api.py); a busy port fails here
            from ops.serving import grpc_api
            try:
                grpc_api.check_port(host, serve.grpc_port)
            except OSError as e:
                self._httpd.server_close()
                raise PortInUse(f"cannot listen for gRPC on {host}:{serve.grpc_port}: " + (
                    "the port is already in use; choose another with --grpc-port" if e.errno == errno.EADDRINUSE
                    else e.strerror)) from None
        self._httpd.app = self
        if self.config.serve.listen_before_load:
            self._listen()
        self._apply(entries)  # as TF Serving: the first request is answered by a loaded model
        self._threads.append(threading.Thread(target=self._poll, name="serve-poller", daemon=True))
        self._threads[-1].start()
        # 0: read once, as TF Serving's flag; canary mode's own file is always followed
        if self.config_file and (serve.model_config_poll_seconds > 0 or self.rollout_file):
            self._threads.append(threading.Thread(target=self._poll_config, name="serve-config", daemon=True))
            self._threads[-1].start()
        return self

    def _read_config(self) -> list | None:
        """The config file's models. The rollout file lives in the serving dir it describes: its base path is that
        dir wherever the project now is (a moved project's file names the old place until the next push,
        promote or rollback rewrites it)."""
        entries = model_config.read(self.config_file)
        if self.rollout_file and entries:
            entries = [e._replace(base_path=self.serving_dir) for e in entries]
        return entries

    def _first_config(self) -> list:
        """The models to serve at start. As ServerCore::Create (SC:229-254, 469-475) labels are set before any
        version loads, so a label needs serve.allow_version_labels_for_unavailable_models at start."""
        if not self.config_file or (self.rollout_file and not os.path.exists(self.config_file)):
            return model_config.single(self.config.serve.model_name, self.serving_dir)
        entries = self._read_config() or []  # empty: nothing served ("no action", SC:470-475)
        model_config.validate(entries)
        try:
            self.labels = model_config.resolve_labels(entries, {}, None, self._labels_for_unavailable())
        except model_config.ModelConfigError as e:
            raise model_config.ModelConfigError(
                f"{self.config_file}: {e} (TF Serving sets labels before loading any version: set serve."
                "allow_version_labels_for_unavailable_models = true, its --allow_version_labels_for_unavailable_"
                "models, or add the labels once the versions serve)") from None
        return entries

    def _listen(self):
        if self.listening:
            return
        self._httpd.server_activate()
        self.listening = True
        self._threads.append(threading.Thread(target=lambda: self._httpd.serve_forever(poll_interval=0.5),
                                              name="serve-http", daemon=True))
        self._threads[-1].start()
        if self.config.serve.grpc_port >= 0:  # TF Serving's gRPC port opens with the REST one (server.cc:345-375)
            from ops.serving import grpc_api
            try:
                self._grpc, self.grpc_port = grpc_api.start(self)
                self.log(f"gRPC (TF Serving's PredictionService, ModelService) at {self.config.serve.host}:"
                         f"{self.grpc_port}")
            except RuntimeError as e:  # taken since start() checked it
                self.log(f"cannot listen for gRPC on port {self.config.serve.grpc_port}: {e}; REST only")
        if self.config_file:
            listed = ", ".join(f"{n} (version {', '.join(map(str, sorted(m.loaded)))})" for n, m in self.models.items())
            return self.log(f"serving {listed or 'no model'} at {self.url}/v1/models/<name>")
        name, model = self.config.serve.model_name, self.model
        self.log(f"serving {name} " + (f"version {model.version}" if model else "no version yet (404 until one "
                                        "loads: serve.listen_before_load)") + f" at {self.url}/v1/models/{name}")

    def shutdown(self):
        self._stop.set()
        if self._httpd is not None:
            if self.listening:
                self._httpd.shutdown()
            self._httpd.server_close()
        if self._grpc is not None:  # requests in flight get a second to finish
            self._grpc.stop(grace=1).wait()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.shadow is not None:  # score what is queued, then log it
            self.shadow.close()
            stats = self.shadow.stats()
            if any(stats.values()):
                self.log(f"shadow: {stats['scored']} instance(s) scored by the canary, {stats['dropped']} not "
                         f"(queue full: rollout.shadow_queue), {stats['failed']} failed")
        if self.request_log is not None:  # write what is queued
            self.request_log.close()

    def _poll(self):
        while not self._stop.wait(self.config.serve.poll_seconds):
            self.refresh()

    def _poll_config(self):  # --model_config_file_poll_wait_seconds (server.cc:330-343)
        serve = self.config.serve  # canary mode follows its own file even when the knob says read once
        while not self._stop.wait(serve.model_config_poll_seconds or serve.poll_seconds):
            self.reload_config()

    def _labels_for_unavailable(self) -> bool:
        """--allow_version_labels_for_unavailable_models: canary mode needs it (a canary push adds a label to a
        version not loaded yet; components/rollout.py), so it is on there, as it must be for TF Serving."""
        return self.config.serve.allow_version_labels_for_unavailable_models or self.rollout_file

    def reload_config(self) -> None:
        """Re-reads the config file and applies a change (PollFilesystemAndReloadConfig, server.cc:162-177): new
        models load, removed ones unload, labels move. A file that fails (syntax, a label to a version not
        AVAILABLE, ...) is logged once and the config in force stays; it is tried again at each poll."""
        try:
            if self.rollout_file and not os.path.exists(self.config_file):  # replace mode's layout: latest
                entries = model_config.single(self.config.serve.model_name, self.serving_dir)
            else:
                entries = self._read_config()
        except model_config.ModelConfigError as e:
            return self._reload_failed(f"Failed to read ModelServerConfig file: {e}")
        if entries is None:  # SC:445-457: only a ModelConfigList may follow a ModelConfigList
            return None if self._applied is None else self._reload_failed(
                "PollFilesystemAndReloadConfig failed to ReloadConfig: Cannot transition to requested config. "
                "It is only legal to transition from one ModelConfigList to another.")
        if entries == self._applied and self._config_error is None:
            return
        try:
            self.reload(entries)
        except model_config.ModelConfigError as e:
            return self._reload_failed(f"PollFilesystemAndReloadConfig failed to ReloadConfig: {e}")
        self._config_error = None

    def reload(self, entries: list) -> None:
        """ServerCore::ReloadConfig for a model list (a file's, or a HandleReloadConfigRequest's): validated, then
        the label map against the versions AVAILABLE now, swapped before the models change (SC:458-475); raises
        ModelConfigError with TF Serving's text, and then nothing changes."""
        model_config.validate(entries)
        labels = model_config.resolve_labels(entries, {n: set(m.loaded) for n, m in self.models.items()},
                                             self.labels, self._labels_for_unavailable())
        moved = labels != self.labels
        self.labels = labels
        if [e._replace(labels=()) for e in entries] != [e._replace(labels=()) for e in self._applied or []]:
            self._apply(entries)
        self._applied = entries
        self.log(f"model config {self.config_file or ''} applied: " + "; ".join(
            f"{e.name} ({_policy(e)}" + "".join(f", {k} -> {v}" for k, v in e.labels) + ")" for e in entries)
            + (" (labels moved)" if moved else ""))

    def _reload_failed(self, message: str) -> None:
        if message != self._config_error:  # TF Serving logs it at every poll; once is enough here
            self.log(f"{message}; the model config in force stays")
        self._config_error = message

    def _apply(self, entries: list) -> None:
        """Serves these models: new ones load (before the answer, as ReloadConfig waits: SC:397-399), removed
        ones unload; a changed policy or base path takes effect at once."""
        with self._lock:
            models = {e.name: self.models.get(e.name) or _Served(e) for e in entries}
            for e in entries:
                models[e.name].entry = e
            for n, m in self.models.items():  # END before the model goes: the status never says AVAILABLE
                if n not in models:  # for a model that answers 404
                    self._unload(m, list(m.loaded), "the model left the config")
            self.models = models
            self._applied = entries
            self.refresh()

    def refresh(self):
        """Each model serves the versions its policy asks for (the latest by default): a push moves up, a
        rollback (version moved away) back down, a changed config loads or unloads versions."""
        with self._lock:
            for m in list(self.models.values()):
                self._refresh(m)
            if all(m.loaded for m in self.models.values()):
                self._listen()

    def _refresh(self, m: _Served) -> None:
        e, prefix = m.entry, self._prefix(m)
        try:
            on_disk = served_versions(e.base_path)
        except Exception as ex:
            return self._once(f"{prefix}cannot list {e.base_path}: {ex}")
        missing = model_config.missing_specific(e, on_disk)
        if missing:  # FS:185-193 (a warning there too)
            self._once(f"{prefix}version(s) {', '.join(map(str, missing))}, asked for by the 'specific' policy, not "
                       f"found under {e.base_path}")
        candidates, count = model_config.aspired(e, on_disk)
        old, kept = m.loaded, []
        if not on_disk and old:  # TF Serving unloads too when no version is left
            self.log(f"{prefix}no versions under {e.base_path} any more: version "
                     f"{', '.join(map(str, sorted(old)))} unloaded")
            return self._unload(m, list(old), None)
        for version in candidates:  # newest first; a version that fails to load is skipped
            if len(kept) == count:
                break
            if version in m.loaded or self._load(m, version):
                kept.append(version)
        if not kept and candidates and old:  # availability preserving: one version stays until another serves
            kept = [max(old)]  # (availability_preserving_policy.cc:51-72)
        self._unload(m, [v for v in m.loaded if v not in kept], "not asked for by the version policy")

    def _unload(self, m: _Served, versions: list, why: str | None) -> None:
        if not versions:
            return
        for v in versions:
            self.states.setdefault(m.entry.name, {})[v] = ("END", "OK", "")  # unloaded, still listed
        m.loaded = {v: x for v, x in m.loaded.items() if v not in versions}  # atomic: requests in flight finish
        if why and not (m.entry.policy == "latest" and m.entry.num_versions == 1 and m.loaded):  # a swap: logged
            self.log(f"{self._prefix(m)}version {', '.join(map(str, sorted(versions)))} unloaded ({why})")
        self._serving_metric(m)

    def _load(self, m: _Served, version: int) -> bool:
        from ops.serving import loaded_model as serve_model

        name, states = m.entry.name, self.states.setdefault(m.entry.name, {})
        path, fingerprint, started = os.path.join(m.entry.base_path, str(version)), None, time.monotonic()
        current = m.latest()
        try:
            fingerprint = serve_model.fingerprint(path)
            if m.failed.get(version) == fingerprint:
                return False  # failed before, unchanged since: not tried (nor logged) on every poll
            states[version] = ("LOADING", "OK", "")
            model = serve_model.load(version, path)
        except Exception as e:
            m.failed[version] = fingerprint
            if self.metrics is not None:
                self.metrics.loaded(version, path, time.monotonic() - started, ok=False)
            reason = (str(e).strip().splitlines() or [""])[0][:300]
            code = getattr(e, "error_code", None)
            if code is not None:
                from tensorflow.core.lib.core import error_codes_pb2
                code = error_codes_pb2.Code.Name(code)
            states[version] = ("END", code or "UNKNOWN", reason)  # as a failed load's ServableState
            self.log(f"{self._prefix(m)}version {version} failed to load and is skipped ({type(e).__name__}: "
                     f"{reason}); " + (f"still serving version {current.version}" if current else "nothing served"))
            return False
        m.loaded = {**m.loaded, version: model}  # atomic: requests in flight finish on the model they hold
        states[version] = ("AVAILABLE", "OK", "")
        took = time.monotonic() - started
        if self.metrics is not None:
            self.metrics.loaded(version, path, took, ok=True)
        self._serving_metric(m)
        swap = current is not None and m.entry.policy == "latest" and m.entry.num_versions == 1
        self.log(f"{self._prefix(m)}serving version {version} (loaded in {took:.1f} s; was version {current.version})"
                 if swap else f"{self._prefix(m)}loaded version {version} in {took:.1f} s")
        return True

    def _serving_metric(self, m: _Served) -> None:
        if self.metrics is not None and m.entry.name == self.metrics.model_name:
            latest = m.latest()
            self.metrics.serving(latest.version if latest else None)

    def _prefix(self, m: _Served) -> str:
        return f"model {m.entry.name}: " if self.config_file else ""

    def _once(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            self.log(message)

    def lookup(self, model_name: str, version: int | None = None, label: str | None = None):
        """The loaded Model a request names, or TF Serving's error: a label resolves through the config's
        version_labels (400 `Unrecognized servable version label: <l>`, SC:795-841), then the version must be
        loaded (404 `Servable not found for request: Specific(<m>, <v>)` / `Latest(<m>)`, basic_manager.cc:
        126-134, manager.h:150-161). Latest = the highest version loaded."""
        self._request.stable = False
        if label is not None:
            version = model_config.version_for_label(self.labels, model_name, label)
            if version is None:
                raise bad(f"Unrecognized servable version label: {label}")
            self._request.stable = label == STABLE_LABEL
        elif version is None and (stable := self.rollout(model_name)[0]) is not None:
            # A deviation in shadow mode: TF Serving answers an unversioned request from the highest version
            # loaded, the canary (SC:814-815, manager.h:57-58); here stable answers it (docs/serving.md)
            version, self._request.stable = stable, True
        served = self.models.get(model_name)
        loaded = served.loaded if served else {}
        model = loaded.get(version) if version is not None else served.latest() if served else None
        if model is not None:
            return model
        request = f"Specific({model_name}, {version})" if version is not None else f"Latest({model_name})"
        early = served is not None and not self.states.get(model_name)  # only seen with listen_before_load
        raise ApiError(404, f"Servable not found for request: {request}"
                            + (f"; no version has loaded yet from {served.entry.base_path}" if early else ""))

    servable = lookup  # the older name (ops/serving/grpc_api.py calls it)

    def status(self, name: str, version: int | None) -> bytes:
        """GetModelStatus (get_model_status_impl.cc:76-109): every version known, newest first, END ones too."""
        states = dict(self.states.get(name, {}))
        if version is not None and version not in states:
            raise ApiError(404, f"Could not find version {version} of model {name}")
        if not states:
            raise ApiError(404, f"Could not find any versions of model {name}")
        listed = [version] if version is not None else sorted(states, reverse=True)
        return json.dumps({"model_version_status": [
            {"version": str(v), "state": states[v][0],
             "status": {"error_code": states[v][1], "error_message": states[v][2]}} for v in listed]},
            indent=1, ensure_ascii=False).encode()


class _Served:
    """One model of the config: its entry, its loaded versions (a dict replaced whole), failed fingerprints."""

    def __init__(self, entry: model_config.ModelEntry):
        self.entry, self.loaded, self.failed = entry, {}, {}

    def latest(self):
        loaded = self.loaded
        return loaded[max(loaded)] if loaded else None


def _policy(e: model_config.ModelEntry) -> str:
    return {"all": "all versions", "specific": "versions " + ", ".join(map(str, e.versions))}.get(
        e.policy, f"latest {e.num_versions}")


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
        bases = ", ".join(m.entry.base_path for m in server.models.values()) or "nothing"
        if not server.listening:
            log(f"waiting for a version under {bases}: as TF Serving, the port ({server.url}) opens once "
                f"{'every model has' if server.config_file else 'one has'} loaded (serve.listen_before_load = true "
                "listens at once)")
        if config.rollout.mode == "canary":  # docs/serving.md, "Shadow mode"
            log(f"rollout.mode = canary: following {server.config_file}; unversioned and labels/stable requests are "
                "answered by stable" + (f", and scored by the canary off the request path (at most "
                f"{config.rollout.shadow_queue} waiting: rollout.shadow_queue)" if server.shadow else
                "; no shadow scoring: the request log is off (request_log.enabled)"))
        every = config.serve.model_config_poll_seconds or (config.serve.poll_seconds if server.rollout_file else 0)
        log(f"TF Serving's REST API (a development stand-in); watching {bases} every {config.serve.poll_seconds:g} s"
            + (f", {server.config_file} " + (f"every {every:g} s" if every > 0 else "once (serve.model_config_"
                                              "poll_seconds = 0)") if server.config_file else "")
            + "; Ctrl-C to stop")
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
    p.add_argument("--model-config-file", metavar="FILE", help="serve the models of a TF Serving ModelServerConfig "
                   "text proto: several models, version policies, labels (serve.model_config_file)")
    p.add_argument("--monitoring", action="store_true", default=None,
                   help="Prometheus metrics at /monitoring/prometheus/metrics (serve.monitoring)")
    p.add_argument("--grpc-port", type=int, help="also serve TF Serving's gRPC API on this port (TF Serving's is "
                                                 "8500; 0 = any free port; serve.grpc_port, default -1 = off)")
    p.set_defaults(func=command)


def command(args) -> int:
    extra = [f"serve.{flag}={getattr(args, flag)}" for flag in ("host", "port", "model_name", "monitoring",
                                                                 "grpc_port")
             if getattr(args, flag) is not None]
    if args.model_config_file:
        extra.append(f"serve.model_config_file={os.path.abspath(args.model_config_file)}")
    serve_forever(config_from(args, *extra), log=say)
    return 0
