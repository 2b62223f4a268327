#!/usr/bin/env python3
"""Train a DPMamba (or DP-S4D) separator with dynamic mixing; resumable, DDP-ready.

Single process:   python3 training/train.py --data .carry/data --devset .carry/devset --run-dir runs/x
Several GPUs:     python3 -m torch.distributed.run --nproc_per_node 2 --master_port 29511 training/train.py ...

Loss: −PIT SI-SNR. AdamW, linear warm-up then cosine decay to `--min-lr` over a plan given in
steps (`--total-steps`) or in seconds of training (`--plan-seconds`), gradient clipping, bf16
autocast on CUDA (the scan accumulates in float32; norms and the loss run in float32).

Run folder (`--run-dir`):
  last.pt           model weights, step, schedule progress, best score, RNG states, log, args
  last.optim1.pt    AdamW first moments (float32)      } exact resume
  last.optim2.pt    AdamW second moments + step counts } (each file ≤ 15 MB for XS)
  last.optim16.pt   both moments in bfloat16 (one smaller file for carrying between machines)
  last16.pt         like last.pt with float16 weights (4.6 MB for XS: the file to carry back)
  best.safetensors  export (mambasep_ref.io.save_model) of the best devset SI-SNRi so far, its
                    decoder scaled by `output_gain` (metadata) so estimates ≤ mixture peak
  log.jsonl         one JSON object per log/validation event

`--resume DIR|auto`: continue from DIR's last.pt (else last16.pt, weights widened); optimiser
moments are taken from the float32 files if present (exact), else from last.optim16.pt (close),
else fresh with `--rewarm` steps of linear warm-up. `--init-weights F`: start from the weights of
an exported .safetensors or a checkpoint (.pt) with a fresh optimiser, schedule and step count;
the file's config must be this model's. With `--init-partial`, every tensor whose key and shape
match is taken and the rest keeps its fresh initialisation (e.g. DPMamba-XS → the hybrid
`--inter s4d`: all but the inter-chunk mixers); the loaded, fresh and unused keys go to stdout
and to log.jsonl (event "init"). The loaded part can then train slower (`--loaded-lr-scale`)
or stand still for the first steps (`--freeze-loaded-steps`); resumed runs keep the split.
`--time-budget SEC`: stop cleanly (validate, save) before SEC seconds after start.

Code: `main` is `setup` (arguments, device, data, model, optimiser) → `resume` (checkpoint or
initial weights) → `loop` (steps, validation, checkpoints); checkpoint.py reads and writes the
run folder, step.py holds the training step and the learning-rate schedule.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

import sources
from checkpoint import (compact_keys, find_checkpoint, init_state, load_checkpoint, load_optimizer,
                        partial_init_state, save_best, save_checkpoint, set_rng_state)
from data import Augment, MixSampler, PseudoSpeakers, decoded_cache, engine_mask, load_corpus
from mambasep_ref import bimamba_triton
from mambasep_ref import scan as scan_mod
from mambasep_ref.config import ModelConfig, parse_overrides
from mambasep_ref.model import DPMamba
from step import lr_at, train_step
from validate import evaluate_devset, evaluate_synth, load_devset

# MARK: - Arguments


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = ap.add_argument
    a("--name", default="dpmamba-xs", help="model name (metadata and file names)")
    a("--preset", default="xs")
    a("--intra", default="mamba", choices=["mamba", "s4d"])
    a("--inter", default="mamba", choices=["mamba", "s4d"])
    a("--override", action="append", default=[], metavar="KEY=JSON",
      help="config override, e.g. n_filters=16 (repeatable)")
    a("--data", required=True, help="packed data folder (prepare_data.py) or decoded cache")
    a("--cache", default=None, help="where to decode the packed data (default DATA/decoded)")
    a("--devset", default=None)
    a("--run-dir", required=True)
    a("--batch", type=int, default=8, help="examples per process per step")
    a("--seconds", type=float, default=4.0)
    a("--speed", type=float, nargs=2, default=(0.95, 1.05), metavar=("LO", "HI"),
      help="speed perturbation range of training sources (resampling: pitch and formants move too)")
    a("--augment-colour", type=float, default=0.0, metavar="P",
      help="probability that a training source gets a random EQ (data.Augment; default 0)")
    a("--augment-room", type=float, default=0.0, metavar="P",
      help="probability that a training source gets a synthetic room response (default 0)")
    a("--pseudo-speakers", type=int, default=0, metavar="K",
      help="K made-up voices per human speaker (data.PseudoSpeakers: pitch and formants shifted; default 0)")
    a("--pitch-range", type=float, nargs=2, default=(-3.0, 3.0), metavar=("LO", "HI"),
      help="pseudo-speakers' pitch shifts, semitones (default -3 3)")
    a("--formant-range", type=float, nargs=2, default=(0.88, 1.14), metavar=("LO", "HI"),
      help="pseudo-speakers' formant (vocal-tract length) factors (default 0.88 1.14)")
    a("--exclude-engine", action="append", default=[], metavar="NAME",
      help="train without this source's speakers (NAME:…, e.g. fotaq; repeatable): an A/B of a "
           "new corpus on one packing")
    a("--lr", type=float, default=1e-3)
    a("--min-lr", type=float, default=1e-5)
    a("--wd", type=float, default=0.01)
    a("--warmup", type=int, default=200)
    a("--rewarm", type=int, default=100)
    a("--total-steps", type=int, default=0, help="cosine plan in steps")
    a("--plan-seconds", type=float, default=0.0, help="cosine plan in seconds of training")
    a("--max-steps", type=int, default=0, help="stop at this step (0: no limit)")
    a("--clip", type=float, default=5.0)
    a("--val-every", type=int, default=250)
    a("--log-every", type=int, default=25)
    a("--synth-val", type=int, default=200, help="held-out synthetic mixtures (0: none)")
    a("--time-budget", type=float, default=0.0, help="seconds; stop and save before this")
    a("--deadline", type=float, default=0.0, help="Unix time; stop and save before this")
    a("--resume", default="", help="run folder to resume from, or 'auto' (= --run-dir if it has last.pt)")
    a("--init-weights", default="", metavar="FILE",
      help="start a new run from these weights (.safetensors export or .pt checkpoint; same config)")
    a("--init-partial", action="store_true",
      help="with --init-weights: take every tensor whose key and shape match, leave the rest "
           "fresh (another mixer on a path, more blocks, ...); a shape clash is an error")
    a("--loaded-lr-scale", type=float, default=1.0, metavar="F",
      help="with --init-partial: the loaded tensors train at F × the learning rate (default 1)")
    a("--freeze-loaded-steps", type=int, default=0, metavar="N",
      help="with --init-partial: the loaded tensors stand still for the first N steps, then "
           "their learning rate ramps up over --warmup steps (default 0)")
    a("--identity-fresh-blocks", action="store_true",
      help="with --init-partial: dual-path blocks that took nothing from the file start as the "
           "identity (their GroupNorm weights and biases zero), so that a model grown by more "
           "blocks (--override num_blocks=12) starts as the file's model")
    a("--seed", type=int, default=0)
    a("--scan", default="auto", choices=list(scan_mod.SCAN_IMPLS),
      help="selective scan: ref (loop), fast (CPU), triton (one direction a call), fused (both "
           "directions in one op, no flipped copies; the faster compiled step, BENCHMARKS.md), "
           "auto (fused on CUDA, else fast)")
    a("--scan-tiles", default="", metavar="SPEC",
      help="with the fused scan: its kernels and tiles (bimamba_triton.TileConfig.parse, e.g. "
           "4:64:1 for v4, S:32:1 or S:32:1+ck+gl for the split variant); default: bimamba_triton's "
           "(training/bench/NOTES.md)")
    a("--amp", default="auto", choices=["auto", "bf16", "off"])
    a("--compile", action=argparse.BooleanOptionalAction, default=False,
      help="torch.compile the training forward (the scan stays eager); first steps compile. "
           "--no-compile after it (e.g. in one model's args of device_run.sh) turns it off")
    a("--cuda-graphs", action=argparse.BooleanOptionalAction, default=False,
      help="with --compile: replay the compiled forward and backward as CUDA graphs (torch.compile "
           "mode reduce-overhead: no launch per kernel); the same maths")
    a("--device", default="auto")
    a("--threads", type=int, default=0)
    a("--trained-on", default="", help="metadata (default: from the training speakers' sources)")
    a("--license", default="", help="metadata (default: from the training speakers' sources)")
    args = ap.parse_args(argv)
    if args.total_steps <= 0 and args.plan_seconds <= 0:
        ap.error("give --total-steps or --plan-seconds (the cosine schedule's length)")
    if args.cuda_graphs and not args.compile:
        ap.error("--cuda-graphs needs --compile (CUDA graphs replay what torch.compile built)")
    if args.scan_tiles:
        try:
            bimamba_triton.TileConfig.parse(args.scan_tiles)
        except ValueError as e:
            ap.error(f"--scan-tiles: {e}")
    if (args.loaded_lr_scale != 1.0 or args.freeze_loaded_steps or args.identity_fresh_blocks) \
            and not args.init_partial:
        ap.error("--loaded-lr-scale, --freeze-loaded-steps and --identity-fresh-blocks need --init-partial")
    if not (args.loaded_lr_scale >= 0 and math.isfinite(args.loaded_lr_scale)) or args.freeze_loaded_steps < 0:
        ap.error("--loaded-lr-scale and --freeze-loaded-steps must not be negative")
    return args


def build_config(args) -> ModelConfig:
    try:
        ov = parse_overrides(args.override, "--override")
        return ModelConfig.preset(args.preset, intra_mixer=args.intra, inter_mixer=args.inter, **ov)
    except ValueError as e:
        raise SystemExit(f"error: {e}")


# MARK: - Setup, resume, loop


@dataclass
class Training:
    """Everything one training process holds: made by `setup`, filled from a checkpoint by
    `resume`, run by `loop`. `st` is the state a checkpoint carries (step, schedule progress,
    best score, log, ...)."""

    args: argparse.Namespace
    t_start: float
    world: int
    rank: int
    dev: torch.device
    amp: bool
    run: Path
    sampler: MixSampler
    synth: tuple | None
    devset: list | None
    cfg: ModelConfig
    model: DPMamba
    opt: torch.optim.Optimizer
    st: dict
    val_time: float = 0.0

    @property
    def main_proc(self) -> bool:
        return self.rank == 0

    def say(self, *a) -> None:
        if self.main_proc:
            print(f"[{self.args.name} {time.time() - self.t_start:6.1f}s]", *a, flush=True)

    def log(self, rec: dict) -> None:
        """Append an event to the state's log and (rank 0) to log.jsonl, and print it."""
        rec = {"name": self.args.name, **rec}
        self.st["log"].append(rec)
        if self.main_proc:
            with open(self.run / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            self.say(json.dumps({k: v for k, v in rec.items() if k not in ("name", "dev_items")}))

    def validate(self) -> None:
        """Score the devset and the synthetic held-out set; a new best is exported (rank 0)."""
        args, st, t = self.args, self.st, time.time()
        rec = {"step": st["step"], "event": "val"}
        if self.devset is not None:
            r = evaluate_devset(self.model, self.devset, self.dev, self.rank, self.world)
            rec["dev_sisnri"] = round(r["mean"], 3)
            rec["dev_groups"] = {k: round(v, 3) for k, v in r["groups"].items()}
            rec["dev_peak_ratio"] = round(r["peak_ratio"], 3)
        if self.synth is not None:
            rec["synth_sisnri"] = round(evaluate_synth(self.model, self.synth[0], self.synth[1], self.dev, 16,
                                                       self.rank, self.world), 3)
        score = rec.get("dev_sisnri", rec.get("synth_sisnri"))
        self.val_time = time.time() - t
        rec["val_time"] = round(self.val_time, 2)
        rec["wall"] = round(time.time() - self.t_start, 1)
        if score is not None and score > st["best"]:
            st["best"], st["best_step"] = score, st["step"]
            rec["best"] = True
            if self.main_proc:
                meta = {"name": args.name, "trained_on": f"{args.trained_on}; {st['step']} steps",
                        "license": args.license, "devset_sisnri": f"{score:.3f}", "step": str(st["step"])}
                save_best(self.model, self.run / "best.safetensors", meta, rec.get("dev_peak_ratio", 1.0))
        self.log(rec)

    def checkpoint(self) -> None:
        if self.main_proc:
            t = time.time()
            save_checkpoint(self.run, self.model, self.opt, self.st)
            self.say(f"checkpoint at step {self.st['step']} ({time.time() - t:.1f} s)")
        if self.world > 1:
            dist.barrier()


def setup(argv=None) -> Training:
    """Parse the arguments; set up the device (and the process group); load and check the data;
    build the model (seeded), the optimiser and a fresh training state."""
    args = parse_args(argv)
    t_start = time.time()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if args.cuda_graphs and world > 1:
        raise SystemExit("error: --cuda-graphs is for one process: DDP's gradient hooks and "
                         "all-reduces have not been tested inside the graphs")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if args.device == "auto":
        dev = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if args.threads:
        torch.set_num_threads(args.threads)
    if world > 1:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    amp = args.amp == "bf16" or (args.amp == "auto" and dev.type == "cuda")
    scan_mod.set_scan_impl(args.scan)
    if args.scan_tiles:
        bimamba_triton.set_tile_config(bimamba_triton.TileConfig.parse(args.scan_tiles))
    run = Path(args.run_dir)
    if rank == 0:
        run.mkdir(parents=True, exist_ok=True)

    # Data: rank 0 decodes (or finds the cache ready); the others wait for it, then find it ready.
    try:
        if world > 1 and rank != 0:
            dist.barrier()
        cache = decoded_cache(args.data, args.cache)
        if world > 1 and rank == 0:
            dist.barrier()
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    corpus = load_corpus(cache).to(dev)
    try:
        augment = Augment(colour=args.augment_colour, room=args.augment_room)
        pseudo = PseudoSpeakers(args.pseudo_speakers, tuple(args.pitch_range), tuple(args.formant_range))
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    if not 0.5 <= args.speed[0] <= args.speed[1] <= 2.0:
        raise SystemExit(f"error: --speed {args.speed[0]} {args.speed[1]}: need 0.5 ≤ LO ≤ HI ≤ 2")
    if args.exclude_engine:
        gone = engine_mask(corpus, set(args.exclude_engine)) & (corpus.split == "train")
        if not gone.any():
            raise SystemExit(f"error: --exclude-engine {' '.join(args.exclude_engine)}: no such "
                             "speakers in the training split")
        corpus.split = np.where(gone, "unused", corpus.split)
    sampler = MixSampler(corpus, "train", seconds=args.seconds, seed=args.seed, augment=augment,
                         speed=tuple(args.speed), pseudo=pseudo)
    trained_on, license_text = sources.describe(corpus.speakers[i] for i in sampler.idx)
    args.trained_on = args.trained_on or trained_on
    args.license = args.license or license_text
    synth = None
    if args.synth_val > 0 and (corpus.split == "heldout").sum() >= 2:
        synth = MixSampler(corpus, "heldout", seconds=args.seconds, seed=args.seed).fixed_set(args.synth_val)
    devset = load_devset(args.devset) if args.devset else None

    cfg = build_config(args)
    torch.manual_seed(args.seed)
    model = DPMamba(cfg).to(dev)
    opt = make_optimizer(model, args, dev)
    st = {"step": 0, "train_time": 0.0, "best": -1e9, "best_step": -1, "log": [], "rewarm_from": -1,
          "config": cfg.to_json(), "args": vars(args), "examples": 0, "loaded": []}
    tr = Training(args, t_start, world, rank, dev, amp, run, sampler, synth, devset, cfg, model, opt, st)
    tr.say(f"data: {len(sampler.idx)} train utterances, {corpus.audio.numel() / 8000 / 3600:.2f} h; "
           f"synthetic val {0 if synth is None else len(synth[0])}; devset {0 if devset is None else len(devset)}; "
           f"speed {args.speed[0]}–{args.speed[1]}, augment colour {args.augment_colour} "
           f"room {args.augment_room} (training only)")
    return tr


def make_optimizer(model, args, dev, loaded=()) -> torch.optim.Optimizer:
    """AdamW over the model's parameters: one group, or after a partial initialisation two,
    "loaded" (the parameters named in `loaded`) and "fresh" (the others), so that `group_lr`
    can treat them apart. Both in the model's parameter order, an empty one left out: the
    same call makes the same groups when a run resumes."""
    kw = dict(lr=args.lr, weight_decay=args.wd, betas=(0.9, 0.999), fused=dev.type == "cuda")
    if not loaded:
        return torch.optim.AdamW(model.parameters(), **kw)
    keep = set(loaded)
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if (n in keep) == (g == "loaded")], "group": g}
              for g in ("loaded", "fresh")]
    return torch.optim.AdamW([g for g in groups if g["params"]], **kw)


