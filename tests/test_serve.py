"""`transferline serve`: TF Serving's REST contract on the slice run's pushed model, in-process (ModelServer)
and as the CLI. Every request is a bounded loopback call; every server is shut down by its test."""
import base64
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import REPO, run_cli
from pipelines.config import load_config
from ops.serve import ModelServer

PREDICT = "/v1/models/transferline:predict"
TEXTS = ["How far is Denver from Aspen ?", "Who wrote Hamlet ?", "What does NASA stand for ?",
         "Где находится самая высокая гора в мире?"]
OUTPUTS = {"probabilities", "classes", "label", "score"}
LABELS = {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}


def request(url, path, body=None, *, raw=None, method=None, timeout=60):
    """(status, decoded JSON body) of one loopback request."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


def served_version(url):
    """The version the status endpoint reports, None when it reports none or does not answer."""
    try:
        status, body = request(url, "/v1/models/transferline", timeout=5)
    except OSError:
        return None
    return body["model_version_status"][0]["version"] if status == 200 else None


def wait_for(condition, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def push(model_dir, serving_dir, version):
    """The model as <serving_dir>/<version>, appearing whole as the Pusher's do (hard links: no 80 MB copy)."""
    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    staging = os.path.join(serving_dir, f".staging-{version}")
    shutil.copytree(model_dir, staging, copy_function=link)
    os.rename(staging, os.path.join(serving_dir, str(version)))


def make_config(serving_dir, *overrides):
    return load_config(None, [f"paths.work_dir={os.path.dirname(serving_dir)}", f"paths.serving_dir={serving_dir}",
                                "serve.poll_seconds=0.2", "serve.max_body_bytes=4096", "serve.port=0", *overrides])


@contextlib.contextmanager
def running(config):
    logs = []
    server = ModelServer(config, log=logs.append).start()
    try:
        yield server, logs
    finally:
        server.shutdown()


def as_rows(outputs):
    return [dict(zip(outputs, row)) for row in zip(*outputs.values())]


def b64(data):
    return {"b64": base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()}


@pytest.fixture(scope="module")
def model_dir(slice_runs):
    versions = sorted(int(v) for v in os.listdir(slice_runs.serving_dir) if v.isdigit())
    return os.path.join(slice_runs.serving_dir, str(versions[-1]))


