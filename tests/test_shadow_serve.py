"""`serve` in shadow mode (rollout.mode = canary) on the slice model: stable answers, byte for byte as stable alone
does (REST and gRPC), the canary scores the same requests off the request path, both land in the request log;
a slow canary delays no answer and its bounded queue drops (and counts) the excess; `transferline canary` judges
the logged traffic; a promote is followed under load with no failed request."""
import os
import statistics
import threading
import time
import types

import pytest

from components import rollout
from ops import cli
from ops.serving.loaded_model import Model
from ops.serving.request_log import read_requests
from serve_helpers import (PREDICT, TEXTS, make_config, model_dir, push, running, send,  # noqa: F401
                           serving_dir_with)

pytestmark = pytest.mark.slow
NAME = "transferline"
LABELLED = {"unversioned": PREDICT, "stable": f"/v1/models/{NAME}/labels/stable:predict",
            "canary": f"/v1/models/{NAME}/labels/canary:predict", "v1": f"/v1/models/{NAME}/versions/1:predict"}
BODY = ('{"instances": ["' + '", "'.join(TEXTS) + '"]}').encode()


def shadow_dir(model_dir, parent):
    """A serving dir with version 1 (stable) and a copy of it as version 2 (canary), in TF Serving's config."""
    serving_dir = serving_dir_with(model_dir, parent)
    push(model_dir, serving_dir, 2)
    rollout.write(serving_dir, NAME, 1, 2)
    return serving_dir


def post(url, path, body=BODY):
    started = time.monotonic()
    status, _, raw = send(url, "POST", path, body, {"Content-Type": "application/json"})
    return status, raw, time.monotonic() - started


def grpc_predict(port, **spec):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    r = predict_pb2.PredictRequest()
    r.model_spec.name = NAME
    if "label" in spec:
        r.model_spec.version_label = spec["label"]
    r.inputs["text"].CopyFrom(tf.make_tensor_proto(TEXTS, dtype=tf.string))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(r, timeout=60).SerializeToString()


@pytest.fixture(scope="module")
def pair(model_dir, tmp_path_factory):  # noqa: F811
    """A shadow-mode server (stable 1, canary 2 = a copy) and a plain server of version 1 alone."""
    shadowed = shadow_dir(model_dir, tmp_path_factory.mktemp("shadow"))
    alone = serving_dir_with(model_dir, tmp_path_factory.mktemp("alone"))
    big = "serve.max_body_bytes=100000"
    with running(make_config(shadowed, "rollout.mode=canary", "serve.grpc_port=0", big)) as (server, logs), \
            running(make_config(alone, "serve.grpc_port=0", big)) as (reference, _):
        yield types.SimpleNamespace(server=server, logs=logs, reference=reference, serving_dir=shadowed,
                                    work_dir=os.path.dirname(shadowed))


def test_stable_answers_byte_for_byte_and_both_are_logged(pair):
    s, ref = pair.server, pair.reference
    assert s.rollout(NAME) == (1, 2) and s.config_file == os.path.join(pair.serving_dir, "models.config")
    expected = post(ref.url, PREDICT)[1]
    for what in ("unversioned", "stable", "v1"):
        status, raw, _ = post(s.url, LABELLED[what])
        assert (status, raw) == (200, expected), what
    assert grpc_predict(s.grpc_port) == grpc_predict(ref.grpc_port)  # the answer names version 1 in both
    assert grpc_predict(s.grpc_port, label="stable") == grpc_predict(ref.grpc_port)
    assert post(s.url, LABELLED["canary"])[0] == 200
    deadline = time.monotonic() + 60
    while s.shadow.pending() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the writer thread
    frame = read_requests(os.path.join(pair.work_dir, "requests"))
    by_shadow = frame.groupby("shadow").size().to_dict()
    # unversioned, labels/stable (REST), unversioned, labels/stable (gRPC): shadowed; versions/1, canary: not
    assert by_shadow == {"scored": 4 * len(TEXTS), "": 2 * len(TEXTS)}
    scored = frame[frame["shadow"] == "scored"]
    assert set(scored["version"].astype(str)) == {"1"} and set(scored["canary_version"].astype(str)) == {"2"}
    assert list(scored["label"]) == list(scored["canary_label"])  # v2 is a copy of v1
    for ours, theirs in zip(scored["probabilities"], scored["canary_probabilities"]):
        assert theirs == pytest.approx(ours, abs=1e-6)
    assert (scored["scoring_ms"] > 0).all() and (scored["canary_ms"] > 0).all()
    assert set(frame[frame["shadow"] == ""]["version"].astype(str)) == {"1", "2"}  # versions/1 and labels/canary


