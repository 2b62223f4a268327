#!/usr/bin/env python3
"""Training-step throughput, old and new scan paths side by side in one run, on one GPU.

    python3 training/bench_step.py --throughput-json training/bench/throughput.json \
        --case xs:8000:16 --case xs:8000:32 --case s:8000:16 --case xs:16000:16 \
        --pair triton+compile:fused+compile --tiles 4:64:1 --tiles split
    python3 training/bench_step.py --merge part2.json --throughput-json training/bench/throughput.json

A case is PRESET:RATE:BATCH (4 s examples); a pair is OLD:NEW, each a `--scan` value with
`+compile` for torch.compile or `+graphs` for torch.compile with CUDA graphs (mode
"reduce-overhead": one replay a forward and one a backward instead of a launch a kernel);
`OLD:NEW1,NEW2` makes every NEW path a candidate (a `+graphs` one takes its turns beside old
alone and is dropped afterwards, as graphs keep their memory). For every case and pair it runs
the real training step of train.py (`train_step`: bf16 autocast forward, −PIT SI-SNR,
backward, clipping, fused AdamW) on random mixtures: `--warmup` untimed steps (compilation happens
there), then `--steps` timed ones, alternating old and new `--rounds` times so that both see
the same machine. Reports examples/s (median over rounds), the step's time and the host's time
to queue one step (`host_ms`: near `step_ms`, the CPU sets the pace), peak GPU memory, and
new/old. Random data costs nothing to make, and the step's time does not depend on what the
audio is.

`--tiles SPEC` (the grammar of bimamba_triton.TileConfig.parse) sets the fused kernels;
repeated, every fused NEW path runs once per spec, and the fastest is the case's "new" (all of
them under "candidates").
`--throughput-json` writes (or merges into) the {"gpu", "command", "configurations": {"xs-8k-b16":
{"old", "new", "speedup"}, ...}} summary; `--merge FILE...` merges such files without a GPU.
"""

from __future__ import annotations

import argparse
import gc
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


COMPILE_MODES = {"": None, "compile": "default", "graphs": "reduce-overhead"}
GRAPHED = COMPILE_MODES["graphs"]   # the mode whose paths keep their memory in their graphs' pools


def parse_path(s: str) -> tuple[str, str | None]:
    """"fused+compile" → ("fused", "default"): the scan and torch.compile's mode (None: eager)."""
    scan, _, flag = s.partition("+")
    if scan not in scan_mod.SCAN_IMPLS or flag not in COMPILE_MODES:
        raise SystemExit(f"error: bad path {s!r} (SCAN, SCAN+compile or SCAN+graphs, "
                         f"SCAN in {scan_mod.SCAN_IMPLS})")
    return scan, COMPILE_MODES[flag]


def path_label(scan: str, mode: str | None) -> str:
    flag = next(k for k, v in COMPILE_MODES.items() if v == mode)
    return f"{scan}+{flag}" if flag else scan


class Runner:
    """A model, optimiser and batch for one (case, path); `run(n)` times n steps."""

    def __init__(self, preset: str, rate: int, batch: int, scan: str, mode: str | None, seed: int = 0,
                 tiles=None):
        cfg = ModelConfig.preset(preset, sample_rate=rate)
        self.tiles = tiles  # one TileConfig object for the runner's life (torch.compile guards on it)
        self._use()
        scan_mod.set_scan_impl(scan)
        torch.manual_seed(seed)
        self.scan, self.batch = scan, batch
        self.model = DPMamba(cfg).cuda().train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, fused=True)
        if mode is not None:
            scan_mod.scan_outside_compiler()
        self.net = torch.compile(self.model, mode=mode) if mode is not None else self.model
        g = torch.Generator(device="cuda").manual_seed(seed)
        T = 4 * rate
        self.src = 0.1 * torch.randn(batch, 2, T, device="cuda", generator=g)  # [B, C, T]
        self.mix = self.src.sum(1)                                              # [B, T]

    def _use(self) -> None:
        if self.tiles is not None:
            from mambasep_ref import bimamba_triton as bt  # noqa: PLC0415
            bt.set_tile_config(self.tiles)

    def run(self, n: int) -> float:
        """Seconds for n steps, from an idle GPU to the last kernel's end. `self.host_s`: the
        host's time to queue the first of them (a step's launches fit the GPU's queue, so this is
        the CPU's cost of a step; when it nears the step's time the CPU sets the pace)."""
        self._use()
        scan_mod.set_scan_impl(self.scan)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for i in range(n):
            train_step(self.net, self.model.parameters(), self.opt, self.mix, self.src, True, 5.0)
            if i == 0:
                self.host_s = time.perf_counter() - t
        torch.cuda.synchronize()
        return time.perf_counter() - t


def profile(runner: Runner, steps: int, top: int = 40) -> tuple[list[dict], float]:
    """CUDA time per kernel over `steps` steps: the `top` largest, with their share of the total;
    and that total, ms a step (against the step's wall time it shows the gaps between kernels)."""
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
    return out, round(total / 1e3 / steps, 2)


