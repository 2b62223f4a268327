#!/usr/bin/env python3
"""One BiMamba mixer on the GPU: the fused path against today's per-direction Triton path.

Glossary: B' sequences, L' steps, N model width, E inner width, M state size.

    python3 training/bench_bimamba.py                 # XS training shapes, default tiles
    python3 training/bench_bimamba.py --sweep         # also other TileConfigs of the fused kernels
    python3 training/bench_bimamba.py --json out.json

For each shape (the intra path [B·S, K, N] and the inter path [B·K, S, N] of DPMamba-XS at
batch 16, 4 s, 8 kHz) it times forward + backward of the layer under bf16 autocast, as in
training, for `--scan triton` (two scans, flipped copies, gate in torch) and `--scan fused`,
and reports the activation memory the forward keeps for the backward, and the largest relative
difference (max |a − b| / max |b|) of the output and of every parameter gradient between the
two in float32.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mambasep_ref import bimamba_triton as bt  # noqa: E402
from mambasep_ref import scan as scan_mod  # noqa: E402
from mambasep_ref.config import ModelConfig  # noqa: E402
from mambasep_ref.mamba import BiMamba  # noqa: E402

# (name, B', L') of DPMamba-XS at batch 16, 4 s at 8 kHz: 33 chunks of K = 250 frames.
SHAPES = [("intra", 16 * 33, 250), ("inter", 16 * 250, 33)]
SWEEP = [(8, 32, 4, 4), (16, 32, 4, 4), (16, 32, 8, 8), (8, 32, 2, 2), (8, 16, 2, 2),
         (16, 16, 4, 4), (32, 16, 4, 8), (4, 32, 2, 2), (8, 64, 4, 4)]


def cuda_ms(fn, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def layer_and_input(preset: str, bsz: int, L: int, seed: int = 0):
    cfg = ModelConfig.preset(preset)
    torch.manual_seed(seed)
    layer = BiMamba(cfg).cuda()
    with torch.no_grad():  # trained-looking weights: move every parameter off its init
        for p in layer.parameters():
            p.add_(0.05 * torch.randn_like(p))
    h = torch.randn(bsz, L, cfg.n_filters, device="cuda")  # [B', L', N]
    return layer, h


def step(layer, h, w, amp: bool):
    hh = h.detach().requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        y = layer(hh)
    (y.float() * w).sum().backward()
    return y


def parity(layer, h, impl_a: str, impl_b: str) -> dict:
    """max relative differences of output, input gradient and every parameter gradient, fp32."""
    w = torch.randn_like(h)
    res = {}
    for impl in (impl_a, impl_b):
        scan_mod.set_scan_impl(impl)
        layer.zero_grad(set_to_none=True)
        hh = h.detach().requires_grad_()
        y = layer(hh)
        (y * w).sum().backward()
        res[impl] = (y.detach(), hh.grad, {n: p.grad.clone() for n, p in layer.named_parameters()})
    (ya, ga, pa), (yb, gb, pb) = res[impl_a], res[impl_b]
    out = {"y": rel(ya, yb), "h": rel(ga, gb)}
    out.update({n: rel(pa[n], pb[n]) for n in pb})
    return out


def time_layer(layer, h, impl: str, reps: int) -> dict:
    scan_mod.set_scan_impl(impl)
    w = torch.randn_like(h)
    torch.cuda.empty_cache()
    step(layer, h, w, True)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    hh = h.detach().requires_grad_()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = layer(hh)
    kept = (torch.cuda.memory_allocated() - base) / 2**20  # activations held for the backward
    del y, hh
    ms = cuda_ms(lambda: step(layer, h, w, True), reps)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        fwd_ms = cuda_ms(lambda: layer(h), reps)
    return {"impl": impl, "fwd_bwd_ms": round(ms, 3), "fwd_ms": round(fwd_ms, 3), "kept_mib": round(kept, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="xs")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_bimamba.py needs a CUDA GPU", file=sys.stderr)
        return 2
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, triton {bt.triton.__version__}")
    results = []
    for name, bsz, L in SHAPES:
        layer, h = layer_and_input(args.preset, bsz, L)
        err = parity(layer, h[: max(1, bsz // 8)], "fused", "triton")
        worst = max(err, key=err.get)
        print(f"{name} B'={bsz} L'={L}: fp32 fused vs triton max rel diff {err[worst]:.2e} ({worst}); "
              f"y {err['y']:.1e}, h {err['h']:.1e}")
        old = time_layer(layer, h, "triton", args.reps)
        new = time_layer(layer, h, "fused", args.reps)
        print(f"  triton: {old}\n  fused:  {new}  → {old['fwd_bwd_ms'] / new['fwd_bwd_ms']:.2f}× fwd+bwd")
        rec = {"shape": name, "B": bsz, "L": L, "old": old, "new": new, "tiles": repr(bt.tile_config()),
               "parity": err}
        if args.sweep:
            default = bt.tile_config()
            rec["sweep"] = []
            for T, be, nw, bnw in SWEEP:
                bt.set_tile_config(bt.TileConfig(T=T, block_e=be, num_warps=nw, bwd_num_warps=bnw))
                try:
                    r = time_layer(layer, h, "fused", args.reps)
                except Exception as e:  # a setting that does not compile or fit
                    r = {"error": f"{type(e).__name__}: {str(e)[:120]}"}
                r["tiles"] = repr(bt.tile_config())
                print(f"  sweep {r}")
                rec["sweep"].append(r)
            bt.set_tile_config(default)
        results.append(rec)
        del layer, h
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
