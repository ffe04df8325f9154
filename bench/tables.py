"""The suite's ratios and its printed tables (bench/suite.py measures; this only computes and formats)."""
from __future__ import annotations

# Targets of issue 18 (README, "Benchmarks"): P1 <= 60 s wall or <= 25x the encoder; P2 <= 0.05;
# P3 >= 0.8; P6 <= 1.5; issue 34: P7 <= 3.
TARGETS = {"P1_first_run_over_encoder": ("<=", 25.0), "P2_cached_over_first": ("<=", 0.05),
           "P3_transform_over_direct_throughput": (">=", 0.8), "P6_peak_rss_largest_over_smallest": ("<=", 1.5),
           "P7_first_run_over_encoder_same_texts": ("<=", 3.0),
           "P1cpu_first_run_over_encoder": ("<=", 25.0), "P3cpu_transform_over_direct_per_cpu_s": (">=", 0.8)}


def ratios(r: dict, sizes: list[int]) -> dict:
    runs, lo, hi = r["runs"], sizes[0], sizes[-1]
    e, s, h = r["encoder"], r["served"], r["http"]
    out = {
        "P1_first_run_over_encoder": runs["first"]["wall_s"] / r["encoder_all_texts_s"],
        "P2_cached_over_first": runs["cached"]["wall_s"] / runs["first"]["wall_s"],
        "P3_transform_over_direct_throughput": r["transform_texts_per_s"] / r["direct_encoder_texts_per_s"],
        # The same two on CPU seconds (every process, every thread): what a shared machine's load barely moves.
        "P1cpu_first_run_over_encoder": sum(p["cpu_s"] for p in runs["first"]["phases"].values())
        / r["encoder_all_texts_cpu_s"],
        "P3cpu_transform_over_direct_per_cpu_s": r["transform_texts_per_cpu_s"] / r["direct_encoder_texts_per_cpu_s"],
        "P4a_served_p50_over_encoder": s["p50_ms"] / e["p50_ms"],
        "P4b_served_p99_over_encoder": s["p99_ms"] / e["p99_ms"],
        "P4c_served_batch64_throughput_over_encoder": s["batch_texts_per_s"] / e["batch_texts_per_s"],
        "P4d_http_p50_over_in_process": h["p50_ms"] / s["p50_ms"],
        "P4e_http_p99_over_in_process": h["p99_ms"] / s["p99_ms"],
        "P4f_http_batch64_throughput_over_in_process": h["batch_texts_per_s"] / s["batch_texts_per_s"],
        "P6_peak_rss_largest_over_smallest": runs[f"rows_{hi}"]["peak_rss_mb"] / runs[f"rows_{lo}"]["peak_rss_mb"],
    }
    for n in sizes[1:]:
        out[f"P5_run_{n}_over_{lo}"] = runs[f"rows_{n}"]["wall_s"] / runs[f"rows_{lo}"]["wall_s"]
    out["P7_first_run_over_encoder_same_texts"] = runs[f"rows_{hi}"]["wall_s"] / p7_encoder_s(r, hi)
    return out


def p7_encoder_s(r: dict, n: int) -> float:
    """The encoder's own time on the n texts of the corpus: n at its direct rate on a sample of them
    (--encoder-sample texts of the same corpus, batch 64; per text, so it scales with n)."""
    return n / r["direct_encoder_texts_per_s"]


def gate_accuracy_by_rows(runs: dict, sizes: list[int]) -> str:
    """Quality at each size: the first run's gate accuracy (eval split + held-out test) and its Trainer's time."""
    cells = [f"{n:,} rows {runs[f'rows_{n}']['summary']['metrics']['accuracy']:.4f} "
             f"(Trainer {runs[f'rows_{n}']['phases'].get('Trainer', {}).get('wall_s', 0):.0f} s)" for n in sizes]
    return "gate accuracy by size: " + ", ".join(cells)


def _met(key: str, value: float, wall_s: float = 0.0) -> str:
    if key == "P1_first_run_over_encoder" and wall_s <= 60:
        return "met (<= 60 s)"
    if key not in TARGETS:
        return ""
    op, bound = TARGETS[key]
    return "met" if (value <= bound if op == "<=" else value >= bound) else f"NOT met ({op} {bound})"


