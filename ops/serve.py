"""`transferline serve`: the newest pushed model over TF Serving's REST API, for development.

A stand-in for TF Serving, not a replacement: one Python process (http.server threads + TensorFlow) that
answers TensorFlow ModelServer 2.x's REST contract (model status, metadata, `:predict` in row and columnar
form, `{"b64": ...}` bytes, `{"error": ...}` bodies with its status codes and messages), so clients and
contract tests run on a laptop against the directory the Pusher writes. As TF Serving's default version
policy, it serves the highest version there, and polls to follow pushes and rollbacks. Not here: gRPC,
`:classify`/`:regress`, several models, request batching, signatures with more than one input.

In production run TF Serving itself over the same directory (it serves <base path>/<MODEL_NAME>, and
the base path is /models). Its model server links TF Text's ops, SentencePiece included
(`SUPPORTED_TENSORFLOW_OPS` in tensorflow_serving/model_servers/BUILD), which this model's graph needs;
not tried here (no Docker on the build machine):

    docker run -p 8501:8501 -v $PWD/work/serving:/models/transferline -e MODEL_NAME=transferline \
        tensorflow/serving:2.16.1
"""
from __future__ import annotations

import base64
import binascii
import errno
import json
import os
import re
import signal
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

from components.serving_dir import served_versions
from components.errors import PortInUse
from components.names import EXAMPLES_INPUT
from ops import request_log
from ops.args import add_config_args, config_from, say
from pipelines.config import Config

# TF Serving's routes (case-insensitive, as its RE2 patterns).
_ROUTE = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata|:predict|:classify|:regress)?", re.I)
_DRAIN_LIMIT = 16 << 20  # an oversized body up to this is read and dropped: the client gets the 413, not a reset


class ApiError(Exception):
    """Answered as TF Serving answers errors: this HTTP status, {"error": message}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _bad(message: str) -> ApiError:  # TF Serving's INVALID_ARGUMENT
    return ApiError(400, message)


class _Model(NamedTuple):
    version: int
    signatures: dict  # name -> concrete function
    metadata: dict    # name -> {"inputs", "outputs", "method_name"}, as in TF Serving's metadata answer
    saved: object     # holds the functions' variables


def _fingerprint(path: str) -> list:
    """A version's file names and sizes: one that failed to load is tried again only once it changes."""
    import tensorflow as tf

    return sorted((os.path.join(d, f), tf.io.gfile.stat(os.path.join(d, f)).length)
                  for d, _, files in tf.io.gfile.walk(path) for f in files)


def _spec(t) -> dict:
    from tensorflow.core.framework import types_pb2

    known = t.shape.rank is not None
    return {"dtype": types_pb2.DataType.Name(t.dtype.as_datatype_enum),
            "tensor_shape": {"dim": [{"size": str(-1 if d is None else d), "name": ""} for d in t.shape] if known
                             else [], "unknown_rank": not known}}


def _load(version: int, path: str) -> _Model:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops the graph holds)

    saved = tf.saved_model.load(path)
    signatures = dict(saved.signatures)
    default = signatures.get("serving_default")
    specs = default.structured_input_signature[1] if default else {}
    if specs and all(s.dtype == tf.string for s in specs.values()):  # warm up: the first call is slow, and a
        default(**{n: tf.constant(["warm up"]) for n in specs})       # broken model fails here, not live
    metadata = {name: {"inputs": {k: _spec(s) for k, s in fn.structured_input_signature[1].items()},
                       "outputs": {k: _spec(t) for k, t in fn.structured_outputs.items()},
                       "method_name": "tensorflow/serving/predict"} for name, fn in signatures.items()}
    return _Model(version, signatures, metadata, saved)


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_object(value) -> bool:  # a named-inputs object, not a {"b64": ...} value
    return isinstance(value, dict) and not _is_b64(value)


