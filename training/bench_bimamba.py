#!/usr/bin/env python3
"""One BiMamba mixer on the GPU: the fused path against today's per-direction Triton path.

Glossary: B' sequences, L' steps, N model width, E inner width, M state size.

    python3 training/bench_bimamba.py                 # XS training shapes, default tiles
    python3 training/bench_bimamba.py --sweep         # also other TileConfigs of the fused kernels
    python3 training/bench_bimamba.py --sweep --tiles 4:64:1 --tiles split   # these ones instead
    python3 training/bench_bimamba.py --json out.json
    python3 training/bench_bimamba.py --kernels-only --shape intra --reps 1 --tiles S:32:1+ck   # for ncu
    python3 training/bench_bimamba.py --conv          # the convolutions + SiLU alone: torch vs conv_triton

`--kernels-only` launches nothing but each spec's own kernels (2 warm-up launches, then --reps
timed ones, forward then backward): no layer, no parity, no old path, so a profiler can pick a
warm launch by its count (training/bench/measure.sh part 0 profiles the third backward launch).

For each shape (the intra path [B·S, K, N] and the inter path [B·K, S, N] of DPMamba-XS at
batch 16, 4 s, 8 kHz) it times forward + backward of the layer under bf16 autocast, as in
training, for `--scan triton` (two scans, flipped copies, gate in torch) and `--scan fused`,
and reports the activation memory the forward keeps for the backward, and the largest relative
difference (max |a − b| / max |b|) of the output and of every parameter gradient between the
two in float32. The sweep times the kernels alone for each tiles spec (bimamba_triton.TileConfig.parse;
for the split variant, the one-launch scans of both directions without the torch glue around them),
checks each spec's layer parity, and ends with `best_tiles=SPEC` (least fwd + bwd over both shapes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from mambasep_ref import bimamba_triton as bt
from mambasep_ref import scan as scan_mod
from mambasep_ref.config import ModelConfig
from mambasep_ref.mamba import BiMamba

# (name, B', L') of DPMamba-XS at batch 16, 4 s at 8 kHz: 33 chunks of K = 250 frames.
SHAPES = [("intra", 16 * 33, 250), ("inter", 16 * 250, 33)]
# Tiles specs tried by --sweep (T applies to both paths here: T_short = T). Left out after the v4
# sweep on H100 (training/bench/NOTES.md): T = 8 (backward 1.5x slower) and ck = 4.
SWEEP = ["4:64:1", "4:32:1", "2:32:1", "S:32:1"]


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
    return layer, h, cfg


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


def kernel_times(bsz: int, L: int, E: int, M: int, reps: int, cfg=None, old: bool = True) -> dict:
    """The scan kernels alone on bf16 inputs, in ms: today's two one-direction calls (forward and
    backward kernels; `old`) and the fused path's kernels of TileConfig cfg (default: the current
    one); for the split variant, its one-launch scans of both directions."""
    from mambasep_ref import scan_triton as st  # noqa: PLC0415
    g = torch.Generator(device="cuda").manual_seed(0)

    def rnd(*shape, dtype=torch.bfloat16):
        return torch.randn(*shape, device="cuda", generator=g).to(dtype)

    u, dt, z = rnd(2, bsz, L, E), rnd(2, bsz, L, E) - 1.0, rnd(bsz, L, E)  # [2, B', L', E], [B', L', E]
    Bm, Cm = rnd(2, bsz, L, M), rnd(2, bsz, L, M)  # [2, B', L', M]
    A_log = torch.log(torch.arange(1, M + 1, device="cuda", dtype=torch.float32)).repeat(2, E, 1)
    D, bias = torch.ones(2, E, device="cuda"), torch.full((2, E), -3.0, device="cuda")
    delta = torch.nn.functional.softplus(dt.float() + bias[:, None, None])  # [2, B', L', E] fp32, as today
    A = -torch.exp(A_log)
    dy = rnd(bsz, L, E, dtype=torch.float32)
    out = {}
    if old:
        old_f = cuda_ms(lambda: [st._scan_forward(u[d], delta[d], A[d], Bm[d], Cm[d], D[d]) for d in range(2)], reps)
        old_b = cuda_ms(lambda: [st._scan_backward(u[d], delta[d], A[d], Bm[d], Cm[d], D[d], dy) for d in range(2)],
                        reps)
        out.update(old_fwd_ms=round(old_f, 3), old_bwd_ms=round(old_b, 3))
    cfg = cfg or bt.tile_config()
    if cfg.kernel == "split":
        # [2, B', L', E]: the merge's gradient reaches both directions (+gm: one copy, direction stride 0)
        dy2 = dy[None].expand(2, *dy.shape) if cfg.gate_merge else torch.stack([dy, dy])
        seg = cfg.seg or None
        ck = st._scan2_ck(u, A, seg, True, cfg.ck_low) if cfg.keep_ck else None
        # as the layer calls them: float32 delta, or (+sp) bf16 dt and softplus(dt + bias) in the kernels
        dl, b = (dt, bias) if cfg.softplus else (delta, None)
        zg = z if cfg.gate_merge else None  # +gm: the forward's two launches form the gated merge
        new_f = cuda_ms(lambda: st._launch_forward(u, dl, A, Bm, Cm, D, cfg.block_e, cfg.num_warps, ck, seg, b,
                                                   zg, cfg.gluon, cfg.gluon_layout), reps)
        new_b = cuda_ms(lambda: st._launch_backward(u, dl, A, Bm, Cm, D, dy2, cfg.bwd_block_e,
                                                    cfg.bwd_num_warps, seg, ck, b, maxnreg=cfg.bwd_maxnreg,
                                                    gluon=cfg.gluon, gluon_layout=cfg.gluon_layout,
                                                    unroll=cfg.unroll), reps)
        # kept between the passes: the checkpoints with keep_ck (the backward's scratch is transient)
        ws_mib = 0.0 if ck is None else ck.numel() * 4 / 2**20
    else:
        _, ws = bt._forward(u, dt, Bm, Cm, z, A_log, D, bias, True, cfg)
        new_f = cuda_ms(lambda: bt._forward(u, dt, Bm, Cm, z, A_log, D, bias, True, cfg), reps)
        new_b = cuda_ms(lambda: bt._backward(u, dt, Bm, Cm, z, A_log, D, bias, dy.bfloat16(), ws, cfg), reps)
        ws_mib = ws.numel() * 4 / 2**20
    out.update(new_fwd_ms=round(new_f, 3), new_bwd_ms=round(new_b, 3), ws_mib=round(ws_mib, 1))
    if old:
        out.update(fwd_speedup=round(out["old_fwd_ms"] / new_f, 2), bwd_speedup=round(out["old_bwd_ms"] / new_b, 2))
    return out


# conv_triton's launch units (CHUNK steps, BLOCK_E channels) that --conv times beside the
# module's default (CHUNK, BLOCK_E), which it always times first
CONV_UNITS = [(64, 64), (16, 64), (32, 128), (32, 32)]


def conv_times(preset: str, bsz: int, L: int, reps: int) -> dict:
    """Both directions' SiLU(depthwise conv) alone, in ms, forward and forward + backward on a
    bf16 x (a column slice of [B', L', 2E], as in_proj's output chunked): BiMamba's torch
    operations under torch.compile (the fused path's default) against conv_triton's kernels (+cv)
    with each CONV_UNITS launch (the module's default first)."""
    import torch.nn.functional as F  # noqa: PLC0415
    from mambasep_ref import conv_triton as ct  # noqa: PLC0415
    layer = BiMamba(ModelConfig.preset(preset)).cuda()
    E = layer.d_inner
    g = torch.Generator(device="cuda").manual_seed(0)
    xz = torch.randn(bsz, L, 2 * E, device="cuda", generator=g).bfloat16().requires_grad_()
    gout = torch.randn(2, bsz, L, E, device="cuda", generator=g).bfloat16()        # [2, B', L', E]
    w = torch.stack([layer.conv1d.weight[:, 0], layer.conv1d_b.weight[:, 0]]).detach().requires_grad_()
    b = torch.stack([layer.conv1d.bias, layer.conv1d_b.bias]).detach().requires_grad_()
    torch_fn = torch.compile(lambda x: F.silu(layer._bidirectional_conv(x.float())).to(x.dtype))

    def timed(fn) -> tuple[float, float]:
        return (round(cuda_ms(lambda: fn(xz[..., :E]), reps, warmup=3), 3),
                round(cuda_ms(lambda: fn(xz[..., :E]).backward(gout), reps, warmup=3), 3))

    out = dict(zip(("torch_fwd_ms", "torch_fwd_bwd_ms"), timed(torch_fn)))
    default = (ct.CHUNK, ct.BLOCK_E)
    units = {}
    try:
        for chunk, block_e in dict.fromkeys([default, *CONV_UNITS]):
            ct.CHUNK, ct.BLOCK_E = chunk, block_e
            units[f"{chunk}x{block_e}"] = timed(lambda x: ct.conv_silu_bidir(x, w, b))
    finally:
        ct.CHUNK, ct.BLOCK_E = default
    out["kernels_fwd_ms"], out["kernels_fwd_bwd_ms"] = units[f"{default[0]}x{default[1]}"]
    out["units"] = {k: {"fwd_ms": f, "fwd_bwd_ms": fb} for k, (f, fb) in units.items()}
    out["best_unit"] = min(units, key=lambda k: units[k][1])
    err = rel(ct.conv_silu_bidir(xz[..., :E], w, b).float(), torch_fn(xz[..., :E]).float())
    out.update(fwd_bwd_speedup=round(out["torch_fwd_bwd_ms"] / out["kernels_fwd_bwd_ms"], 2),
               xc_rel_diff=float(f"{err:.1e}"))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="xs")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--json", default="")
    ap.add_argument("--no-layer", action="store_true", help="skip the whole-layer timings")
    ap.add_argument("--kernels-only", action="store_true",
                    help="only each --tiles spec's kernels (no layer, parity or old path)")
    ap.add_argument("--shape", choices=[n for n, _, _ in SHAPES], action="append", default=[],
                    help="only these shapes (repeatable; default: all)")
    ap.add_argument("--conv", action="store_true",
                    help="only the convolutions + SiLU: torch (compiled) against conv_triton's kernels")
    ap.add_argument("--tiles", action="append", default=[], metavar="SPEC",
                    help="tiles specs for --sweep (repeatable; default: " + " ".join(SWEEP) + ")")
    args = ap.parse_args(argv)
    sweep = args.tiles or SWEEP
    if not torch.cuda.is_available():
        print("bench_bimamba.py needs a CUDA GPU", file=sys.stderr)
        return 2
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, triton {bt.triton.__version__}")
    results = []
    shapes = [s for s in SHAPES if not args.shape or s[0] in args.shape]
    if args.conv:
        for name, bsz, L in shapes:
            r = conv_times(args.preset, bsz, L, args.reps)
            print(f"conv {name} B'={bsz} L'={L}: {r}", flush=True)
            results.append({"shape": name, "B": bsz, "L": L, "conv": r})
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        return 0
    if args.kernels_only:
        cfg = ModelConfig.preset(args.preset)
        for name, bsz, L in shapes:
            for spec in sweep:
                r = kernel_times(bsz, L, cfg.d_inner, cfg.d_state, args.reps, bt.TileConfig.parse(spec), old=False)
                print(f"{name} B'={bsz} L'={L} {spec}: {r}", flush=True)
        return 0
    for name, bsz, L in shapes:
        layer, h, cfg = layer_and_input(args.preset, bsz, L)
        err = parity(layer, h[: max(1, bsz // 8)], "fused", "triton")
        worst = max(err, key=err.get)
        print(f"{name} B'={bsz} L'={L}: fp32 fused vs triton max rel diff {err[worst]:.2e} ({worst}); "
              f"y {err['y']:.1e}, h {err['h']:.1e}")
        kern = kernel_times(bsz, L, cfg.d_inner, cfg.d_state, args.reps)
        print(f"  kernels alone: {kern}")
        rec = {"shape": name, "B": bsz, "L": L, "kernels": kern, "tiles": repr(bt.tile_config()), "parity": err}
        if not args.no_layer:
            old = time_layer(layer, h, "triton", args.reps)
            new = time_layer(layer, h, "fused", args.reps)
            print(f"  layer, triton: {old}\n  layer, fused:  {new}  → {old['fwd_bwd_ms'] / new['fwd_bwd_ms']:.2f}× fwd+bwd")
            rec.update(old=old, new=new)
        if args.sweep:
            default = bt.tile_config()
            rec["sweep"] = []
            for spec in sweep:
                tc = bt.TileConfig.parse(spec)
                bt.set_tile_config(tc)
                try:
                    r = kernel_times(bsz, L, cfg.d_inner, cfg.d_state, args.reps, tc, old=False)
                    perr = parity(layer, h[: max(1, bsz // 8)], "fused", "triton")
                    r["parity_max"] = float(f"{max(perr.values()):.2e}")
                except Exception as e:  # a setting that does not compile or fit
                    r = {"error": f"{type(e).__name__}: {str(e)[:160]}"}
                r["spec"], r["tiles"] = spec, repr(tc)
                for k in ("fwd", "bwd"):
                    if f"new_{k}_ms" in r:
                        r[f"{k}_speedup"] = round(kern[f"old_{k}_ms"] / r[f"new_{k}_ms"], 2)
                print(f"  sweep {r}", flush=True)
                rec["sweep"].append(r)
            bt.set_tile_config(default)
        results.append(rec)
        del layer, h
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.sweep:
        print(f"best_tiles={best_tiles(results)}")
    return 0


def best_tiles(results: list[dict]) -> str:
    """The tiles spec of the sweep setting with the least fwd + bwd kernel time summed over all
    shapes (among those that ran on every shape with fp32 parity within 1e-4)."""
    total: dict[str, float] = {}
    runs: dict[str, int] = {}
    for rec in results:
        for r in rec.get("sweep", []):
            if "error" in r or r.get("parity_max", 0.0) > 1e-4:
                continue
            total[r["spec"]] = total.get(r["spec"], 0.0) + r["new_fwd_ms"] + r["new_bwd_ms"]
            runs[r["spec"]] = runs.get(r["spec"], 0) + 1
    total = {k: v for k, v in total.items() if runs[k] == len(results)}
    return min(total, key=total.get) if total else ""


if __name__ == "__main__":
    sys.exit(main())