def render(r: dict, sizes: list[int]) -> str:
    runs, q, lo, hi = r["runs"], r["ratios"], sizes[0], sizes[-1]
    e, s, h = r["encoder"], r["served"], r["http"]
    first, cached = runs["first"], runs["cached"]
    p3 = runs[f"rows_{r['p3_rows']}"]
    mb = lambda run: f"{run['peak_rss_mb']:,.0f} MB"  # noqa: E731
    rows = [
        ("P1 full first run / encoder alone", f"{first['wall_s']:.1f} s / {r['encoder_all_texts_s']:.1f} s",
         "P1_first_run_over_encoder", mb(first)),
        ("P1 same, CPU s (all processes)",
         f"{sum(p['cpu_s'] for p in first['phases'].values()):.1f} / {r['encoder_all_texts_cpu_s']:.1f} CPU s",
         "P1cpu_first_run_over_encoder", mb(first)),
        ("P2 cached re-run / first run", f"{cached['wall_s']:.1f} s / {first['wall_s']:.1f} s",
         "P2_cached_over_first", mb(cached)),
        (f"P3 Transform / direct encoder, {r['p3_rows']:,} rows",
         f"{r['transform_texts_per_s']:,.0f} / {r['direct_encoder_texts_per_s']:,.0f} texts/s",
         "P3_transform_over_direct_throughput", mb(p3)),
        ("P3 same, texts per CPU s",
         f"{r['transform_texts_per_cpu_s']:,.0f} / {r['direct_encoder_texts_per_cpu_s']:,.0f} texts/CPU s",
         "P3cpu_transform_over_direct_per_cpu_s", mb(p3)),
        ("P4 served / encoder, 1-text p50", f"{s['p50_ms']:.1f} / {e['p50_ms']:.1f} ms",
         "P4a_served_p50_over_encoder", f"{r['served_rss_mb']:,.0f} MB"),
        ("P4 served / encoder, 1-text p99", f"{s['p99_ms']:.1f} / {e['p99_ms']:.1f} ms",
         "P4b_served_p99_over_encoder", f"{r['served_rss_mb']:,.0f} MB"),
        ("P4 served / encoder, batch-64 throughput",
         f"{s['batch_texts_per_s']:,.0f} / {e['batch_texts_per_s']:,.0f} texts/s",
         "P4c_served_batch64_throughput_over_encoder", f"{r['served_rss_mb']:,.0f} MB"),
        ("P4 via serve / in-process, 1-text p50", f"{h['p50_ms']:.1f} / {s['p50_ms']:.1f} ms",
         "P4d_http_p50_over_in_process", f"{h['server_peak_rss_mb']:,.0f} MB"),
        ("P4 via serve / in-process, 1-text p99", f"{h['p99_ms']:.1f} / {s['p99_ms']:.1f} ms",
         "P4e_http_p99_over_in_process", f"{h['server_peak_rss_mb']:,.0f} MB"),
        ("P4 via serve / in-process, batch-64", f"{h['batch_texts_per_s']:,.0f} / {s['batch_texts_per_s']:,.0f} "
         "texts/s", "P4f_http_batch64_throughput_over_in_process", f"{h['server_peak_rss_mb']:,.0f} MB"),
    ]
    for n in sizes[1:]:
        rows.append((f"P5 first run at {n:,} / {lo:,} rows",
                     f"{runs[f'rows_{n}']['wall_s']:.1f} s / {runs[f'rows_{lo}']['wall_s']:.1f} s",
                     f"P5_run_{n}_over_{lo}", mb(runs[f"rows_{n}"])))
    rows.append((f"P6 peak RSS at {hi:,} / {lo:,} rows",
                 f"{runs[f'rows_{hi}']['peak_rss_mb']:,.0f} / {runs[f'rows_{lo}']['peak_rss_mb']:,.0f} MB",
                 "P6_peak_rss_largest_over_smallest", mb(runs[f"rows_{hi}"])))
    rows.append((f"P7 first run at {hi:,} / encoder, same texts",
                 f"{runs[f'rows_{hi}']['wall_s']:.1f} s / {p7_encoder_s(r, hi):.1f} s",
                 "P7_first_run_over_encoder_same_texts", mb(runs[f"rows_{hi}"])))
    out = [f"{r['train_texts']:,} training + {r['test_texts']} test texts, {r['cpus']} CPUs, bench "
           f"{r['bench_s'] / 60:.1f} min; P1 with {r['p1_sets'] or 'the default trainer'}; first run's gate "
           f"accuracy {r['gate_accuracy']:.4f}",
           f"| {'measure':<40} | {'figures':>28} | {'ratio':>7} | {'target':<18} | {'peak RSS':>9} |",
           f"|{'-' * 42}|{'-' * 30}|{'-' * 9}|{'-' * 20}|{'-' * 11}|"]
    out += [f"| {name:<40} | {fig:>28} | {q[key]:>7.3f} | {_met(key, q[key], first['wall_s']):<18} | {rss:>9} |"
            for name, fig, key, rss in rows]
    out.append(gate_accuracy_by_rows(runs, sizes))
    if "first_default_mode" in runs:
        out.append(f"first run with the default trainer mode: {runs['first_default_mode']['wall_s']:.1f} s")
    out.append("")
    out.append(per_component(runs))
    return "\n".join(out)


def per_component(runs: dict) -> str:
    """wall s / CPU s / peak RSS MB of the largest process, per phase, for every run side by side."""
    names = list(dict.fromkeys(p for run in runs.values() for p in run["phases"]))
    names = [p for p in names if any(run["phases"].get(p, {}).get("cpu_s", 0) >= 0.5
                                     or run["phases"].get(p, {}).get("wall_s", 0) >= 0.5 for run in runs.values())]
    out = ["per phase: wall s / CPU s / peak RSS MB (largest process)",
           f"| {'phase':<20} | " + " | ".join(f"{k:>20}" for k in runs) + " |",
           f"|{'-' * 22}|" + "|".join("-" * 22 for _ in runs) + "|"]
    for p in names:
        cells = []
        for run in runs.values():
            ph = run["phases"].get(p)
            cells.append(f"{ph['wall_s']:.0f} / {ph['cpu_s']:.0f} / {ph['peak_rss_mb']:,.0f}" if ph else "-")
        out.append(f"| {p:<20} | " + " | ".join(f"{c:>20}" for c in cells) + " |")
    return "\n".join(out)