def test_shadow_overhead_on_answer_latency(pair):
    """Blocks of requests to the shadow server and to stable alone, in turn (both servers are in this process:
    the queue is drained before each block, so the canary's scoring lands on the shadow block only). The
    shadow's cost shows only through the CPU its worker shares (2 cores here), never as a wait."""
    def drain():
        while pair.server.shadow.pending():
            time.sleep(0.05)
        time.sleep(0.3)  # the request in the worker

    servers = {"shadow": pair.server, "alone": pair.reference}
    sequential, concurrent = {"shadow": [], "alone": []}, {"shadow": [], "alone": []}
    for _ in range(2):
        for who, server in servers.items():
            drain()
            sequential[who] += [post(server.url, PREDICT)[2] for _ in range(15)]
            drain()
            clients = [threading.Thread(target=lambda s=server, w=who: concurrent[w].extend(
                post(s.url, PREDICT)[2] for _ in range(5))) for _ in range(4)]
            for c in clients:
                c.start()
            for c in clients:
                c.join()
    figures = {k: _ms(v) for k, v in sequential.items()}
    print(f"answer ms (median, p90), {len(TEXTS)} texts a request: 30 sequential: shadow {figures['shadow']}, "
          f"stable alone {figures['alone']}; 4 clients at once (40 requests): shadow {_ms(concurrent['shadow'])}, "
          f"stable alone {_ms(concurrent['alone'])}")
    assert figures["shadow"][0] < figures["alone"][0] * 3 + 50  # loose: 2 shared cores


def _ms(seconds):
    return round(statistics.median(seconds) * 1000, 1), round(sorted(seconds)[int(0.9 * len(seconds))] * 1000, 1)


def test_canary_command_on_the_logged_traffic(pair, capsys):
    """The real serving dir's config and log: agreement 1.0 with a copy; too little traffic for the default."""
    for _ in range(5):
        assert post(pair.server.url, PREDICT)[0] == 200
    time.sleep(1)
    args = ["canary", "--work-dir", pair.work_dir, "--since", "2000-01-01T00:00"]
    assert cli.main(args + ["--set", "rollout.min_requests=100000"]) == 7
    assert cli.main(args) == 0  # the tests before logged more than rollout.min_requests (100)
    err = capsys.readouterr().err
    assert "canary version 2 vs stable 1" in err and "agreement       1.000" in err


class _Wrapped:
    """A canary signature that sleeps before it runs and answers its classes in reverse (a worse model)."""

    def __init__(self, fn, delay):
        self.fn, self.delay = fn, delay
        self.structured_input_signature, self.captured_inputs = fn.structured_input_signature, fn.captured_inputs

    def _call_flat(self, flat, captured):
        import tensorflow as tf

        time.sleep(self.delay)
        out = dict(self.fn._call_flat(flat, captured))
        out["probabilities"] = tf.reverse(out["probabilities"], axis=[1])
        return out