def group_lr(args, group: str | None, step: int, lr: float) -> float:
    """A parameter group's learning rate at `step` from the schedule's `lr`: the "loaded" group
    of a partial initialisation stands still for --freeze-loaded-steps, then ramps up over
    --warmup steps, scaled by --loaded-lr-scale; every other group takes `lr`."""
    if group != "loaded":
        return lr
    n = args.freeze_loaded_steps
    if step < n:
        return 0.0
    ramp = min(1.0, (step - n + 1) / max(1, args.warmup)) if n > 0 else 1.0
    return lr * args.loaded_lr_scale * ramp


def init_partial(tr: Training) -> None:
    """--init-weights F --init-partial: load what matches (checkpoint.partial_init_state), say
    what was loaded, left fresh and left unused (stdout: counts and the keys with the block
    numbers folded; log.jsonl: event "init" with every key), and split the optimiser."""
    args = tr.args
    r = partial_init_state(args.init_weights, tr.cfg, tr.model.state_dict())
    missing, unexpected = tr.model.load_state_dict(r.state, strict=False)
    assert not unexpected and sorted(missing) == sorted(r.fresh), (unexpected, missing)
    grown = identity_blocks(tr.model, r.fresh) if args.identity_fresh_blocks else []
    tr.st["loaded"] = [n for n, _ in tr.model.named_parameters() if n in r.state]
    tr.opt = make_optimizer(tr.model, args, tr.dev, tr.st["loaded"])
    tr.st["log"].append({"name": args.name, "event": "init", "step": 0, "file": args.init_weights,
                         "partial": True, "loaded": r.loaded, "fresh": r.fresh, "unused": r.unused,
                         **({"identity_blocks": grown} if args.identity_fresh_blocks else {})})
    tr.say(f"initialised partially from {args.init_weights} (fresh optimiser and schedule): {r.summary()}"
           + (f" ({len(r.other_mixer)} of them in a path whose mixer differs)" if r.other_mixer else ""))
    for what, keys in (("loaded", r.loaded), ("fresh", r.fresh), ("unused", r.unused)):
        tr.say(f"  {what} ({len(keys)}):" + "".join(f"\n      {k}" for k in compact_keys(keys)))
    tr.say(f"  loaded tensors: lr × {args.loaded_lr_scale:g}"
           + (f", frozen for the first {args.freeze_loaded_steps} steps" if args.freeze_loaded_steps else ""))
    if args.identity_fresh_blocks:
        tr.say(f"  blocks starting as the identity: {grown or 'none (every block took tensors from the file)'}")