def case_name(preset: str, rate: int, batch: int) -> str:
    """"xs-8k-b16" for preset xs at 8000 Hz, batch 16."""
    return f"{preset}-{rate // 1000}k-b{batch}"


def throughput_summary(report: dict) -> dict:
    """The throughput.json form of a report: one configuration per case (first pair), its paths'
    figures without their kernel lists (those stay in the full report)."""
    def figures(path: dict) -> dict:
        return {k: v for k, v in path.items() if k != "profile"}
    conf = {}
    for rec in report["results"]:
        name = case_name(rec["preset"], rec["rate"], rec["batch"])
        if name in conf:
            continue
        keep = {k: v for k, v in rec.items() if k in ("speedup", "seconds")}
        keep.update({k: figures(rec[k]) for k in ("old", "new") if k in rec})
        if "candidates" in rec:
            keep["candidates"] = [figures(c) for c in rec["candidates"]]
        conf[name] = keep
    return {"gpu": report["gpu"], "torch": report["torch"], "triton": report.get("triton", ""),
            "command": report["command"], "configurations": conf}


def merge_throughput(path: Path, new: dict) -> dict:
    """new's configurations over those already in path (if it exists); commands joined by ' ; '."""
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("gpu") != new.get("gpu"):
            print(f"warning: merging {new.get('gpu')} figures into a file of {old.get('gpu')}", file=sys.stderr)
        cmds = [c for c in (old.get("command", ""), new.get("command", "")) if c]
        merged = {**old, **{k: v for k, v in new.items() if k != "configurations"},
                  "command": " ; ".join(dict.fromkeys(cmds)),
                  "configurations": {**old.get("configurations", {}), **new.get("configurations", {})}}
    else:
        merged = new
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=1))
    return merged


class Turns:
    """The runners of one case and pair, keyed "old", "new0", "new1", …, and what their turns
    measured (examples/s and host seconds a round, peak memory, errors)."""

    def __init__(self, preset: str, rate: int, batch: int, args):
        self.case, self.args = (preset, rate, batch), args
        self.runners, self.times, self.host, self.peaks, self.res = {}, {}, {}, {}, {}

    def fail(self, key: str, e: BaseException) -> None:
        self.runners.pop(key, None)
        self.times.pop(key, None)
        r = self.res[key]
        r["error"] = "oom" if isinstance(e, torch.OutOfMemoryError) else f"{type(e).__name__}: {e}"[:300]
        print(f"{key} {r['path']} {r.get('tiles', '')}: {r['error']}", flush=True)

    def start(self, key: str, scan: str, mode: str | None, tiles) -> bool:
        """Build and warm up one path's runner; False (and the error in res) if it fails."""
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        self.res[key] = {"path": path_label(scan, mode)}
        if tiles is not None:
            self.res[key]["tiles"] = tiles.spec()
        try:
            self.runners[key] = Runner(*self.case, scan, mode, tiles=tiles)
            self.runners[key].run(self.args.warmup)
        except Exception as e:  # noqa: BLE001 — one candidate failing leaves the others' figures
            self.fail(key, e)
            return False
        self.res[key]["warmup_s"] = round(time.perf_counter() - t0, 1)
        self.peaks[key] = torch.cuda.max_memory_allocated() / 2**30
        self.times.setdefault(key, [])
        self.host.setdefault(key, [])
        return True

    def take_turns(self, keys: list[str]) -> None:
        batch, steps = self.case[2], self.args.steps
        for _ in range(self.args.rounds):
            for key in keys:
                self.times[key].append(batch * steps / self.runners[key].run(steps))
                self.host[key].append(self.runners[key].host_s)

    def profile(self, key: str) -> None:
        """`profile` of one live path: its kernels and their time a step into its record."""
        print(f"[{key}: {self.res[key]['path']} {self.res[key].get('tiles', '')}]")
        self.res[key]["profile"], self.res[key]["kernel_ms"] = profile(self.runners[key], self.args.profile)

    def drop_graphs(self, key: str) -> None:
        """Free a graphed runner, its graphs and their memory pools (old's compiled code stays)."""
        self.runners.pop(key, None)
        gc.collect()
        from torch._inductor.cudagraph_trees import reset_cudagraph_trees  # noqa: PLC0415
        reset_cudagraph_trees()
        torch.cuda.empty_cache()

    def summary(self, key: str) -> dict:
        batch, t = self.case[2], self.times.get(key)
        if t:
            self.res[key].update({"ex_per_s": round(statistics.median(t), 1),
                                  "ex_per_s_all": [round(x, 1) for x in t],
                                  "step_ms": round(1e3 * batch / statistics.median(t), 1),
                                  "host_ms": round(1e3 * statistics.median(self.host[key]), 1),
                                  "peak_gib": round(self.peaks[key], 2)})
        return self.res[key]


