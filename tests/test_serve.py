"""`transferline serve`: TF Serving's REST contract on the slice run's pushed model, in-process (ModelServer)
and as the CLI. Every request is a bounded loopback call; every server is shut down by its test."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import REPO, run_cli
from serve_helpers import (LABELS, OUTPUTS, PREDICT, TEXTS, as_rows, b64, make_config, model_dir,  # noqa: F401
                           peak_rss_growth, push, request, running, send, served, served_version,
                           serving_dir_with, wait_for)


@pytest.fixture(scope="module")
def reference(model_dir):
    """serving_default called directly on the SavedModel: what every answer must equal."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    out = tf.saved_model.load(model_dir).signatures["serving_default"](text=tf.constant(TEXTS))
    return {k: v.numpy() for k, v in out.items()}


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
    # As GetModelMetadata (get_model_metadata_impl.cc:47-63): every signature, TensorInfo names, defaults.
    assert "__saved_model_init_op" in signatures and default["inputs"]["text"]["name"] == "serving_default_text:0"
    assert default["method_name"] == "tensorflow/serving/predict" and default["defaults"] == {}


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
def test_max_instances_refused_and_just_under_it_memory_stays_bounded(model_dir, tmp_path):
    """Issue 20 item 3: before, ~120 KB RSS per instance (2,000 instances: ~240 MB). Run 64 at a time now."""
    serving_dir = serving_dir_with(model_dir, tmp_path)
    config = make_config(serving_dir, "serve.max_body_bytes=1000000", "serve.max_instances=2000",
                         "serve.predict_chunk=64")
    texts = [f"question number {i} about things ?" for i in range(2000)]
    with running(config) as (server, _):
        (status, _, raw), growth = peak_rss_growth(
            lambda: send(server.url, "POST", PREDICT, json.dumps({"instances": texts}).encode(), timeout=300))
        assert status == 200 and len(json.loads(raw)["predictions"]) == 2000
        assert growth < 150, f"RSS grew {growth:.0f} MB for 2,000 instances"
        status, _, raw = send(server.url, "POST", PREDICT, json.dumps({"instances": texts + ["one"]}).encode())
        assert status == 400 and json.loads(raw)["error"].startswith("Request has 2001 instances; this server "
                                                                     "answers at most 2000 per request")


@pytest.mark.slow
def test_before_a_version_loads_the_port_is_closed_unless_listen_before_load(model_dir, tmp_path):
    """TF Serving opens its REST port only once a version has loaded (server_core.cc:353,695-717; server.cc:325
    before :439); serve.listen_before_load keeps an early listener that answers 404 until then."""
    serving_dir = str(tmp_path / "serving")  # does not exist yet, as before the first push
    with running(make_config(serving_dir)) as (closed, _), \
            running(make_config(serving_dir, "serve.listen_before_load=true")) as (early, _):
        with pytest.raises(ConnectionRefusedError):
            send(closed.url, "GET", "/v1/models/transferline")
        status, _, raw = send(early.url, "GET", "/v1/models/transferline")
        assert (status, json.loads(raw)) == (404, {"error": "Could not find any versions of model transferline"})
        status, _, raw = send(early.url, "POST", PREDICT, b'{"instances": ["a"]}')
        assert status == 404 and "no version has loaded yet" in json.loads(raw)["error"]
        os.makedirs(serving_dir)
        push(model_dir, serving_dir, 5)
        wait_for(lambda: served_version(closed.url) == "5" and served_version(early.url) == "5", "the first push")
        assert request(closed.url, PREDICT, {"instances": TEXTS})[0] == 200


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_cli_serves_and_stops_cleanly_on_ctrl_c(model_dir, tmp_path):
    work = tmp_path / "work"  # nothing pushed yet: the CLI says it waits, the port stays closed
    port, log_path = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ops.cli", "serve", "--work-dir", str(work),
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        wait_for(lambda: proc.poll() is not None or "waiting for a version" in log_path.read_text(), "the CLI",
                 timeout=240)
        with pytest.raises(ConnectionRefusedError):
            send(url, "GET", "/v1/models/transferline")
        os.makedirs(work / "serving")
        push(model_dir, str(work / "serving"), 7)
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
