"""`serve --monitoring` (issue 35 item 3): Prometheus text at TF Serving's /monitoring/prometheus/metrics, under
TF Serving's metric and label names (ops/serving/metrics.py cites the sources), plus ours per version. Parsed
with prometheus_client's own parser; counts asserted after a known number of requests."""
import json
import os
import types

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ops.cli import build_parser
from ops.serving.metrics import PATH, Metrics
from serve_helpers import (PREDICT, make_config, model_dir, push, running, send, served_version,  # noqa: F401
                           serving_dir_with, wait_for)


def samples(page: str) -> dict:
    """{(sample name, frozenset of labels): value} of a metrics page."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(page) for s in family.samples}


def value(page_samples, name, **labels):
    return page_samples.get((name, frozenset(labels.items())), 0)


def test_tf_servings_names_and_format():
    """prometheus_exporter.cc:53-142: ':' for '/', TYPE lines only, counters without _total, cumulative buckets."""
    metrics = Metrics("m")
    metrics.request("m", "predict", "OK", 0.002, version=3)
    metrics.request("m", "predict", "OK", 0.2, version=3)
    metrics.request("x", "", "NOT_FOUND", 0.001)
    metrics.predicted(3, instances=5, truncated=2, seconds=0.001)
    page = metrics.page().decode()
    assert '# TYPE :tensorflow:serving:request_count counter\n:tensorflow:serving:request_count{model_name="m",' \
           'status="OK"} 2\n' in page
    assert ':tensorflow:serving:request_count{model_name="x",status="NOT_FOUND"} 1\n' in page
    assert "# HELP :tensorflow" not in page and ":tensorflow:serving:request_count_total" not in page
    latency = ':tensorflow:serving:request_latency_bucket{model_name="m",API="predict",entrypoint="REST",'
    assert f'{latency}le="10"}} 0\n' in page and f'{latency}le="3570.47"}} 1\n' in page  # 2,000 µs
    assert f'{latency}le="+Inf"}} 2\n' in page  # 33 limits (Buckets::Exponential(10, 1.8, 33)), then +Inf
    assert page.count(latency) == 34 and ':tensorflow:serving:request_latency_count{model_name="m",API="predict",' \
                                          'entrypoint="REST"} 2\n' in page
    got = samples(page)
    assert value(got, "transferline_serve_requests_total", model_name="m", version="3", api="predict",
                 status="OK") == 2
    assert value(got, "transferline_serve_instances_total", model_name="m", version="3") == 5
    assert value(got, "transferline_serve_texts_truncated_total", model_name="m", version="3") == 2
    assert value(got, ":tensorflow:serving:runtime_latency_count", model_name="m", API="Predict", runtime="TF1") == 1


def test_the_flag_and_the_knob():
    args = build_parser().parse_args(["serve", "--monitoring"])
    assert args.monitoring is True and build_parser().parse_args(["serve"]).monitoring is None


@pytest.fixture(scope="module")
def monitored(model_dir, tmp_path_factory):
    serving_dir = serving_dir_with(model_dir, tmp_path_factory.mktemp("metrics"))
    with running(make_config(serving_dir, "serve.monitoring=true", "serve.max_body_bytes=100000")) as (s, logs):
        yield types.SimpleNamespace(url=s.url, logs=logs, app=s, serving_dir=serving_dir)


def scrape(url):
    status, headers, raw = send(url, "GET", PATH)
    assert status == 200 and headers["content-type"] == "text/plain"  # http_server.cc:92
    return raw.decode()


def predict(url, path=PREDICT, texts=("Who wrote Hamlet ?",)):
    return send(url, "POST", path, json.dumps({"instances": list(texts)}).encode())[0]


@pytest.mark.slow
def test_counts_per_request_and_per_version(monitored, model_dir):
    url, before = monitored.url, samples(scrape(monitored.url))
    assert value(before, ":tensorflow:cc:saved_model:load_attempt_count_total",
                 model_path=os.path.join(monitored.serving_dir, "1"), status="success") == 1
    assert value(before, ":tensorflow:cc:saved_model:load_latency_total",
                 model_path=os.path.join(monitored.serving_dir, "1")) > 0
    assert value(before, "transferline_serve_version_load_seconds", model_name="transferline", version="1") > 0
    assert value(before, "transferline_serve_served_version", model_name="transferline") == 1

    assert [predict(url, texts=["a", "b", "c"]) for _ in range(4)] == [200] * 4  # 4 requests, 12 instances
    assert predict(url, "/v1/models/other:predict") == 404
    assert send(url, "POST", PREDICT, b'{"instances": [5]}')[0] == 400
    assert send(url, "GET", "/v1/models/transferline/metadata")[0] == 200
    assert send(url, "GET", "/nowhere")[0] == 404  # libevent's page: never reaches the handler, not counted
    after = samples(scrape(url))

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(":tensorflow:serving:request_count_total", model_name="transferline", status="OK") == 5
    assert delta(":tensorflow:serving:request_count_total", model_name="transferline", status="INVALID_ARGUMENT") == 1
    assert delta(":tensorflow:serving:request_count_total", model_name="other", status="NOT_FOUND") == 1
    assert delta(":tensorflow:serving:request_latency_count", model_name="transferline", API="predict",
                 entrypoint="REST") == 4
    assert delta(":tensorflow:serving:request_latency_count", model_name="transferline", API="",
                 entrypoint="REST") == 1  # a GET: no verb
    assert delta(":tensorflow:serving:runtime_latency_count", model_name="transferline", API="Predict",
                 runtime="TF1") == 4
    assert delta("transferline_serve_requests_total", model_name="transferline", version="1", api="predict",
                 status="OK") == 4
    assert delta("transferline_serve_requests_total", model_name="transferline", version="1", api="predict",
                 status="INVALID_ARGUMENT") == 1  # the model was found, then the request refused
    assert delta("transferline_serve_instances_total", model_name="transferline", version="1") == 12
    # the request log's writer thread is behind the answers: wait for it
    wait_for(lambda: value(samples(scrape(url)), "transferline_request_log_written_instances_total")
             >= value(after, "transferline_serve_instances_total", model_name="transferline", version="1"),
             "the request log to catch up", timeout=30)
    assert value(after, "transferline_request_log_dropped_instances_total") == 0

    push(model_dir, monitored.serving_dir, 2)  # a push: counted under the new version from then on
    wait_for(lambda: served_version(url) == "2", "version 2 to be served")
    assert [predict(url) for _ in range(3)] == [200] * 3
    final = samples(scrape(url))
    assert value(final, "transferline_serve_requests_total", model_name="transferline", version="2", api="predict",
                 status="OK") == 3
    assert value(final, "transferline_serve_requests_total", model_name="transferline", version="1", api="predict",
                 status="OK") == value(after, "transferline_serve_requests_total", model_name="transferline",
                                       version="1", api="predict", status="OK")
    assert value(final, "transferline_serve_served_version", model_name="transferline") == 2
    assert value(final, ":tensorflow:cc:saved_model:load_attempt_count_total",
                 model_path=os.path.join(monitored.serving_dir, "2"), status="success") == 1


@pytest.mark.slow
def test_without_monitoring_the_path_is_libevents_404(monitored):
    metrics, monitored.app.metrics = monitored.app.metrics, None
    try:
        status, headers, raw = send(monitored.url, "GET", PATH)
    finally:
        monitored.app.metrics = metrics
    assert status == 404 and headers["content-type"].startswith("text/html") and b"<H1>Not Found</H1>" in raw