def identity_blocks(model: DPMamba, fresh: list[str]) -> list[int]:
    """--identity-fresh-blocks: zero the GroupNorm weights and biases of every dual-path block
    none of whose tensors were loaded. Such a block then returns its input (DualPathBlock:
    a = intra_norm(…) + u = u, out = inter_norm(…) + a = a), while the gradients of those
    GroupNorm parameters are not zero, so the block starts to learn at once. Needs the skip
    around the intra path. Returns the block numbers."""
    keys = set(fresh)
    grown = [i for i, blk in enumerate(model.masker.blocks)
             if all(f"masker.blocks.{i}.{k}" in keys for k, _ in blk.named_parameters())]
    if grown and not model.cfg.skip_around_intra:
        raise SystemExit("error: --identity-fresh-blocks needs skip_around_intra (the block's "
                         "intra path has no skip to pass its input through)")
    with torch.no_grad():
        for i in grown:
            blk = model.masker.blocks[i]
            for gn in (blk.intra_norm, blk.inter_norm):
                gn.weight.zero_()
                gn.bias.zero_()
    return grown


def resume(tr: Training) -> None:
    """--resume: weights, optimiser moments (exact, bf16 or fresh with a re-warm-up), training
    state and RNG states from the folder's checkpoint; else --init-weights: weights only (all
    of them, or with --init-partial those that match)."""
    args = tr.args
    folder = tr.run if args.resume == "auto" else (Path(args.resume) if args.resume else None)
    ck_file = find_checkpoint(folder) if folder is not None else None
    if ck_file is not None:
        ck = load_checkpoint(ck_file, tr.cfg)
        tr.model.load_state_dict(ck["model"])
        if ck.get("loaded"):                     # a partial start: the same two groups again
            tr.opt = make_optimizer(tr.model, args, tr.dev, ck["loaded"])
        how = load_optimizer(tr.opt, folder)
        for k in tr.st:
            if k in ck and k not in ("args", "config"):
                tr.st[k] = ck[k]
        if how == "fresh":
            tr.st["rewarm_from"] = tr.st["step"]
        set_rng_state(ck["rng"], tr.dev)
        tr.say(f"resumed from {ck_file} at step {tr.st['step']} (optimiser: {how}); best {tr.st['best']:.2f} dB")
    elif args.resume and args.resume != "auto":
        raise SystemExit(f"error: --resume {args.resume}: no last.pt or last16.pt there")
    elif args.init_weights and args.init_partial:
        init_partial(tr)
    elif args.init_weights:
        tr.model.load_state_dict(init_state(args.init_weights, tr.cfg))
        tr.say(f"initialised from {args.init_weights} (fresh optimiser and schedule)")
    elif args.init_partial:
        raise SystemExit("error: --init-partial needs --init-weights FILE (or a run to resume)")


