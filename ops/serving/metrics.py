"""`serve --monitoring`: Prometheus metrics at TF Serving's path, under TF Serving's names where it has them.

TF Serving (tensorflow/serving 2.16.1) exports TF's monitoring registry at /monitoring/prometheus/metrics when
its monitoring config enables Prometheus (model_servers/http_server.cc:224-239; util/prometheus_exporter.cc:
156-157). What it exports, and this stand-in counts the same way:

    :tensorflow:serving:request_count{model_name,status}          every /v1/ request, status the Status code's
        name, OK included (servables/tensorflow/util.cc:66-68,117-122; http_server.cc:201)
    :tensorflow:serving:request_latency{model_name,API,entrypoint} microseconds, answered (OK) requests only;
        API = the :verb (predict...) or "" for a GET, entrypoint REST (util.cc:80-89; http_server.cc:194-196)
    :tensorflow:serving:runtime_latency{model_name,API,runtime}    microseconds in the model, per :predict
        (util.cc:70-78; servables/tensorflow/predict_util.cc:106-113: API Predict, runtime TF1)
    :tensorflow:cc:saved_model:load_attempt_count{model_path,status} and load_latency{model_path} (a counter,
        microseconds): TF's SavedModel loader, which TF Serving loads versions with (tensorflow/cc/saved_model/
        loader.cc; both names are in this venv's libtensorflow_framework.so.2)

Names are TF's with every character outside [a-zA-Z0-9_] made ':' (GetPrometheusMetricName, prometheus_exporter.cc:
53-63); only TYPE lines, counters without a `_total` suffix, histograms with cumulative buckets whose limits are
TF's Buckets::Exponential(10, 1.8, 33) (prometheus_exporter.cc:65-142). prometheus_client cannot write a counter
without `_total`, so that part is written here; TF Serving also exports many TF-internal metrics, not emulated.
Ours, written by prometheus_client: transferline_serve_* (requests and instances per version, texts cut,
version load time, the version served) and transferline_request_log_* (the request log's written and dropped
instances).
"""
from __future__ import annotations

import bisect
import re
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily

PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath (prometheus_exporter.cc:156-157)
_LIMITS = [10 * 1.8 ** i for i in range(33)]  # Buckets::Exponential(10, 1.8, 33), then +Inf (DBL_MAX)


class _Tf:
    """One TF monitoring metric: a Counter<N> (ints) or a Sampler<N> (histograms), cells by label values."""

    def __init__(self, name: str, labels: tuple, histogram: bool = False):
        self.name = re.sub(r"[^a-zA-Z0-9_]", ":", name)  # GetPrometheusMetricName (prometheus_exporter.cc:53-63)
        self.labels, self.histogram, self.cells = labels, histogram, {}

    def add(self, values: tuple, amount: float) -> None:  # under Metrics' lock
        if not self.histogram:
            self.cells[values] = self.cells.get(values, 0) + int(amount)
            return
        buckets, total = self.cells.setdefault(values, ([0] * (len(_LIMITS) + 1), [0.0]))
        buckets[bisect.bisect_right(_LIMITS, amount)] += 1  # TF's Histogram::Add: the first limit above it
        total[0] += amount

    def lines(self) -> list[str]:
        """SerializeScalar / SerializeHistogram (prometheus_exporter.cc:65-142)."""
        out = [f"# TYPE {self.name} {'histogram' if self.histogram else 'counter'}"]
        for values, cell in sorted(self.cells.items()):
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(self.labels, values))
            if not self.histogram:
                out.append(f"{self.name}{{{labels}}} {cell}")
                continue
            buckets, total = cell
            count, prefix = 0, f"{self.name}_bucket{{{labels}{',' if labels else ''}"
            for i, n in enumerate(buckets):
                count += n
                out.append(f'{prefix}le="{"%.6g" % _LIMITS[i] if i < len(_LIMITS) else "+Inf"}"}} {count}')
            out += [f"{self.name}_sum{{{labels}}} {'%.6g' % total[0]}", f"{self.name}_count{{{labels}}} {count}"]
        return out


def _escape(value) -> str:  # SanitizeLabelValue: only \ and " are escaped
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


