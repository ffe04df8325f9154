"""The benchmark suite (`make bench`): one table of ratios, every figure measured in this one invocation.

  P1  full first run (wall) / the encoder's own time to embed the same texts (train + test, batch 64)
  P2  fully cached re-run / first run
  P3  embedding throughput inside Transform (texts / Transform's wall time) / direct batched encoder
  P4  served model vs the encoder alone: single-text p50 and p99 latency, batch-64 throughput; in-process
      (the SavedModel's serving_default signature) and through `transferline serve` (HTTP on loopback)
  P5  scaling: first-run wall time at 2x and 4x the data / at 1x (1x = a quarter of TREC's training set)
Peak RSS is given for each: of the largest process of a run (the runner or a Beam worker), of the bench
process for in-process steps, of the server for `serve`. Ratios are what to compare across commits:
the machine is shared and noisy, absolute seconds are not. Writes bench/results/suite.json.
Takes ~8 minutes on 2 cores. Usage: python bench/suite.py [--data DIR] [--test-data DIR] [--out FILE]
"""
import argparse
import csv
import glob
import http.client
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
warnings.filterwarnings("ignore", category=FutureWarning)  # Google client libraries on Python 3.11's end of life
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)


def rows_under(root, pattern):
    out = []
    for path in sorted(glob.glob(os.path.join(root, pattern))):
        with open(path, newline="", encoding="utf-8") as f:
            out += [{"text": r["text"], "label": r["label"]} for r in csv.DictReader(f)]
    return out