def loop(tr: Training) -> dict:
    """Train until --max-steps or the time budget, validating and checkpointing every
    --val-every steps and at the end; returns the run's summary."""
    args, st, dev, world = tr.args, tr.st, tr.dev, tr.world
    n_params = sum(p.numel() for p in tr.model.parameters())
    tr.say(f"model {args.name}: {n_params:,} parameters, world {world}, device {dev}, amp {tr.amp}, "
           f"scan {args.scan}, batch {args.batch}x{world}")
    if tr.main_proc:
        with open(tr.run / "log.jsonl", "w") as f:          # the resumed log, then this piece's events
            for rec in st["log"]:
                f.write(json.dumps(rec) + "\n")
    net = torch.nn.parallel.DistributedDataParallel(
        tr.model, device_ids=[dev.index] if dev.type == "cuda" else None) if world > 1 else tr.model
    if args.compile:
        scan_mod.scan_outside_compiler()
        net = torch.compile(net, mode="reduce-overhead" if args.cuda_graphs else None)

    end_by = min(tr.t_start + args.time_budget if args.time_budget else math.inf,
                 args.deadline if args.deadline else math.inf)
    tr.model.train()
    acc_loss, acc_n, t_log, ex_log = 0.0, 0, time.time(), 0
    step_times: list[float] = []
    reason = "max-steps"
    while True:
        if args.max_steps and st["step"] >= args.max_steps:
            break
        if end_by < math.inf and st["step"] % 10 == 0:
            reserve = 2.0 * tr.val_time + 10.0 + (np.median(step_times) if step_times else 0.0)
            stop = torch.tensor([1.0 if time.time() + reserve > end_by else 0.0], device=dev)
            if world > 1:
                dist.all_reduce(stop, op=dist.ReduceOp.MAX)
            if stop.item() > 0:
                reason = "time-budget"
                break
        t0 = time.time()
        progress = (st["step"] / args.total_steps) if args.total_steps > 0 else st["train_time"] / args.plan_seconds
        lr = lr_at(args, st["step"], progress, st["rewarm_from"])
        for g in tr.opt.param_groups:
            g["lr"] = group_lr(args, g.get("group"), st["step"], lr)
        mix, src = tr.sampler.batch(st["step"], tr.rank, args.batch, dev)
        loss, gnorm = train_step(net, tr.model.parameters(), tr.opt, mix, src, tr.amp, args.clip)
        acc_loss += loss.detach()
        acc_n += 1
        st["step"] += 1
        st["examples"] += args.batch * world
        if dev.type == "cuda" and st["step"] % args.log_every == 0:
            torch.cuda.synchronize()
        dt = time.time() - t0
        st["train_time"] += dt
        step_times.append(dt)
        step_times = step_times[-50:]
        ex_log += args.batch * world
        if st["step"] % args.log_every == 0:
            l = torch.as_tensor(acc_loss, dtype=torch.float64, device=dev) / acc_n
            if world > 1:
                dist.all_reduce(l)
                l /= world
            el = time.time() - t_log
            lrs = {"lr_loaded": group_lr(args, "loaded", st["step"] - 1, lr)} if st["loaded"] else {}
            tr.log({"step": st["step"], "event": "train", "loss": round(float(l), 4), "lr": lr, **lrs,
                    "gnorm": round(float(gnorm), 3), "ex_per_s": round(ex_log / el, 1),
                    "step_time": round(el / acc_n, 4), "train_time": round(st["train_time"], 1),
                    "wall": round(time.time() - tr.t_start, 1)})
            acc_loss, acc_n, t_log, ex_log = 0.0, 0, time.time(), 0
        if st["step"] % args.val_every == 0:
            tr.validate()
            tr.checkpoint()
            t_log = time.time()
    if not st["log"] or st["log"][-1].get("event") != "val" or st["log"][-1]["step"] != st["step"]:
        tr.validate()
    tr.checkpoint()
    last_train = next((r for r in reversed(st["log"]) if r.get("event") == "train"), {})
    return {"name": args.name, "event": "end", "reason": reason, "step": st["step"],
            "loss": last_train.get("loss"), "best_dev": st["best"], "best_step": st["best_step"],
            "ex_per_s": last_train.get("ex_per_s"), "wall": round(time.time() - tr.t_start, 1)}


def main(argv=None) -> int:
    tr = setup(argv)
    resume(tr)
    summary = loop(tr)
    if tr.main_proc:
        (tr.run / "summary.json").write_text(json.dumps(summary))
        tr.say("END " + json.dumps(summary))
    if tr.world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