class Metrics:
    """What `serve` counts; ``page()`` is the endpoint's body. Thread-safe; each call is cheap."""

    def __init__(self, model_name: str, request_log=None):
        self.model_name, self._lock = model_name, threading.Lock()
        self.request_count = _Tf("/tensorflow/serving/request_count", ("model_name", "status"))
        self.request_latency = _Tf("/tensorflow/serving/request_latency", ("model_name", "API", "entrypoint"), True)
        self.runtime_latency = _Tf("/tensorflow/serving/runtime_latency", ("model_name", "API", "runtime"), True)
        self.load_attempts = _Tf("/tensorflow/cc/saved_model/load_attempt_count", ("model_path", "status"))
        self.load_latency = _Tf("/tensorflow/cc/saved_model/load_latency", ("model_path",))
        self._tf = sorted([self.request_count, self.request_latency, self.runtime_latency, self.load_attempts,
                           self.load_latency], key=lambda m: m.name)  # TF's descriptor map is ordered by name
        self.registry = CollectorRegistry(auto_describe=True)
        r, name = self.registry, "transferline_serve_"
        self.requests = Counter(name + "requests", "Requests answered by a loaded version (:predict, metadata, ...), "
                                "by version and Status code", ("model_name", "version", "api", "status"), registry=r)
        self.instances = Counter(name + "instances", "Instances run through the model, by version",
                                 ("model_name", "version"), registry=r)
        self.truncated = Counter(name + "texts_truncated", "Texts cut to serve.max_text_chars characters",
                                 ("model_name", "version"), registry=r)
        self.load_seconds = Gauge(name + "version_load_seconds", "Wall time to load and warm up a version",
                                  ("model_name", "version"), registry=r)
        self.served = Gauge(name + "served_version", "The version answering requests (0: none)", ("model_name",),
                            registry=r)
        self.served.labels(model_name).set(0)
        if request_log is not None:
            r.register(_RequestLogCollector(request_log))

    def request(self, model_name: str, api: str, code: str, seconds: float, version: int | None = None,
                action: str | None = None, entrypoint: str = "REST") -> None:
        """One request under /v1/, as TF Serving's RestApiRequestDispatcher counts it (http_server.cc:194-201):
        ``api`` the :verb of a POST ("" for a GET); ``version`` the one that answered, if one was found, and
        ``action`` (predict, metadata, ...) for our per-version count; ``entrypoint`` GRPC for Predict, Classify
        and Regress over gRPC (prediction_service_impl.cc:52-59,92-99,121-128)."""
        with self._lock:
            self.request_count.add((model_name, code), 1)
            if code == "OK":
                self.request_latency.add((model_name, api, entrypoint), seconds * 1e6)
        if version is not None:
            self.requests.labels(model_name, str(version), action or api, code).inc()

    def predicted(self, version: int, instances: int, truncated: int, seconds: float) -> None:
        with self._lock:
            self.runtime_latency.add((self.model_name, "Predict", "TF1"), seconds * 1e6)
        self.instances.labels(self.model_name, str(version)).inc(instances)
        if truncated:
            self.truncated.labels(self.model_name, str(version)).inc(truncated)

    def loaded(self, version: int, path: str, seconds: float, ok: bool) -> None:
        """A version's load attempt (LoadSavedModel: loader.cc counts both, the latency of successes only)."""
        with self._lock:
            self.load_attempts.add((path, "success" if ok else "fail"), 1)
            if ok:
                self.load_latency.add((path,), seconds * 1e6)
        if ok:
            self.load_seconds.labels(self.model_name, str(version)).set(seconds)

    def serving(self, version: int | None) -> None:
        self.served.labels(self.model_name).set(version or 0)

    def page(self) -> bytes:
        with self._lock:
            tf = "\n".join(line for metric in self._tf for line in metric.lines()) + "\n"
        return tf.encode() + generate_latest(self.registry)


class _RequestLogCollector:
    """The request log's own counts (ops/serving/request_log.RequestLog.stats), read at each scrape."""

    def __init__(self, request_log):
        self.request_log = request_log

    def collect(self):
        stats = self.request_log.stats()
        for key, what in (("written", "written to the request log"),
                          ("dropped", "not logged: the writer's queue was full"),
                          ("sampled_out", "not logged: outside request_log.sample_rate")):
            family = CounterMetricFamily(f"transferline_request_log_{key}_instances", f"Instances {what}")
            family.add_metric([], stats.get(key, 0))
            yield family

    def describe(self):
        return []