def write_span(root, rows):
    os.makedirs(os.path.join(root, "span-1"), exist_ok=True)
    with open(os.path.join(root, "span-1", "questions.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return root


# Runs a command and writes the peak RSS (KB) of its largest process to argv[1]. The launcher is tiny, so its
# children's counts are their own: a child forked from this (large) bench process would start its count
# at the bench's size, which survives exec.
_LAUNCHER = """import resource, signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGTERM, lambda *_: child.terminate())
code = child.wait()
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def launch(cmd, rss_file, **kwargs):
    return subprocess.Popen([sys.executable, "-c", _LAUNCHER, rss_file, *cmd], cwd=REPO, **kwargs)


def peak_rss_mb(rss_file):
    with open(rss_file) as f:
        return int(f.read()) / 1024


def measured(cmd):
    """Runs cmd; (wall seconds, peak RSS MB of its largest process, its stdout)."""
    with tempfile.TemporaryDirectory() as tmp:
        rss = os.path.join(tmp, "rss")
        start = time.perf_counter()
        result = launch(cmd, rss, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = result.communicate()
        wall = time.perf_counter() - start
        if result.returncode:
            sys.exit(f"{' '.join(cmd[:5])} failed:\n{err[-3000:]}")
        return wall, peak_rss_mb(rss), out


def pipeline_run(work_dir, data, test_data):
    """One `transferline run` in a fresh process; (wall s, peak RSS MB, its summary.json)."""
    wall, rss, out = measured([sys.executable, "-m", "ops.cli", "run", "--work-dir", work_dir, "--data", data,
                               "--set", f"paths.test_data_dir={test_data}"])
    line = next(l for l in out.splitlines() if l.strip().startswith("summary: "))
    with open(line.split("summary: ", 1)[1].strip()) as f:
        return wall, rss, json.load(f)


def percentiles(seconds):
    ms = sorted(s * 1000 for s in seconds)
    return {"p50_ms": statistics.median(ms), "p99_ms": ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]}


def latency_and_throughput(call, texts, singles=200, batch=64, repeats=3):
    """Single-text latency percentiles over `singles` calls, and batch-`batch` throughput (best of repeats)."""
    call(texts[:batch])  # warm-up: tracing, thread pools
    times = []
    for t in texts[:singles]:
        start = time.perf_counter()
        call([t])
        times.append(time.perf_counter() - start)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(texts), batch):
            call(texts[i:i + batch])
        best = min(best, time.perf_counter() - start)
    return {**percentiles(times), "batch_texts_per_s": len(texts) / best}


def self_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def through_serve(work_dir, texts):
    """P4 over HTTP: `transferline serve` in its own process, TF Serving's REST predict API."""
    port = free_port()
    log, rss = tempfile.TemporaryFile("w+"), os.path.join(work_dir, "serve.rss")
    proc = launch([sys.executable, "-m", "ops.cli", "serve", "--work-dir", work_dir, "--port", str(port)],
                  rss, stdout=subprocess.DEVNULL, stderr=log, text=True)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    deadline = time.monotonic() + 180
    while True:  # wait (bounded) for the model to be loaded
        try:
            conn.request("GET", "/v1/models/transferline")
            response = conn.getresponse()
            body = json.loads(response.read())
            if response.status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE":
                break
        except (OSError, http.client.HTTPException, KeyError, ValueError):
            conn.close()
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            log.seek(0)
            sys.exit(f"`transferline serve` did not come up:\n{log.read()[-3000:]}")
        time.sleep(0.5)

    def call(batch):
        conn.request("POST", "/v1/models/transferline:predict", body=json.dumps({"instances": batch}),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(payload[:500])
        return payload

    try:
        result = latency_and_throughput(call, texts)
    finally:
        conn.close()
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    result["server_peak_rss_mb"] = peak_rss_mb(rss)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(REPO, "data", "trec"))
    parser.add_argument("--test-data", default=os.path.join(REPO, "data", "trec-test"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "suite.json"))
    args = parser.parse_args()

    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401

    from components.encoder import build_embedded_encoder
    from ops.predict import newest_served_model

    train = rows_under(args.data, "span-*/*.csv")
    test_texts = [r["text"] for r in rows_under(args.test_data, "*.csv")]
    texts = [r["text"] for r in train] + test_texts
    r = {"train_texts": len(train), "test_texts": len(test_texts), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        print("P1/P2: full first run, then the cached re-run ...", file=sys.stderr, flush=True)
        work = os.path.join(tmp, "full")
        r["first_run_s"], r["first_run_rss_mb"], summary = pipeline_run(work, args.data, args.test_data)
        r["cached_run_s"], r["cached_run_rss_mb"], _ = pipeline_run(work, args.data, args.test_data)
        r["durations_s"], r["gate_accuracy"] = summary["durations_s"], summary["metrics"]["accuracy"]

        print("P5: runs at 1x (a quarter) and 2x (half) of the data ...", file=sys.stderr, flush=True)
        shuffled = random.Random(0).sample(train, len(train))
        for name, n in (("1x", len(train) // 4), ("2x", len(train) // 2)):
            data = write_span(os.path.join(tmp, f"data-{name}"), shuffled[:n])
            r[f"run_{name}_s"], r[f"run_{name}_rss_mb"], _ = pipeline_run(os.path.join(tmp, name), data,
                                                                          args.test_data)
            r[f"rows_{name}"] = n
        r["run_4x_s"], r["rows_4x"] = r["first_run_s"], len(train)

        print("P1/P3/P4: the encoder alone and the served model, in-process ...", file=sys.stderr, flush=True)
        encoder = hub.load(build_embedded_encoder(log=lambda m: None))

        def embed(batch):
            return encoder(tf.constant(batch)).numpy()

        embed(texts[:64])
        start = time.perf_counter()
        for i in range(0, len(texts), 64):
            embed(texts[i:i + 64])
        r["encoder_all_texts_s"] = time.perf_counter() - start
        r["encoder"] = latency_and_throughput(embed, test_texts)
        r["encoder_rss_mb"] = self_rss()
        serve = tf.saved_model.load(newest_served_model(os.path.join(work, "serving"))).signatures[names.SERVING_DEFAULT]
        r["served"] = latency_and_throughput(lambda b: serve(text=tf.constant(b))["probabilities"].numpy(), test_texts)
        r["served_rss_mb"] = self_rss()

        print("P4: through `transferline serve` ...", file=sys.stderr, flush=True)
        r["http"] = through_serve(work, test_texts)

    r["transform_texts_per_s"] = len(train) / r["durations_s"]["Transform"]
    r["direct_encoder_texts_per_s"] = len(texts) / r["encoder_all_texts_s"]
    ratios = {
        "P1_first_run_over_encoder": r["first_run_s"] / r["encoder_all_texts_s"],
        "P2_cached_over_first": r["cached_run_s"] / r["first_run_s"],
        "P3_transform_over_direct_throughput": r["transform_texts_per_s"] / r["direct_encoder_texts_per_s"],
        "P4a_served_p50_over_encoder": r["served"]["p50_ms"] / r["encoder"]["p50_ms"],
        "P4b_served_p99_over_encoder": r["served"]["p99_ms"] / r["encoder"]["p99_ms"],
        "P4c_served_batch64_throughput_over_encoder": r["served"]["batch_texts_per_s"] / r["encoder"]["batch_texts_per_s"],
        "P4d_http_p50_over_in_process": r["http"]["p50_ms"] / r["served"]["p50_ms"],
        "P4e_http_p99_over_in_process": r["http"]["p99_ms"] / r["served"]["p99_ms"],
        "P4f_http_batch64_throughput_over_in_process": r["http"]["batch_texts_per_s"] / r["served"]["batch_texts_per_s"],
        "P5a_run_2x_over_1x": r["run_2x_s"] / r["run_1x_s"],
        "P5b_run_4x_over_1x": r["run_4x_s"] / r["run_1x_s"],
    }
    r["ratios"] = ratios
    e, s, h = r["encoder"], r["served"], r["http"]
    table = [
        ("P1 full first run / encoder alone", f"{r['first_run_s']:.1f} s / {r['encoder_all_texts_s']:.1f} s",
         ratios["P1_first_run_over_encoder"], f"{r['first_run_rss_mb']:.0f} MB"),
        ("P2 cached re-run / first run", f"{r['cached_run_s']:.1f} s / {r['first_run_s']:.1f} s",
         ratios["P2_cached_over_first"], f"{r['cached_run_rss_mb']:.0f} MB"),
        ("P3 Transform / direct encoder throughput",
         f"{r['transform_texts_per_s']:.0f} / {r['direct_encoder_texts_per_s']:.0f} texts/s",
         ratios["P3_transform_over_direct_throughput"], f"{r['first_run_rss_mb']:.0f} MB"),
        ("P4 served / encoder, 1-text p50", f"{s['p50_ms']:.1f} / {e['p50_ms']:.1f} ms",
         ratios["P4a_served_p50_over_encoder"], f"{r['served_rss_mb']:.0f} MB"),
        ("P4 served / encoder, 1-text p99", f"{s['p99_ms']:.1f} / {e['p99_ms']:.1f} ms",
         ratios["P4b_served_p99_over_encoder"], f"{r['served_rss_mb']:.0f} MB"),
        ("P4 served / encoder, batch-64 throughput",
         f"{s['batch_texts_per_s']:.0f} / {e['batch_texts_per_s']:.0f} texts/s",
         ratios["P4c_served_batch64_throughput_over_encoder"], f"{r['served_rss_mb']:.0f} MB"),
        ("P4 via serve / in-process, 1-text p50", f"{h['p50_ms']:.1f} / {s['p50_ms']:.1f} ms",
         ratios["P4d_http_p50_over_in_process"], f"{h['server_peak_rss_mb']:.0f} MB"),
        ("P4 via serve / in-process, 1-text p99", f"{h['p99_ms']:.1f} / {s['p99_ms']:.1f} ms",
         ratios["P4e_http_p99_over_in_process"], f"{h['server_peak_rss_mb']:.0f} MB"),
        ("P4 via serve / in-process, batch-64",
         f"{h['batch_texts_per_s']:.0f} / {s['batch_texts_per_s']:.0f} texts/s",
         ratios["P4f_http_batch64_throughput_over_in_process"], f"{h['server_peak_rss_mb']:.0f} MB"),
        ("P5 run at 2x / 1x data", f"{r['run_2x_s']:.1f} s / {r['run_1x_s']:.1f} s", ratios["P5a_run_2x_over_1x"],
         f"{r['run_2x_rss_mb']:.0f} MB"),
        ("P5 run at 4x / 1x data", f"{r['run_4x_s']:.1f} s / {r['run_1x_s']:.1f} s", ratios["P5b_run_4x_over_1x"],
         f"{r['first_run_rss_mb']:.0f} MB"),
    ]
    print(f"{r['train_texts']} training + {r['test_texts']} test texts, {r['cpus']} CPUs; first run's gate "
          f"accuracy {r['gate_accuracy']:.4f}; 1x/2x/4x = {r['rows_1x']}/{r['rows_2x']}/{r['rows_4x']} rows")
    print(f"| {'measure':<42} | {'figures':>28} | {'ratio':>7} | {'peak RSS':>9} |")
    print(f"|{'-' * 44}|{'-' * 30}|{'-' * 9}|{'-' * 11}|")
    for name, figures, ratio, rss in table:
        print(f"| {name:<42} | {figures:>28} | {ratio:>7.3f} | {rss:>9} |")
    print("first run per component (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["durations_s"].items()))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(r, f, indent=2)
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
