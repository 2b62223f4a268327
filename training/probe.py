#!/usr/bin/env python3
"""Measure training throughput (examples/s, peak memory) of one model at several batch sizes.

    python3 training/probe.py --data /tmp/mambasep/decoded --batches 16 32 --steps 12 --json out.json

Each batch size runs `--warmup` untimed steps, then `--steps` timed ones of the real training
step (dynamic mixing, bf16 forward, −PIT SI-SNR, backward, clipping, fused AdamW); weights change,
so run it on a throw-away model. A batch that runs out of GPU memory is reported as "oom".
`device_run.sh` runs one probe per GPU in parallel and trains with the smallest batch reaching
`--keep` of the best examples/s (`choose` below), since larger batches take fewer steps per
example seen.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from data import MixSampler, load_corpus
from mambasep_ref import scan as scan_mod
from mambasep_ref.config import ModelConfig
from mambasep_ref.model import DPMamba
from step import train_step


def probe(model, opt, sampler, batch: int, steps: int, warmup: int, dev, amp: bool) -> dict:
    """Time `steps` training steps at `batch` after `warmup` untimed ones (first compiles kernels)."""
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.time()
        mix, src = sampler.batch(i, 0, batch, dev)
        train_step(model, model.parameters(), opt, mix, src, amp, clip=5.0)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    dt = time.time() - t0
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else 0.0
    return {"batch": batch, "step_time": round(dt / steps, 4), "ex_per_s": round(batch * steps / dt, 1),
            "peak_gib": round(peak, 2)}


def choose(results: list[dict], keep: float = 0.85) -> int:
    """The smallest batch whose examples/s is at least `keep` × the best; 0 when none ran."""
    ok = [r for r in results if "ex_per_s" in r]
    if not ok:
        return 0
    best = max(r["ex_per_s"] for r in ok)
    return min(r["batch"] for r in ok if r["ex_per_s"] >= keep * best)


def prefer_compiled(eager: list[dict], compiled: list[dict], gain: float = 1.1) -> bool:
    """Whether the compiled probe's best examples/s is at least `gain` × the eager one's.

    False when either probe has no result (it failed, ran out of memory or timed out).
    """
    def best(results: list[dict]) -> float:
        return max((r["ex_per_s"] for r in results if "ex_per_s" in r), default=0.0)
    e, c = best(eager), best(compiled)
    return e > 0 and c >= gain * e


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="decoded cache (corpus8k.npy + index.tsv)")
    ap.add_argument("--preset", default="xs")
    ap.add_argument("--intra", default="mamba", choices=["mamba", "s4d"])
    ap.add_argument("--inter", default="mamba", choices=["mamba", "s4d"])
    ap.add_argument("--batches", type=int, nargs="+", required=True)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", default="", help="also write the results here")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (as train.py --compile)")
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    scan_mod.set_scan_impl("auto")
    corpus = load_corpus(args.data).to(dev)
    sampler = MixSampler(corpus, "train", seconds=args.seconds, seed=1)
    cfg = ModelConfig.preset(args.preset, intra_mixer=args.intra, inter_mixer=args.inter)
    results = []
    for b in args.batches:
        torch.manual_seed(0)
        model = DPMamba(cfg).to(dev).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=dev.type == "cuda")
        if args.compile:
            scan_mod.scan_outside_compiler()
        net = torch.compile(model) if args.compile else model
        try:
            t = time.time()
            r = probe(net, opt, sampler, b, args.steps, args.warmup, dev, dev.type == "cuda")
            r["compile"] = args.compile
            r["warmup_s"] = round(time.time() - t - r["step_time"] * args.steps, 1)
        except torch.OutOfMemoryError:
            r = {"batch": b, "error": "oom"}
        del model, opt, net
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        print(json.dumps(r), flush=True)
        results.append(r)
    if args.json:
        Path(args.json).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