def time_case(preset: str, rate: int, batch: int, old: tuple, news: list, args) -> dict:
    """One case's record: old against every (NEW path, tiles) in news, in turns on this GPU.

    Compiled paths all stay alive and take their turns together. Paths with CUDA graphs keep
    their memory in the graphs' own pools, so they cannot all stay alive at once: each takes its
    turns beside old alone and is then dropped."""
    torch._dynamo.reset()  # each case compiles afresh: no dynamic shapes, no recompile limit
    rec = {"preset": preset, "rate": rate, "batch": batch, "seconds": 4.0}
    keys = [f"new{i}" for i in range(len(news))]
    paths = [("old", old, None)] + [(k, new, c) for k, (new, c) in zip(keys, news)]
    turns = Turns(preset, rate, batch, args)
    retries0 = torch.cuda.memory_stats().get("num_alloc_retries", 0)
    for key, path, tiles in paths:
        if path[1] != GRAPHED:
            turns.start(key, *path, tiles)
    turns.take_turns(list(turns.runners))
    for key, path, tiles in paths:
        if path[1] != GRAPHED or "old" not in turns.runners or not turns.start(key, *path, tiles):
            continue
        try:
            turns.take_turns(["old", key])
            if args.profile:   # while its graphs are alive
                turns.profile(key)
        except Exception as e:  # noqa: BLE001 — as in start()
            turns.fail(key, e)
        turns.drop_graphs(key)
    # the caching allocator freeing and asking again (each a device-wide sync) while the paths
    # took turns: their memory together did not fit
    rec["alloc_retries"] = torch.cuda.memory_stats().get("num_alloc_retries", 0) - retries0
    if args.profile:
        # every path still alive (graphed ones were profiled in their turns): each one's
        # kernel time, as the candidates' order says little where their rounds scatter
        for key in turns.runners:
            turns.profile(key)
    rec["old"] = turns.summary("old")
    cands = [turns.summary(k) for k in keys]
    ok = [k for k in keys if "ex_per_s" in turns.res[k]]
    best = max(ok, key=lambda k: turns.res[k]["ex_per_s"]) if ok else keys[0]
    rec["new"] = turns.res[best]
    if len(keys) > 1:
        rec["candidates"] = cands
    if "ex_per_s" in rec["old"] and "ex_per_s" in rec["new"]:
        rec["speedup"] = round(rec["new"]["ex_per_s"] / rec["old"]["ex_per_s"], 2)
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", action="append", default=[], help="PRESET:RATE:BATCH (repeatable)")
    ap.add_argument("--pair", action="append", default=[], help="OLD:NEW[,NEW...] paths (repeatable)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="", help="the full report (every pair, profiles) as JSON")
    ap.add_argument("--throughput-json", default="", metavar="PATH",
                    help="write or merge the throughput.json summary (old/new/speedup per configuration)")
    ap.add_argument("--merge", nargs="+", default=[], metavar="FILE",
                    help="merge these throughput.json files into --throughput-json and exit (no GPU)")
    ap.add_argument("--tiles", action="append", default=[], metavar="SPEC",
                    help="TileConfig of the fused kernels (bimamba_triton.TileConfig.parse, e.g. 4:64:1, "
                         "split, S:32:1+ck); repeatable: each fused NEW path runs once per spec; "
                         "default: bimamba_triton's")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="after timing, profile N steps of every path; its top kernels (\"profile\") and "
                         "their time a step (\"kernel_ms\") go into its record")
    args = ap.parse_args(argv)
    pairs = []
    for s in args.pair or ["triton+compile:fused+compile"]:
        old, _, new = s.partition(":")
        if parse_path(old)[1] == GRAPHED:
            ap.error(f"--pair {s}: the old path runs eager or compiled; +graphs is for NEW paths")
        pairs.append((parse_path(old), [parse_path(p) for p in new.split(",")]))
    if args.merge:
        if not args.throughput_json:
            ap.error("--merge needs --throughput-json (the file to merge into)")
        for f in args.merge:
            merged = merge_throughput(Path(args.throughput_json), json.loads(Path(f).read_text()))
        print(json.dumps({k: v.get("speedup") for k, v in merged["configurations"].items()}))
        return 0
    if not torch.cuda.is_available():
        print("bench_step.py needs a CUDA GPU", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    # each candidate compiles its own model (a cache entry of the same code): more than the default 8
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 32)
    from mambasep_ref import bimamba_triton as bt  # noqa: PLC0415
    tile_cfgs = [bt.TileConfig.parse(t) for t in args.tiles] or [bt.tile_config()]
    cases = [parse_case(c) for c in (args.case or ["xs:8000:16"])]
    report = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": bt.triton.__version__,
              "tiles": [c.spec() for c in tile_cfgs],
              "command": "python3 training/bench_step.py " + " ".join(sys.argv[1:]), "results": []}
    for preset, rate, batch in cases:
        for old, new_paths in pairs:
            news = [(new, c) for new in new_paths
                    for c in (tile_cfgs if new[0] in ("fused", "auto") else [None])]
            rec = time_case(preset, rate, batch, old, news, args)
            print(json.dumps(rec), flush=True)
            report["results"].append(rec)
            if args.out:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps(report, indent=1))
            if args.throughput_json:
                merge_throughput(Path(args.throughput_json), throughput_summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
