"""What the request log costs a request: `transferline serve` (in-process ModelServer, HTTP on loopback) with
the log on and off, same model, same run, interleaved rounds (the machine is shared: alternating cancels drift).

Single-text :predict p50/p99 and batch-64 p50, log on vs off. Writes bench/results/request_log.json.
Usage: python bench/request_log_overhead.py --work-dir WORK (a work dir with a pushed model) [--rounds 4]
"""
import argparse
import csv
import http.client
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def timed_calls(url, bodies):
    host, port = url.replace("http://", "").split(":")
    conn, out = http.client.HTTPConnection(host, int(port), timeout=60), []
    for body in bodies:
        t0 = time.perf_counter()
        conn.request("POST", "/v1/models/transferline:predict", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        out.append(time.perf_counter() - t0)
    conn.close()
    return out


def main():
    from ops.serving.serve import ModelServer
    from pipelines.config_loading import load_config

    p = argparse.ArgumentParser()
    p.add_argument("--work-dir", required=True)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--singles", type=int, default=100)
    p.add_argument("--out", default=os.path.join(HERE, "results", "request_log.json"))
    a = p.parse_args()
    with open(os.path.join(os.path.dirname(HERE), "data", "trec-test", "questions.csv"), newline="") as f:
        texts = [r["text"] for r in csv.DictReader(f)]
    singles = [json.dumps({"instances": [t]}).encode() for t in texts[:a.singles]]
    batches = [json.dumps({"instances": texts[i:i + 64]}).encode() for i in range(0, 64 * 5, 64)]
    log_dir = tempfile.mkdtemp()
    servers = {}
    for mode in ("off", "on"):
        config = load_config(None, [f"paths.work_dir={a.work_dir}", "serve.port=0",
                                    f"request_log.enabled={mode == 'on'}", f"request_log.dir={log_dir}"])
        servers[mode] = ModelServer(config, log=lambda m: None).start()
    times = {m: {"single": [], "batch": []} for m in servers}
    for r in range(a.rounds):
        for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
            times[mode]["single"] += timed_calls(servers[mode].url, singles)
            times[mode]["batch"] += timed_calls(servers[mode].url, batches)
    for server in servers.values():
        server.shutdown()
    stats = servers["on"].request_log.stats()
    result = {m: {"single_p50_ms": 1000 * statistics.median(t["single"]),
                  "single_p99_ms": 1000 * percentile(t["single"], 0.99),
                  "batch64_p50_ms": 1000 * statistics.median(t["batch"]), "requests": len(t["single"]) + len(t["batch"])}
              for m, t in times.items()}
    result["log"] = stats
    result["ratios_on_over_off"] = {k: result["on"][k] / result["off"][k] for k in result["on"] if k.endswith("_ms")}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    for k, v in result["ratios_on_over_off"].items():
        print(f"{k:16} off {result['off'][k]:7.2f} ms  on {result['on'][k]:7.2f} ms  on/off {v:.3f}")
    print(f"log: {stats}")


if __name__ == "__main__":
    main()