@pytest.fixture(scope="module")
def reference(model_dir):
    """serving_default called directly on the SavedModel: what every answer must equal."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    out = tf.saved_model.load(model_dir).signatures["serving_default"](text=tf.constant(TEXTS))
    return {k: v.numpy() for k, v in out.items()}


@pytest.fixture(scope="module")
def served(model_dir, tmp_path_factory):
    """A server on a serving dir of our own (version 1), which the tests may push to and roll back."""
    serving_dir = str(tmp_path_factory.mktemp("serve") / "serving")
    os.makedirs(serving_dir)
    push(model_dir, serving_dir, 1)
    with running(make_config(serving_dir)) as (server, logs):
        yield SimpleNamespace(url=server.url, logs=logs, serving_dir=serving_dir, server=server)


def assert_matches(predictions, reference):
    assert len(predictions) == len(TEXTS)
    for i, p in enumerate(predictions):
        assert set(p) == OUTPUTS
        np.testing.assert_allclose(p["probabilities"], reference["probabilities"][i], rtol=0, atol=1e-5)
        assert p["classes"] == [c.decode() for c in reference["classes"][i]]
        assert p["label"] == reference["label"][i].decode() and p["label"] in LABELS
        assert abs(p["score"] - float(reference["score"][i])) <= 1e-5


@pytest.mark.slow
def test_status_and_metadata(served):
    expected = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                          "status": {"error_code": "OK", "error_message": ""}}]}
    assert request(served.url, "/v1/models/transferline") == (200, expected)
    assert request(served.url, "/v1/models/transferline/versions/1") == (200, expected)
    status, body = request(served.url, "/v1/models/transferline/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "transferline", "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    default = signatures["serving_default"]
    assert default["inputs"]["text"]["dtype"] == "DT_STRING"
    assert default["inputs"]["text"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    assert set(default["outputs"]) == OUTPUTS and default["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"
    assert set(signatures["serving_examples"]["inputs"]) == {"examples"}


@pytest.mark.slow
@pytest.mark.parametrize("body", [
    {"instances": TEXTS},
    {"instances": [{"text": t} for t in TEXTS]},
    {"instances": [b64(t) for t in TEXTS]},
    {"signature_name": "serving_default", "instances": [{"text": b64(t)} for t in TEXTS]},
    {"inputs": TEXTS},
    {"inputs": {"text": TEXTS}},
], ids=["strings", "objects", "b64", "object-b64", "columnar", "columnar-named"])
def test_predict_equals_the_signature_called_directly(served, reference, body):
    status, answer = request(served.url, PREDICT, body)
    assert status == 200, answer
    if "inputs" in body:
        assert set(answer) == {"outputs"} and set(answer["outputs"]) == OUTPUTS
        assert_matches(as_rows(answer["outputs"]), reference)
    else:
        assert set(answer) == {"predictions"}
        assert_matches(answer["predictions"], reference)


@pytest.mark.slow
def test_serving_examples_with_b64_tf_examples(served, reference):
    import tensorflow as tf

    examples = [tf.train.Example(features=tf.train.Features(feature={"text": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[t.encode()]))})).SerializeToString() for t in TEXTS]
    for instances in ([b64(e) for e in examples], [{"examples": b64(e)} for e in examples]):
        status, answer = request(served.url, "/v1/models/transferline/versions/1:predict",
                                 {"signature_name": "serving_examples", "instances": instances})
        assert status == 200, answer
        assert_matches(answer["predictions"], reference)


BAD = [
    ("malformed JSON", "POST", PREDICT, b'{"instances": ["a"', 400, "JSON Parse error"),
    ("empty body", "POST", PREDICT, b"", 400, "JSON Parse error: The document is empty"),
    ("not an object", "POST", PREDICT, b'["a"]', 400, "Is not object"),
    ("missing instances", "POST", PREDICT, {"signature_name": "serving_default"}, 400,
     "Missing 'inputs' or 'instances' key"),
    ("instances and inputs", "POST", PREDICT, {"instances": ["a"], "inputs": ["a"]}, 400, "only one of"),
    ("empty instances", "POST", PREDICT, {"instances": []}, 400, "No values in 'instances' array"),
    ("instances not a list", "POST", PREDICT, {"instances": "a"}, 400, "'instances' to be an list/array"),
    ("nested list", "POST", PREDICT, {"instances": [["a", "b"]]}, 400,
     "Type: Array is not of expected type: string"),
    ("number", "POST", PREDICT, {"instances": ["a", 5]}, 400,
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 5 Type: Number"),
    ("object then value", "POST", PREDICT, {"instances": [{"text": "a"}, "b"]}, 400, "Expecting object"),
    ("wrong key", "POST", PREDICT, {"instances": [{"txt": "a"}]}, 400, "keys must be equal to: text"),
    ("bad base64", "POST", PREDICT, {"instances": [{"b64": "not base64!"}]}, 400, "Unable to base64 decode"),
    ("columnar scalar", "POST", PREDICT, {"inputs": "a"}, 400, "is not a list"),
    ("unknown signature", "POST", PREDICT, {"signature_name": "nope", "instances": ["a"]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("not a tf.Example", "POST", PREDICT, {"signature_name": "serving_examples", "instances": [b64(b"\0\0\0")]},
     400, "parse"),
    ("unknown model", "POST", "/v1/models/other:predict", {"instances": ["a"]}, 404,
     "Servable not found for request: Latest(other)"),
    ("unknown version", "POST", "/v1/models/transferline/versions/7:predict", {"instances": ["a"]}, 404,
     "Servable not found for request: Specific(transferline, 7)"),
    ("unknown model status", "GET", "/v1/models/other", None, 404, "Could not find any versions of model other"),
    ("unknown version status", "GET", "/v1/models/transferline/versions/7", None, 404,
     "Could not find version 7 of model transferline"),
    ("unknown path", "GET", "/v2/models/transferline", None, 404, "Malformed request"),
    ("wrong method", "GET", PREDICT, None, 405, "use POST"),
    ("classify", "POST", "/v1/models/transferline:classify", {"examples": []}, 501, "not implemented"),
    ("oversized body", "POST", PREDICT, {"instances": ["x" * 5000]}, 413,
     "exceeds the limit of 4096 bytes (serve.max_body_bytes)"),
]


@pytest.mark.slow
@pytest.mark.parametrize("method,path,body,code,message", [case[1:] for case in BAD], ids=[c[0] for c in BAD])
def test_bad_requests_get_a_json_error_and_the_server_goes_on(served, method, path, body, code, message):
    raw = body if isinstance(body, bytes) else None
    status, answer = request(served.url, path, None if raw is not None else body, raw=raw, method=method)
    assert (status, list(answer)) == (code, ["error"]), answer
    assert message in answer["error"]
    assert served_version(served.url) == "1"


@pytest.mark.slow
def test_a_post_without_content_length_is_refused(served):
    host, port = served.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.putrequest("POST", PREDICT)  # no Content-Length header, no body
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 411 and "Content-Length" in json.loads(response.read())["error"]
    finally:
        connection.close()
    assert served_version(served.url) == "1"


@pytest.mark.slow
def test_a_push_is_served_a_broken_version_skipped_a_rollback_followed(served, model_dir):
    """Polling as TF Serving's "latest" policy, with requests in flight all the while: none may fail."""
    answered, failures, stop = [], [], threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                status, answer = request(served.url, PREDICT, {"instances": TEXTS[:1]})
            except OSError as e:
                status, answer = None, repr(e)
            answered.append(status)
            if status != 200:
                failures.append(answer)

    client = threading.Thread(target=traffic, daemon=True)
    client.start()
    try:
        push(model_dir, served.serving_dir, 2)
        wait_for(lambda: served_version(served.url) == "2", "version 2 to be served")
        assert request(served.url, "/v1/models/transferline/versions/2:predict", {"instances": TEXTS})[0] == 200
        assert request(served.url, "/v1/models/transferline/versions/1:predict", {"instances": TEXTS})[0] == 404

        broken = os.path.join(served.serving_dir, "3")  # a partial or corrupt version: skipped, 2 stays
        os.makedirs(os.path.join(broken, "variables"))
        with open(os.path.join(broken, "saved_model.pb"), "wb") as f:
            f.write(b"not a SavedModel")
        wait_for(lambda: any("version 3 failed to load" in m for m in served.logs), "version 3 to be skipped")
        assert served_version(served.url) == "2"

        # `transferline rollback` moves the newest version away: the previous one is served again.
        os.makedirs(os.path.join(served.serving_dir, ".rolled-back"))
        os.rename(os.path.join(served.serving_dir, "2"), os.path.join(served.serving_dir, ".rolled-back", "2"))
        wait_for(lambda: served_version(served.url) == "1", "version 1 to be served again")
        shutil.rmtree(broken)
    finally:
        stop.set()
        client.join(timeout=60)
    assert answered and not failures, failures[:3]
    assert sum("failed to load" in m for m in served.logs) == 1  # logged once, not on every poll
    assert any("serving version 1" in m and "was version 2" in m for m in served.logs)