def _string(value, where: str) -> bytes:
    """One element of a string tensor: a JSON string as is, {"b64": ...} decoded (TF Serving's rules)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"] + "=" * (-len(value["b64"]) % 4), validate=True)
        except binascii.Error:
            raise _bad(f"{where}Unable to base64 decode") from None
    kind = str(value) if isinstance(value, bool) else {dict: "Object", list: "Array"}.get(type(value), "Number")
    raise _bad(f"{where}JSON Value: {_short(value)} Type: {'Null' if value is None else kind} "
               "is not of expected type: string")


def _batch(doc: dict, name: str) -> list[bytes]:
    """The strings for input `name` from a row ("instances") or columnar ("inputs") request."""
    if "instances" in doc and "inputs" in doc:
        raise _bad(f"JSON Value: {_short(doc)} Not formatted correctly expecting only one of 'inputs' or "
                   "'instances' keys to exist")
    if "inputs" in doc:
        column = doc["inputs"]
        if _is_object(column):
            if name not in column:
                raise _bad(f"Missing named input: {name} in 'inputs' object.")
            column = column[name]
        if not isinstance(column, list):  # every input here is a batch, string[batch]
            raise _bad(f"JSON Value: {_short(column)} is not a list, but input '{name}' is string[batch]")
        return [_string(v, "") for v in column]
    if "instances" not in doc:
        raise _bad("Missing 'inputs' or 'instances' key")
    rows = doc["instances"]
    if not isinstance(rows, list):
        raise _bad(f"JSON Value: {_short(doc)} Expecting 'instances' to be an list/array")
    if not rows:  # TF Serving refuses an empty row-format batch too
        raise _bad(f"JSON Value: {_short(doc)} No values in 'instances' array")
    named, values = _is_object(rows[0]), []
    for i, item in enumerate(rows):
        where = f"Failed to process element: {i} of 'instances' list. "
        if _is_object(item) != named:
            raise _bad(f"Expecting {'object but got list' if named else 'value/list but got object'} at item {i} "
                       "of input list")
        if named and set(item) != {name}:
            raise _bad(f"{where}JSON object: {_short(item)} keys must be equal to: {name}")
        values.append(_string(item[name] if named else item, f"{where}Error: INVALID_ARGUMENT: "))
    return values


def _jsonable(array):
    import numpy as np

    if array.dtype == object:  # tf.string, written as (UTF-8) JSON strings, as TF Serving does
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist()
    if array.dtype.kind == "f":  # the shortest decimal that round-trips the float32, as TF Serving writes
        return array.astype(str).astype(float).tolist()
    return array.tolist()


def _op_message(error) -> str:
    """The user's part of a TF op error, without the graph-execution noise."""
    kept = [line.strip() for line in error.message.split("\n") if line.strip() and not line.strip().startswith(
        ("Graph execution error", "Detected at node", "<stack traces", "[[{{node"))]
    return re.sub(r"\s*\[\[\{\{node [^}]*\}\}\]\]|\s*\[Op:[^\]]*\]", "", " ".join(kept)).strip() or error.message


