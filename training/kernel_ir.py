#!/usr/bin/env python3
"""Compile the fused scan's kernels on the GPU; report registers, spills, layouts and times.

    OUT=/tmp/ir python3 training/kernel_ir.py      # writes report.json, fwd16.ttgir, bwd16.ttgir

Shapes are the intra path of DPMamba-XS at batch 16 (B' = 528, L' = 250, E = 256, M = 16),
bf16 inputs; the forward kernel is compiled for T = 16, 8 and 32 (BLOCK_E 32, one warp), the
backward for T = 16. The `#blocked` layouts of the Triton GPU IR say how a [T, BLOCK_E] tile is
spread over a warp: the chunked scans want T in each thread's registers
(threadsPerWarp = [1, 32]).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_bimamba import cuda_ms  # noqa: E402
from mambasep_ref import bimamba_triton as bt  # noqa: E402


def info(k) -> dict:
    ttgir = k.asm.get("ttgir", "")
    layouts = sorted(set(re.findall(r"#blocked\d* = #ttg\.blocked<\{[^}]*\}>", ttgir)))
    return {"n_regs": k.n_regs, "n_spills": k.n_spills, "shared": k.metadata.shared, "layouts": layouts}


def main() -> int:
    out = Path(os.environ.get("OUT", "/tmp"))
    Bsz, L, E, M = 528, 250, 256, 16
    g = torch.Generator(device="cuda").manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, device="cuda", generator=g).bfloat16()

    u, dt, z = rnd(2, Bsz, L, E), rnd(2, Bsz, L, E) - 1, rnd(Bsz, L, E)  # [2, B', L', E], [B', L', E]
    Bm, Cm = rnd(2, Bsz, L, M), rnd(2, Bsz, L, M)  # [2, B', L', M]
    A_log = torch.log(torch.arange(1, M + 1, device="cuda", dtype=torch.float32)).repeat(2, E, 1)
    D, bias = torch.ones(2, E, device="cuda"), torch.full((2, E), -3.0, device="cuda")
    dy = rnd(Bsz, L, E)
    report = {}
    for T in (16, 8, 32):
        cfg = bt.TileConfig(T=T, T_short=T, block_e=32)
        t = time.time()
        _, ws = bt._forward(u, dt, Bm, Cm, z, A_log, D, bias, True, cfg)
        torch.cuda.synchronize()
        r = {"compile_s": round(time.time() - t, 1), **info(bt.LAST["fwd"]),
             "ms": round(cuda_ms(lambda: bt._forward(u, dt, Bm, Cm, z, A_log, D, bias, True, cfg), 5), 3)}
        report[f"fwd{T}"] = r
        print(f"fwd{T}", json.dumps(r), flush=True)
        if T == 16:
            (out / "fwd16.ttgir").write_text(bt.LAST["fwd"].asm["ttgir"])
            t = time.time()
            bt._backward(u, dt, Bm, Cm, z, A_log, D, bias, dy, ws, cfg)
            torch.cuda.synchronize()
            r = {"compile_s": round(time.time() - t, 1), **info(bt.LAST["bwd"]),
                 "ms": round(cuda_ms(lambda: bt._backward(u, dt, Bm, Cm, z, A_log, D, bias, dy, ws, cfg), 5), 3)}
            (out / "bwd16.ttgir").write_text(bt.LAST["bwd"].asm["ttgir"])
            report["bwd16"] = r
            print("bwd16", json.dumps(r), flush=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
