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
an exported .safetensors or a checkpoint (.pt) with a fresh optimiser, schedule and step count.
`--time-budget SEC`: stop cleanly (validate, save) before SEC seconds after start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

import sources
from data import Augment, MixSampler, PseudoSpeakers, decoded_cache, engine_mask, load_corpus
from mambasep_ref import scan as scan_mod
from mambasep_ref.config import ModelConfig, parse_overrides
from mambasep_ref.model import DPMamba
from mambasep_ref.losses import pit_loss
from validate import evaluate_devset, evaluate_synth, load_devset

# MARK: - Setup


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
    a("--init-weights", default="")
    a("--seed", type=int, default=0)
    a("--scan", default="auto", choices=list(scan_mod.SCAN_IMPLS),
      help="selective scan: ref (loop), fast (CPU), triton (one direction a call), fused (both "
           "directions, gate and merge in one op; not yet faster), auto (triton on CUDA, else fast)")
    a("--amp", default="auto", choices=["auto", "bf16", "off"])
    a("--compile", action="store_true",
      help="torch.compile the training forward (the scan stays eager); first steps compile")
    a("--device", default="auto")
    a("--threads", type=int, default=0)
    a("--trained-on", default="", help="metadata (default: from the training speakers' sources)")
    a("--license", default="", help="metadata (default: from the training speakers' sources)")
    args = ap.parse_args(argv)
    if args.total_steps <= 0 and args.plan_seconds <= 0:
        ap.error("give --total-steps or --plan-seconds (the cosine schedule's length)")
    return args


def build_config(args) -> ModelConfig:
    try:
        ov = parse_overrides(args.override, "--override")
        return ModelConfig.preset(args.preset, intra_mixer=args.intra, inter_mixer=args.inter, **ov)
    except ValueError as e:
        raise SystemExit(f"error: {e}")


def lr_at(args, step: int, progress: float, rewarm_from: int) -> float:
    """Warm-up (and re-warm-up after a resume without moments), then cosine to min_lr."""
    w = min(1.0, (step + 1) / max(1, args.warmup))
    if rewarm_from >= 0:
        w = min(w, (step - rewarm_from + 1) / max(1, args.rewarm))
    p = min(1.0, max(0.0, progress))
    return w * (args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * p)))


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# MARK: - Checkpoints


def save_checkpoint(run: Path, model, opt, st: dict) -> None:
    """last.pt + optimiser files (see module doc); written atomically, rank 0 only."""
    sd = opt.state_dict()
    m1 = {k: v["exp_avg"] for k, v in sd["state"].items()}
    m2 = {k: {kk: vv for kk, vv in v.items() if kk != "exp_avg"} for k, v in sd["state"].items()}
    atomic_save({"state": m1}, run / "last.optim1.pt")
    atomic_save({"state": m2, "param_groups": sd["param_groups"]}, run / "last.optim2.pt")
    half = {k: {"exp_avg": v["exp_avg"].bfloat16(), "exp_avg_sq": v["exp_avg_sq"].bfloat16(),
                "step": v["step"]} for k, v in sd["state"].items()}
    atomic_save({"state": half, "param_groups": sd["param_groups"]}, run / "last.optim16.pt")
    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    atomic_save({"model": model.state_dict(), "rng": rng, **st}, run / "last.pt")
    light = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    atomic_save({"model": light, "rng": rng, **st}, run / "last16.pt")


def load_optimizer(opt, src: Path) -> str:
    """Fill `opt` from src's optimiser files; returns 'exact', 'bf16' or 'fresh'."""
    sd = opt.state_dict()
    if (src / "last.optim1.pt").exists() and (src / "last.optim2.pt").exists():
        m1 = torch.load(src / "last.optim1.pt", map_location="cpu", weights_only=False)["state"]
        m2 = torch.load(src / "last.optim2.pt", map_location="cpu", weights_only=False)
        state = {k: {**m2["state"][k], "exp_avg": m1[k]} for k in m1}
        opt.load_state_dict({"state": state, "param_groups": m2["param_groups"]})
        return "exact"
    if (src / "last.optim16.pt").exists():
        h = torch.load(src / "last.optim16.pt", map_location="cpu", weights_only=False)
        state = {k: {"exp_avg": v["exp_avg"].float(), "exp_avg_sq": v["exp_avg_sq"].float(),
                     "step": v["step"]} for k, v in h["state"].items()}
        opt.load_state_dict({"state": state, "param_groups": h["param_groups"]})
        return "bf16"
    opt.load_state_dict({"state": {}, "param_groups": sd["param_groups"]})
    return "fresh"


def init_state(path: str, cfg: ModelConfig) -> dict:
    """Weights to start from: an exported .safetensors or a training checkpoint (last.pt / last16.pt).

    The file's config must equal `cfg`; float16 checkpoint weights are widened to float32.
    """
    from mambasep_ref.io import WeightsError, load_weights  # noqa: PLC0415
    try:
        m0, _ = load_weights(path)
    except WeightsError as e:
        raise SystemExit(f"error: {e}")
    if m0.cfg.to_json() != cfg.to_json():
        raise SystemExit(f"error: {path} has config {m0.cfg.to_json()}, not {cfg.to_json()}")
    return m0.state_dict()


