"""Shared by the serve tests: loopback requests, pushing a version, an in-process server on the slice model."""
import base64
import contextlib
import http.client
import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest

from pipelines.config_loading import load_config
from ops.serving.serve import ModelServer

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
    if status != 200:
        return None  # newest first, unloaded (END) versions listed too, as TF Serving does
    return next((v["version"] for v in body["model_version_status"] if v["state"] == "AVAILABLE"), None)


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


def serving_dir_with(model_dir, parent) -> str:
    """<parent>/serving holding the model as version 1: a serving dir of a test's own."""
    serving_dir = os.path.join(str(parent), "serving")
    os.makedirs(serving_dir)
    push(model_dir, serving_dir, 1)
    return serving_dir


def make_config(serving_dir, *overrides):
    return load_config(None, [f"paths.work_dir={os.path.dirname(serving_dir)}", f"paths.serving_dir={serving_dir}",
                                "serve.poll_seconds=0.2", "serve.max_body_bytes=4096", "serve.max_instances=50", "serve.port=0",
                                *overrides])


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
def served(model_dir, tmp_path_factory):
    """A server on a serving dir of our own (version 1), which the tests may push to and roll back."""
    serving_dir = serving_dir_with(model_dir, tmp_path_factory.mktemp("serve"))
    with running(make_config(serving_dir)) as (server, logs):
        yield SimpleNamespace(url=server.url, logs=logs, serving_dir=serving_dir, server=server)


def send(url, method, path, body=None, headers=None, timeout=60):
    """(status, headers, raw body) of one request, sent exactly: no header is added but Host (and
    Content-Length for a bytes body, unless headers give it None); a list body is sent chunked."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        headers = dict(headers or {})
        if isinstance(body, list):
            headers["Transfer-Encoding"] = "chunked"
        elif body is not None and "Content-Length" not in headers:
            headers["Content-Length"] = str(len(body))
        for name, value in headers.items():
            if value is not None:
                connection.putheader(name, value)
        connection.endheaders()
        if isinstance(body, list):
            for chunk in body:
                connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.send(b"0\r\n\r\n")
        elif body:
            connection.send(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def peak_rss_growth(action):
    """(action's result, the process's peak RSS growth in MB while it ran), sampled every 20 ms."""
    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    baseline, peak, done = rss_mb(), [0.0], threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join()
    return result, max(peak[0], rss_mb()) - baseline


def all_at_once(url, n, path, body, timeout=120):
    """n connections opened together (a barrier), each sending one POST: the statuses, or exception names."""
    host, port = url.removeprefix("http://").split(":")
    results, barrier = [None] * n, threading.Barrier(n)

    def one(i):
        try:
            barrier.wait(timeout=60)
            connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
            try:
                connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                results[i] = (response.status, response.read())
            finally:
                connection.close()
        except Exception as e:  # noqa: BLE001  (a reset is the failure counted)
            results[i] = (type(e).__name__, b"")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