def predict(model: _Model, body: bytes, record=None) -> dict:
    """One :predict request body -> the response object; raises ApiError.

    record(signature, examples, inputs, outputs): called once the request succeeded (request log, issue 19)."""
    import tensorflow as tf

    if not body.strip():
        raise _bad("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as e:
        raise _bad(f"JSON Parse error: {e.msg} at offset: {e.pos}") from None
    except (ValueError, RecursionError) as e:  # not UTF-8; absurd nesting
        raise _bad(f"JSON Parse error: {e}") from None
    if not isinstance(doc, dict):
        raise _bad(f"JSON Value: {_short(doc)} Is not object")
    signature = doc.get("signature_name", "")
    if not isinstance(signature, str):
        raise _bad(f"JSON Value: {_short(doc)} not formatted correctly. 'signature_name' key must be a string value.")
    signature = signature or "serving_default"
    fn = model.signatures.get(signature)
    if fn is None:
        raise _bad(f'Serving signature name: "{signature}" not found in signature def')
    names = list(fn.structured_input_signature[1])
    if len(names) != 1:
        raise ApiError(501, f"signature {signature} takes {len(names)} inputs; this server feeds one")
    inputs = _batch(doc, names[0])
    try:
        out = fn(**{names[0]: tf.constant(inputs, dtype=tf.string)})
    except tf.errors.InvalidArgumentError as e:  # e.g. bytes that are not a tf.Example
        raise _bad(_op_message(e)) from None
    outputs = {k: _jsonable(v.numpy()) for k, v in sorted(out.items())}
    if record is not None:  # request log hook (issue 19): only answered requests, handed off, never waited on
        record(signature, names[0] == EXAMPLES_INPUT, inputs, outputs)
    if "inputs" in doc:
        return {"outputs": outputs if len(outputs) > 1 else next(iter(outputs.values()))}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    return {"predictions": [dict(zip(outputs, row)) for row in zip(*outputs.values())]}  # an object per instance


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client's next request skips the TCP handshake
    disable_nagle_algorithm = True  # the body, written after the headers, is not held back by Nagle + delayed ACK
    server_version = "transferline-serve"
    timeout = 60  # a stalled client does not hold its thread forever

    def do_GET(self):
        app: ModelServer = self.server.app
        try:
            # Read (or drop) the body first, so that every answer reaches the client, not a reset.
            body = self._body() if self.command == "POST" or "Content-Length" in self.headers else b""
            path = self.path.split("?", 1)[0]
            route = _ROUTE.fullmatch(path)
            if not route:
                raise ApiError(404, f"Malformed request: {self.command} {path}")
            name, verb = route.group(1), (route.group(3) or "").lower()
            version = int(route.group(2)) if route.group(2) else None
            allowed = "POST" if verb.startswith(":") else "GET"
            if self.command != allowed:
                raise ApiError(405, f"{self.command} is not allowed on {path}; use {allowed}")
            if verb in (":classify", ":regress"):
                raise ApiError(501, f"{verb[1:]} is not implemented by this development server; use :predict")
            if verb == ":predict":
                model = app.servable(name, version)
                self._reply(200, predict(model, body, app.request_hook(name, model)))
            elif verb == "/metadata":
                model = app.servable(name, version)
                self._reply(200, {"model_spec": {"name": name, "signature_name": "", "version": str(model.version)},
                                  "metadata": {"signature_def": {"signature_def": model.metadata}}})
            else:
                self._reply(200, app.status(name, version))
        except ApiError as e:
            self._reply(e.status, {"error": str(e)})
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as e:  # a bug or a TF failure: answered, never fatal to the server
            app.log(f"error on {self.command} {self.path}: {type(e).__name__}: {e}")
            self._reply(500, {"error": f"Internal: {type(e).__name__}: {e}"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():  # chunked bodies included: http.server cannot read them
            self.close_connection = True
            raise ApiError(411 if length is None else 400, "Content-Length is required (a number of bytes); "
                                                           "chunked request bodies are not supported")
        length, limit = int(length), self.server.app.config.serve.max_body_bytes
        if length > limit:  # checked before anything is read
            if length > _DRAIN_LIMIT:
                self.close_connection = True
            while length <= _DRAIN_LIMIT and length > 0 and (chunk := self.rfile.read(min(length, 1 << 16))):
                length -= len(chunk)
            raise ApiError(413, f"Request body of {self.headers['Content-Length']} bytes exceeds the limit of "
                                f"{limit} bytes (serve.max_body_bytes)")
        return self.rfile.read(length)

    def _reply(self, status: int, payload: dict):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):  # http.server's own errors: JSON too, not HTML
        self.close_connection = True
        try:
            self._reply(code, {"error": message or HTTPStatus(code).phrase})
        except OSError:
            pass

    def log_message(self, format, *args):  # quiet unless request logging is on
        if self.server.app.log_requests:
            self.server.app.log(f"{self.address_string()} {format % args}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # instead of the default traceback
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):
            self.app.log(f"connection from {client_address[0]} failed: {type(error).__name__}: {error}")


class ModelServer:
    """In-process: ModelServer(config, log).start(), then .url, .model, .shutdown()."""

    def __init__(self, config: Config, log=print, log_requests: bool | None = None):
        self.config, self.log, self.serving_dir = config, log, config.serving_dir
        self.log_requests = config.serve.log_requests if log_requests is None else log_requests
        self.model: _Model | None = None  # replaced whole: a request keeps the model it started with
        self._failed: dict[int, list] = {}  # version -> fingerprint of the files that failed to load
        self._stop, self._httpd, self._threads = threading.Event(), None, []
        self.request_log = request_log.from_config(config)  # request log hook (issue 19); None when off

    def request_hook(self, name: str, model: _Model):
        """The request log's record() for one :predict on `model` (request log hook, issue 19)."""
        log = self.request_log
        return None if log is None else lambda *a: log.record(name, model.version, *a)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ModelServer:
        """Binds (port 0: any free port), loads the newest version, then answers and polls in the background."""
        host, port = self.config.serve.host, self.config.serve.port
        try:  # before TensorFlow is imported: a busy port fails fast
            self._httpd = _Server((host, port), _Handler)
        except OSError as e:
            raise PortInUse(f"cannot listen on {host}:{port}: " + (
                "the port is already in use (another `transferline serve`, or TF Serving?); choose another "
                "with --port" if e.errno == errno.EADDRINUSE else e.strerror)) from None
        self._httpd.app = self
        self.refresh()  # as TF Serving: the first request is answered by a loaded model
        for name, target in (("http", lambda: self._httpd.serve_forever(poll_interval=0.5)), ("poller", self._poll)):
            self._threads.append(threading.Thread(target=target, name=f"serve-{name}", daemon=True))
            self._threads[-1].start()
        return self

    def shutdown(self):
        self._stop.set()
        if self._httpd is not None:
            if self._threads:
                self._httpd.shutdown()
            self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.request_log is not None:  # request log hook (issue 19): flush what is queued
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
            self.model = None
        for version in versions:
            if current is not None and version == current.version:
                return
            path, fingerprint, started = os.path.join(self.serving_dir, str(version)), None, time.monotonic()
            try:
                fingerprint = _fingerprint(path)
                if self._failed.get(version) == fingerprint:
                    continue  # failed before, unchanged since: not tried (nor logged) on every poll
                model = _load(version, path)
            except Exception as e:
                self._failed[version] = fingerprint
                reason = (str(e).strip().splitlines() or [""])[0][:300]
                self.log(f"version {version} failed to load and is skipped ({type(e).__name__}: {reason}); "
                         + (f"still serving version {current.version}" if current else "nothing served"))
                continue
            self.model = model  # atomic: requests in flight finish on the model they hold
            self.log(f"serving version {version} (loaded in {time.monotonic() - started:.1f} s"
                     + (f"; was version {current.version})" if current else ")"))
            return

    def servable(self, name: str, version: int | None) -> _Model:
        model = self.model
        if name == self.config.serve.model_name and model and version in (None, model.version):
            return model
        request = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
        none = name == self.config.serve.model_name and model is None
        raise ApiError(404, f"Servable not found for request: {request}"
                            + (f"; no versions are available under {self.serving_dir}" if none else ""))

    def status(self, name: str, version: int | None) -> dict:
        model = self.model
        if name != self.config.serve.model_name or model is None:
            raise ApiError(404, f"Could not find any versions of model {name}")
        if version not in (None, model.version):
            raise ApiError(404, f"Could not find version {version} of model {name}")
        return {"model_version_status": [{"version": str(model.version), "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}


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
        what = (f"version {server.model.version}" if server.model
                else f"no version yet (none under {server.serving_dir}; 404 until one is pushed)")
        log(f"serving {config.serve.model_name} {what} at {server.url}/v1/models/{config.serve.model_name}")
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
    p.set_defaults(func=command)


def command(args) -> int:
    extra = [f"serve.{flag}={getattr(args, flag)}" for flag in ("host", "port", "model_name")
             if getattr(args, flag) is not None]
    serve_forever(config_from(args, *extra), log=say)
    return 0