def output_gain(peak_ratio: float) -> float:
    """The largest power of two g ≤ 1 with peak_ratio · g ≤ 1: exported estimates then peak no
    higher than their mixture on the devset (SI-SNR training leaves the level free; ours came out
    at 3–6× the mixture and clipped in 16-bit files). 1 for a ratio ≤ 1 or not finite."""
    if not math.isfinite(peak_ratio) or peak_ratio <= 1.0:
        return 1.0
    return 2.0 ** -math.ceil(math.log2(peak_ratio))


@contextlib.contextmanager
def scaled_decoder(model, gain: float):
    """Context: the model's output scaled by `gain` (io.scale_output), undone exactly after."""
    from mambasep_ref.io import scale_output  # noqa: PLC0415
    scale_output(model, gain)
    try:
        yield model
    finally:
        scale_output(model, 1.0 / gain)


def train_step(net, params, opt, mix: torch.Tensor, src: torch.Tensor, amp: bool,
               clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch (mix [B, T], src [B, C, T]): bf16 forward when `amp`, loss
    −PIT SI-SNR in float32, backward, clipping to `clip`; returns (loss, gradient norm), both
    still on the device (no host sync)."""
    with torch.autocast(mix.device.type, dtype=torch.bfloat16, enabled=amp):
        est = net(mix)                                                           # [B, C, T]
    loss = pit_loss(est.float(), src)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = torch.nn.utils.clip_grad_norm_(params, clip)
    skip_nonfinite_step(opt, gnorm)
    return loss, gnorm


def skip_nonfinite_step(opt, gnorm: torch.Tensor) -> None:
    """opt.step(), skipped when the gradient norm is not finite, without waiting for the GPU.

    A fused CUDA AdamW takes the decision on the device through its `found_inf` tensor (the
    attribute GradScaler sets), so the CPU keeps queueing kernels; elsewhere the check syncs.
    """
    if getattr(opt, "_step_supports_amp_scaling", False) and gnorm.is_cuda:
        opt.found_inf = (~torch.isfinite(gnorm)).float()
        opt.grad_scale = None
        try:
            opt.step()
        finally:
            del opt.found_inf, opt.grad_scale
    elif torch.isfinite(gnorm):
        opt.step()


# MARK: - Main


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.time()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
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
    main_proc = rank == 0
    run = Path(args.run_dir)
    if main_proc:
        run.mkdir(parents=True, exist_ok=True)

    def say(*a):
        if main_proc:
            print(f"[{args.name} {time.time() - t_start:6.1f}s]", *a, flush=True)

    # Data: rank 0 decodes (or finds the cache ready); the others wait for it, then find it ready.
    try:
        if world > 1 and not main_proc:
            dist.barrier()
        cache = decoded_cache(args.data, args.cache)
        if world > 1 and main_proc:
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
    say(f"data: {len(sampler.idx)} train utterances, {corpus.audio.numel() / 8000 / 3600:.2f} h; "
        f"synthetic val {0 if synth is None else len(synth[0])}; devset {0 if devset is None else len(devset)}; "
        f"speed {args.speed[0]}–{args.speed[1]}, augment colour {args.augment_colour} "
        f"room {args.augment_room} (training only)")

    # Model, optimiser, state.
    cfg = build_config(args)
    torch.manual_seed(args.seed)
    model = DPMamba(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd, betas=(0.9, 0.999),
                            fused=dev.type == "cuda")
    st = {"step": 0, "train_time": 0.0, "best": -1e9, "best_step": -1, "log": [], "rewarm_from": -1,
          "config": cfg.to_json(), "args": vars(args), "examples": 0}
    resume = run if args.resume == "auto" else (Path(args.resume) if args.resume else None)
    ck_file = None
    if resume is not None:
        ck_file = next((resume / f for f in ("last.pt", "last16.pt") if (resume / f).exists()), None)
    if ck_file is not None:
        ck = torch.load(ck_file, map_location="cpu", weights_only=False)
        ck["model"] = {k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()}
        if ck["config"] != cfg.to_json():
            raise SystemExit(f"error: {resume}/last.pt has config {ck['config']}, not {cfg.to_json()}")
        model.load_state_dict(ck["model"])
        how = load_optimizer(opt, resume)
        for k in st:
            if k in ck and k not in ("args", "config"):
                st[k] = ck[k]
        if how == "fresh":
            st["rewarm_from"] = st["step"]
        torch.set_rng_state(ck["rng"]["torch"])
        np.random.set_state(ck["rng"]["numpy"])
        random.setstate(ck["rng"]["python"])
        if dev.type == "cuda" and "cuda" in ck["rng"] and len(ck["rng"]["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(ck["rng"]["cuda"])
        say(f"resumed from {ck_file} at step {st['step']} (optimiser: {how}); best {st['best']:.2f} dB")
    elif args.resume and args.resume != "auto":
        raise SystemExit(f"error: --resume {args.resume}: no last.pt or last16.pt there")
    elif args.init_weights:
        model.load_state_dict(init_state(args.init_weights, cfg))
        say(f"initialised from {args.init_weights} (fresh optimiser and schedule)")
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model {args.name}: {n_params:,} parameters, world {world}, device {dev}, amp {amp}, "
        f"scan {args.scan}, batch {args.batch}x{world}")
    if main_proc:
        with open(run / "log.jsonl", "w") as f:
            for rec in st["log"]:
                f.write(json.dumps(rec) + "\n")
    net = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[dev.index] if dev.type == "cuda" else None) if world > 1 else model
    if args.compile:
        scan_mod.scan_outside_compiler()
        net = torch.compile(net)

    def log(rec: dict) -> None:
        rec = {"name": args.name, **rec}
        st["log"].append(rec)
        if main_proc:
            with open(run / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            say(json.dumps({k: v for k, v in rec.items() if k not in ("name", "dev_items")}))

    val_time = [0.0]

    def validate() -> None:
        t = time.time()
        rec = {"step": st["step"], "event": "val"}
        if devset is not None:
            r = evaluate_devset(model, devset, dev, rank, world)
            rec["dev_sisnri"] = round(r["mean"], 3)
            rec["dev_groups"] = {k: round(v, 3) for k, v in r["groups"].items()}
            rec["dev_peak_ratio"] = round(r["peak_ratio"], 3)
        if synth is not None:
            rec["synth_sisnri"] = round(evaluate_synth(model, synth[0], synth[1], dev, 16, rank, world), 3)
        score = rec.get("dev_sisnri", rec.get("synth_sisnri"))
        val_time[0] = time.time() - t
        rec["val_time"] = round(val_time[0], 2)
        rec["wall"] = round(time.time() - t_start, 1)
        if score is not None and score > st["best"]:
            st["best"], st["best_step"] = score, st["step"]
            rec["best"] = True
            if main_proc:
                from mambasep_ref.io import save_model  # noqa: PLC0415
                meta = {"name": args.name, "trained_on": f"{args.trained_on}; {st['step']} steps",
                        "license": args.license,
                        "devset_sisnri": f"{score:.3f}", "step": str(st["step"])}
                gain = output_gain(rec.get("dev_peak_ratio", 1.0))
                meta["output_gain"] = f"{gain:g}"
                with scaled_decoder(model, gain):
                    save_model(model, run / "best.safetensors", meta)   # written aside, renamed
        log(rec)

    def checkpoint() -> None:
        if main_proc:
            t = time.time()
            save_checkpoint(run, model, opt, st)
            say(f"checkpoint at step {st['step']} ({time.time() - t:.1f} s)")
        if world > 1:
            dist.barrier()

    # MARK: - Loop
    end_by = min(t_start + args.time_budget if args.time_budget else math.inf,
                 args.deadline if args.deadline else math.inf)
    model.train()
    acc_loss, acc_n, t_log, ex_log = 0.0, 0, time.time(), 0
    step_times: list[float] = []
    reason = "max-steps"
    while True:
        if args.max_steps and st["step"] >= args.max_steps:
            break
        if end_by < math.inf and st["step"] % 10 == 0:
            reserve = 2.0 * val_time[0] + 10.0 + (np.median(step_times) if step_times else 0.0)
            stop = torch.tensor([1.0 if time.time() + reserve > end_by else 0.0], device=dev)
            if world > 1:
                dist.all_reduce(stop, op=dist.ReduceOp.MAX)
            if stop.item() > 0:
                reason = "time-budget"
                break
        t0 = time.time()
        progress = (st["step"] / args.total_steps) if args.total_steps > 0 else st["train_time"] / args.plan_seconds
        lr = lr_at(args, st["step"], progress, st["rewarm_from"])
        for g in opt.param_groups:
            g["lr"] = lr
        mix, src = sampler.batch(st["step"], rank, args.batch, dev)
        loss, gnorm = train_step(net, model.parameters(), opt, mix, src, amp, args.clip)
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
            log({"step": st["step"], "event": "train", "loss": round(float(l), 4), "lr": lr,
                 "gnorm": round(float(gnorm), 3), "ex_per_s": round(ex_log / el, 1),
                 "step_time": round(el / acc_n, 4), "train_time": round(st["train_time"], 1),
                 "wall": round(time.time() - t_start, 1)})
            acc_loss, acc_n, t_log, ex_log = 0.0, 0, time.time(), 0
        if st["step"] % args.val_every == 0:
            validate()
            checkpoint()
            t_log = time.time()
    if not st["log"] or st["log"][-1].get("event") != "val" or st["log"][-1]["step"] != st["step"]:
        validate()
    checkpoint()
    last_train = next((r for r in reversed(st["log"]) if r.get("event") == "train"), {})
    summary = {"name": args.name, "event": "end", "reason": reason, "step": st["step"],
               "loss": last_train.get("loss"), "best_dev": st["best"], "best_step": st["best_step"],
               "ex_per_s": last_train.get("ex_per_s"), "wall": round(time.time() - t_start, 1)}
    if main_proc:
        (run / "summary.json").write_text(json.dumps(summary))
        say("END " + json.dumps(summary))
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
