"""The benchmark suite (`make bench`): one table of ratios, every figure measured in this one invocation.

  P1  full first run on TREC (wall) / the encoder's own time to embed the same texts (train + test, batch 64)
  P2  fully cached re-run / first run
  P3  at 100k rows: embedding throughput inside Transform (rows / Transform's wall time) / the direct
      batched encoder on texts of the same corpus
  P4  served model vs the encoder alone: single-text p50 and p99 latency, batch-64 throughput; in-process
      (the SavedModel's serving_default signature) and through `transferline serve` (HTTP on loopback)
  P5  scaling: first-run wall time at 100k and 200k rows / at 25k (bench/corpus.py: TREC recombined; the
      same trainer.mode as P1)
  P6  peak RSS of the largest process at 200k rows / at 25k
  P7  first run at 200k rows (wall) / the encoder's own time on those texts (at its direct rate, P3's sample);
      with the gate accuracy and the Trainer's time at each size: quality must not drop as N grows
Every pipeline run is profiled by phase (bench/profile.py): wall s, CPU s and peak RSS per component.
Peak RSS of a run: its largest single process (the runner or a Beam worker), measured by a small launcher so
the bench's own size does not leak into it. Ratios are what to compare across commits: the machine is shared
and noisy, absolute seconds are not. Writes bench/results/suite.json.
Usage: python bench/suite.py [--sizes 25000,100000,200000] [--out FILE]
"""
import argparse
import csv
import glob
import http.client
import json
import os
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


def pipeline_run(work_dir, data, test_data, *sets):
    """One `transferline run` in a fresh process, profiled: {wall_s, peak_rss_mb, phases, summary}."""
    from bench.profile import profiled_run

    cmd = [sys.executable, "-m", "ops.cli", "run", "--work-dir", work_dir, "--data", data,
           "--set", f"paths.test_data_dir={test_data}", *[x for s in sets for x in ("--set", s)]]
    with tempfile.TemporaryDirectory() as tmp:
        rss = os.path.join(tmp, "rss")
        run = profiled_run([sys.executable, "-c", _LAUNCHER, rss, *cmd], REPO)
        if run["rc"]:
            sys.exit(f"{' '.join(cmd[3:9])} failed:\n{run['stderr'][-3000:]}")
        line = next(l for l in run["stdout"].splitlines() if l.strip().startswith("summary: "))
        with open(line.split("summary: ", 1)[1].strip()) as f:
            return {"wall_s": run["wall_s"], "peak_rss_mb": peak_rss_mb(rss), "phases": run["phases"],
                    "summary": json.load(f)}


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


def save(r, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(r, f, indent=2)


def encoder_seconds(embed, texts, batch=64):
    """(wall s, CPU s of this process: every TensorFlow thread) to embed texts in batches."""
    embed(texts[:batch])  # warm-up: tracing, thread pools
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(texts), batch):
        embed(texts[i:i + batch])
    return time.perf_counter() - start, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.join(REPO, "data", "trec"))
    parser.add_argument("--test-data", default=os.path.join(REPO, "data", "trec-test"))
    parser.add_argument("--sizes", default="25000,100000,200000", help="corpus sizes (rows) for P3, P5, P6")
    parser.add_argument("--encoder-sample", type=int, default=20000,
                        help="P3: texts of the 100k corpus the direct encoder embeds (throughput is per text)")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "suite.json"))
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]

    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401

    from bench import corpus, tables
    from components import names
    from components.encoder import build_embedded_encoder
    from ops.pipeline.scoring import newest_served_model
    from pipelines.config import TrainerConfig

    train = rows_under(args.data, "span-*/*.csv")
    test_texts = [r["text"] for r in rows_under(args.test_data, "*.csv")]
    texts = [r["text"] for r in train] + test_texts
    # P1 is asked with trainer.mode=head, where the config has that knob (else today's model is that head).
    head = ["trainer.mode=head"] if "mode" in TrainerConfig.__dataclass_fields__ else []
    r = {"train_texts": len(train), "test_texts": len(test_texts), "cpus": os.cpu_count(), "p1_sets": head,
         "runs": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        print("P1/P2: full first run, then the cached re-run ...", file=sys.stderr, flush=True)
        work = os.path.join(tmp, "full")
        r["runs"]["first"] = first = pipeline_run(work, args.data, args.test_data, *head)
        r["runs"]["cached"] = pipeline_run(work, args.data, args.test_data, *head)
        if head and TrainerConfig().mode != "head":
            r["runs"]["first_default_mode"] = pipeline_run(os.path.join(tmp, "default"), args.data, args.test_data)
        r["gate_accuracy"] = first["summary"]["metrics"]["accuracy"]

        for n in sizes:
            print(f"P3/P5/P6: first run on {n:,} rows (bench/corpus.py) ...", file=sys.stderr, flush=True)
            data = corpus.write(n, os.path.join(tmp, f"corpus-{n}"))
            # The same trainer as P1: these measure the data path's scaling; phase 2 (fine_tune) on this
            # recombined corpus would be most of the time and is measured by bench/finetune_speed.py.
            r["runs"][f"rows_{n}"] = pipeline_run(os.path.join(tmp, f"run-{n}"), data, args.test_data, *head)
            save(r, args.out + ".partial")  # what is measured so far, should a later step fail

        print("P1/P3/P4: the encoder alone and the served model, in-process ...", file=sys.stderr, flush=True)
        encoder = hub.load(build_embedded_encoder(log=lambda m: None))

        def embed(batch):
            return encoder(tf.constant(batch)).numpy()

        r["encoder_all_texts_s"], r["encoder_all_texts_cpu_s"] = encoder_seconds(embed, texts)
        p3_rows = 100000 if 100000 in sizes else sizes[len(sizes) // 2]
        sample = [row["text"] for row in corpus.texts(p3_rows)[:args.encoder_sample]]
        wall, cpu = encoder_seconds(embed, sample)
        r["direct_encoder_texts_per_s"], r["direct_encoder_texts_per_cpu_s"] = len(sample) / wall, len(sample) / cpu
        r["encoder"] = latency_and_throughput(embed, test_texts)
        r["encoder_rss_mb"] = self_rss()
        serve = tf.saved_model.load(newest_served_model(os.path.join(work, "serving"))).signatures[
            names.SERVING_DEFAULT]
        r["served"] = latency_and_throughput(lambda b: serve(text=tf.constant(b))["probabilities"].numpy(), test_texts)
        r["served_rss_mb"] = self_rss()

        print("P4: through `transferline serve` ...", file=sys.stderr, flush=True)
        r["http"] = through_serve(work, test_texts)

    p3 = r["runs"][f"rows_{p3_rows}"]
    r["p3_rows"] = p3_rows
    r["transform_texts_per_s"] = p3_rows / p3["phases"]["Transform"]["wall_s"]
    r["transform_texts_per_cpu_s"] = p3_rows / p3["phases"]["Transform"]["cpu_s"]
    r["bench_s"] = time.perf_counter() - started
    save(r, args.out)
    r["ratios"] = tables.ratios(r, sizes)
    save(r, args.out)
    print(tables.render(r, sizes))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
