#!/usr/bin/env python3
"""Training-step throughput, old and new scan paths side by side in one run, on one GPU.

    python3 training/bench_step.py --out training/bench/throughput.json \
        --case xs:8000:16 --case xs:8000:32 --case s:8000:16 --case xs:16000:16 \
        --pair triton+compile:fused+compile --pair triton:fused

A case is PRESET:RATE:BATCH (4 s examples); a pair is OLD:NEW, each a `--scan` value with
`+compile` for torch.compile. For every case and pair it runs the real training step of
train.py (`train_step`: bf16 autocast forward, −PIT SI-SNR, backward, clipping, fused AdamW) on
random mixtures: `--warmup` untimed steps (compilation happens there), then `--steps` timed
ones, alternating old and new `--rounds` times so that both see the same machine. Reports
examples/s (median over rounds), peak GPU memory, and new/old. Random data costs nothing to
make, and the step's time does not depend on what the audio is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from mambasep_ref import scan as scan_mod
from mambasep_ref.config import ModelConfig
from mambasep_ref.model import DPMamba
from train import train_step


def parse_case(s: str) -> tuple[str, int, int]:
    preset, rate, batch = s.split(":")
    return preset, int(rate), int(batch)


def parse_path(s: str) -> tuple[str, bool]:
    scan, _, flag = s.partition("+")
    if scan not in scan_mod.SCAN_IMPLS or flag not in ("", "compile"):
        raise SystemExit(f"error: bad path {s!r} (SCAN or SCAN+compile, SCAN in {scan_mod.SCAN_IMPLS})")
    return scan, flag == "compile"


class Runner:
    """A model, optimiser and batch for one (case, path); `run(n)` times n steps."""

    def __init__(self, preset: str, rate: int, batch: int, scan: str, compile_: bool, seed: int = 0):
        cfg = ModelConfig.preset(preset, sample_rate=rate)
        scan_mod.set_scan_impl(scan)
        torch.manual_seed(seed)
        self.scan, self.batch = scan, batch
        self.model = DPMamba(cfg).cuda().train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, fused=True)
        if compile_:
            scan_mod.scan_outside_compiler()
        self.net = torch.compile(self.model) if compile_ else self.model
        g = torch.Generator(device="cuda").manual_seed(seed)
        T = 4 * rate
        self.src = 0.1 * torch.randn(batch, 2, T, device="cuda", generator=g)  # [B, C, T]
        self.mix = self.src.sum(1)                                              # [B, T]

    def run(self, n: int) -> float:
        scan_mod.set_scan_impl(self.scan)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n):
            train_step(self.net, self.model.parameters(), self.opt, self.mix, self.src, True, 5.0)
        torch.cuda.synchronize()
        return time.perf_counter() - t


def profile(runner: Runner, steps: int, top: int = 40) -> list[dict]:
    """CUDA time per kernel over `steps` steps: the `top` largest, with their share of the total."""
    from torch.profiler import ProfilerActivity, profile as torch_profile  # noqa: PLC0415
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        runner.run(steps)
    rows = [(e.key, e.device_time_total, e.count) for e in prof.key_averages()
            if e.device_time_total > 0]
    total = sum(r[1] for r in rows)
    rows.sort(key=lambda r: -r[1])
    out = [{"kernel": k[:90], "ms_per_step": round(t / 1e3 / steps, 3), "share": round(t / total, 3),
            "calls_per_step": round(n / steps, 1)} for k, t, n in rows[:top]]
    print(f"profile: {total / 1e3 / steps:.1f} ms of kernels per step")
    for r in out:
        print(f"  {r['share']:6.1%} {r['ms_per_step']:8.3f} ms  x{r['calls_per_step']:<6} {r['kernel']}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", action="append", default=[], help="PRESET:RATE:BATCH (repeatable)")
    ap.add_argument("--pair", action="append", default=[], help="OLD:NEW paths (repeatable)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="")
    ap.add_argument("--tiles", default="", metavar="T:BLOCK_E:WARPS[:CK]",
                    help="TileConfig of the fused kernels (T_short = T); default: bimamba_triton's")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after timing, profile N steps of each path (old and new); print the top kernels")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_step.py needs a CUDA GPU", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    if args.tiles:
        from mambasep_ref import bimamba_triton as bt  # noqa: PLC0415
        T, be, w, *ck = (int(x) for x in args.tiles.split(":"))
        bt.set_tile_config(bt.TileConfig(T=T, T_short=T, block_e=be, num_warps=w, bwd_num_warps=w, ck=ck[0] if ck else 1))
    cases = [parse_case(c) for c in (args.case or ["xs:8000:16"])]
    pairs = [tuple(parse_path(p) for p in s.split(":")) for s in (args.pair or ["triton+compile:fused+compile"])]
    report = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "tiles": args.tiles,
              "command": "python3 training/bench_step.py " + " ".join(sys.argv[1:]), "results": []}
    for preset, rate, batch in cases:
        for old, new in pairs:
            rec = {"preset": preset, "rate": rate, "batch": batch, "seconds": 4.0}
            runners, times, peaks = {}, {"old": [], "new": []}, {}
            for key, (scan, comp) in (("old", old), ("new", new)):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
                try:
                    runners[key] = Runner(preset, rate, batch, scan, comp)
                    runners[key].run(args.warmup)
                except torch.OutOfMemoryError:
                    runners.pop(key, None)
                    rec[key] = {"path": f"{scan}{'+compile' if comp else ''}", "error": "oom"}
                    continue
                warm = time.perf_counter() - t0
                peaks[key] = torch.cuda.max_memory_allocated() / 2**30
                rec[key] = {"path": f"{scan}{'+compile' if comp else ''}", "warmup_s": round(warm, 1)}
            for _ in range(args.rounds):
                for key in runners:
                    times[key].append(batch * args.steps / runners[key].run(args.steps))
            for key in runners:
                rec[key].update({"ex_per_s": round(statistics.median(times[key]), 1),
                                 "ex_per_s_all": [round(x, 1) for x in times[key]],
                                 "peak_gib": round(peaks[key], 2)})
            if args.profile:
                for key in runners:
                    print(f"[{key}: {rec[key]['path']}]")
                    rec[f"profile_{key}"] = profile(runners[key], args.profile)
            if "ex_per_s" in rec.get("old", {}) and "ex_per_s" in rec.get("new", {}):
                rec["speedup"] = round(rec["new"]["ex_per_s"] / rec["old"]["ex_per_s"], 2)
            print(json.dumps(rec), flush=True)
            report["results"].append(rec)
            del runners
            if args.out:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
