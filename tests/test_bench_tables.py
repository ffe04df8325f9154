"""bench/tables.py: the suite's ratios and table from a made-up result (no run): P7 and quality per size."""
from bench import tables

SIZES = [25000, 200000]


def _run(wall, acc, trainer_s, rss):
    return {"wall_s": wall, "peak_rss_mb": rss, "summary": {"metrics": {"accuracy": acc}},
            "phases": {"Transform": {"wall_s": 100.0, "cpu_s": 120.0, "peak_rss_mb": rss},
                       "Trainer": {"wall_s": trainer_s, "cpu_s": trainer_s, "peak_rss_mb": rss}}}


def _result():
    latency = {"p50_ms": 10.0, "p99_ms": 20.0, "batch_texts_per_s": 1000.0}
    return {"runs": {"first": _run(100.0, 0.9, 20.0, 2000), "cached": _run(5.0, 0.9, 0.0, 900),
                     "rows_25000": _run(150.0, 0.97, 30.0, 2000), "rows_200000": _run(600.0, 0.975, 90.0, 2600)},
            "encoder": latency, "served": latency, "http": {**latency, "server_peak_rss_mb": 800},
            "encoder_all_texts_s": 4.0, "encoder_all_texts_cpu_s": 8.0, "direct_encoder_texts_per_s": 1000.0,
            "direct_encoder_texts_per_cpu_s": 500.0, "transform_texts_per_s": 800.0,
            "transform_texts_per_cpu_s": 400.0, "p3_rows": 200000, "served_rss_mb": 700, "train_texts": 5452,
            "test_texts": 500, "cpus": 2, "bench_s": 900.0, "p1_sets": ["trainer.mode=head"], "gate_accuracy": 0.9}


def test_p7_is_the_largest_first_run_over_the_encoders_time_on_as_many_texts():
    r = _result()
    r["ratios"] = q = tables.ratios(r, SIZES)
    assert q["P7_first_run_over_encoder_same_texts"] == 600.0 / (200000 / 1000.0)  # 600 s / 200 s
    assert tables._met("P7_first_run_over_encoder_same_texts", q["P7_first_run_over_encoder_same_texts"]) == "met"
    assert tables._met("P7_first_run_over_encoder_same_texts", 3.5) == "NOT met (<= 3.0)"
    text = tables.render(r, SIZES)
    assert "P7 first run at 200,000 / encoder, same texts" in text and "600.0 s / 200.0 s" in text
    assert "25,000 rows 0.9700 (Trainer 30 s), 200,000 rows 0.9750 (Trainer 90 s)" in text
    assert "P6 peak RSS at 200,000 / 25,000 rows" in text  # the earlier rows stay