@pytest.mark.slow
def test_nothing_pushed_yet_answers_404_until_a_version_appears(model_dir, tmp_path):
    serving_dir = str(tmp_path / "serving")  # does not exist yet, as before the first push
    with running(make_config(serving_dir)) as (server, logs):
        status, answer = request(server.url, "/v1/models/transferline")
        assert (status, answer) == (404, {"error": "Could not find any versions of model transferline"})
        status, answer = request(server.url, PREDICT, {"instances": TEXTS})
        assert status == 404 and "no versions are available" in answer["error"]
        os.makedirs(serving_dir)
        push(model_dir, serving_dir, 5)
        wait_for(lambda: served_version(server.url) == "5", "the first push to be served")
        assert request(server.url, PREDICT, {"instances": TEXTS})[0] == 200


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_cli_serves_and_stops_cleanly_on_ctrl_c(model_dir, tmp_path):
    work = tmp_path / "work"
    os.makedirs(work / "serving")
    push(model_dir, str(work / "serving"), 7)
    port, log_path = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ops.cli", "serve", "--work-dir", str(work),
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        wait_for(lambda: proc.poll() is not None or served_version(url) == "7", "the CLI server", timeout=240)
        assert proc.poll() is None, log_path.read_text()
        status, answer = request(url, PREDICT, {"instances": TEXTS[:1]})
        assert status == 200 and answer["predictions"][0]["label"] in LABELS
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    output = log_path.read_text()
    assert "Traceback" not in output
    assert f"version 7 at {url}/v1/models/transferline" in output and "stopped" in output


def test_cli_on_a_busy_port_exits_2_with_a_one_line_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli("serve", "--work-dir", str(tmp_path / "work"), "--port", str(port), timeout=180)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("transferline: error:") and "already in use" in lines[0], lines