def test_a_slow_canary_delays_no_answer_and_its_queue_is_bounded(model_dir, tmp_path, capsys):  # noqa: F811
    serving_dir = shadow_dir(model_dir, tmp_path)
    delay, n = 3.0, 8
    config = make_config(serving_dir, "rollout.mode=canary", "rollout.shadow_queue=2", "serve.max_body_bytes=100000")
    with running(config) as (server, logs):
        real = server.models[NAME].loaded[2]
        slow = {k: _Wrapped(f, delay) for k, f in real.signatures.items()}
        server.models[NAME].loaded = {**server.models[NAME].loaded, 2: Model(**{**real._asdict(), "signatures": slow})}
        started = time.monotonic()
        answers = [post(server.url, PREDICT) for _ in range(n)]
        elapsed = time.monotonic() - started
        assert all(status == 200 for status, _, _ in answers)
        stats = server.shadow.stats()
        with capsys.disabled():
            print(f"slow canary ({delay} s a request): {n} answers in {elapsed:.2f} s, slowest "
                  f"{max(t for _, _, t in answers) * 1000:.0f} ms; shadow {stats}")
        assert elapsed < delay  # no answer waited for the canary
        # one in the worker and two queued at most; the rest dropped at once, counted
        assert stats["dropped"] >= (n - 3) * len(TEXTS)
    stats = server.shadow.stats()  # shutdown scored what was queued
    assert stats["scored"] + stats["dropped"] == n * len(TEXTS) and stats["scored"] <= 3 * len(TEXTS)
    frame = read_requests(os.path.join(tmp_path, "requests"))
    assert len(frame) == n * len(TEXTS)  # every answer logged, shadowed or not
    assert frame.groupby("shadow").size().to_dict() == {"dropped": stats["dropped"], "scored": stats["scored"]}
    assert any("queue full" in line for line in logs)
    # the reversed canary disagrees: the verdict fails (exit 6)
    args = ["canary", "--work-dir", str(tmp_path), "--since", "2000-01-01T00:00", "--set", "rollout.min_requests=4"]
    assert cli.main(args) == 6
    assert "agreement" in capsys.readouterr().err


def test_a_promote_is_followed_under_load_with_no_failed_request(model_dir, tmp_path):  # noqa: F811
    from ops.pipeline.promote import promote

    serving_dir = shadow_dir(model_dir, tmp_path)
    config = make_config(serving_dir, "rollout.mode=canary", "serve.max_body_bytes=100000")
    with running(config) as (server, logs):
        results, stop = [], threading.Event()

        def load():
            while not stop.is_set():
                results.append(post(server.url, PREDICT)[0])

        client = threading.Thread(target=load)
        client.start()
        try:
            time.sleep(1)
            moved = time.monotonic()
            promote(config, "test: promote under load")
            took = time.monotonic() - moved
            while server.rollout(NAME) != (2, None) and time.monotonic() - moved < 30:
                time.sleep(0.05)
            followed = time.monotonic() - moved
            time.sleep(1)
        finally:
            stop.set()
            client.join()
    print(f"promote took {took:.2f} s, followed {followed:.2f} s after it began (serve.poll_seconds 0.2); "
          f"{len(results)} requests, "
          f"{sum(s != 200 for s in results)} failed")
    assert server.rollout(NAME) == (2, None) and followed < 2
    assert results and set(results) == {200}
    frame = read_requests(os.path.join(tmp_path, "requests"))
    assert set(frame[frame["shadow"] == "scored"]["version"].astype(str)) == {"1"}  # before: v1, shadowed by v2
    last = frame.iloc[-1]
    assert (str(last["version"]), last["shadow"]) == ("2", "")  # after: v2 alone, nothing to shadow


def test_a_moved_project_serves_its_canary_from_where_it_is_now(model_dir, tmp_path):  # noqa: F811
    """The model config names the serving dir as it was when written; moved, `serve` reads the versions where
    the file is now (until the next push, promote or rollback rewrites it)."""
    old = shadow_dir(model_dir, tmp_path / "old")
    os.rename(tmp_path / "old", tmp_path / "new")
    serving_dir = os.path.join(tmp_path, "new", "serving")
    assert old in open(rollout.config_path(serving_dir)).read()  # the stale path is still in the file
    with running(make_config(serving_dir, "rollout.mode=canary", "serve.max_body_bytes=100000")) as (server, _):
        assert server.rollout(NAME) == (1, 2)
        assert post(server.url, PREDICT)[0] == 200
