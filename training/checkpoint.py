"""Checkpoint I/O of train.py: the run folder's files (train.py's module doc lists them).

Exact resume needs all of: the weights, the AdamW moments and step counts (float32), the
training state (`st`: step, schedule progress, best score, log, ...) and every RNG state.
Files are written atomically (to `NAME.tmp`, then renamed), by rank 0 only.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mambasep_ref.config import ModelConfig

CHECKPOINTS = ("last.pt", "last16.pt")   # what --resume looks for, in this order


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# MARK: - RNG


def rng_state() -> dict:
    """The states of torch's, NumPy's and Python's global generators (and CUDA's when present)."""
    rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def set_rng_state(rng: dict, dev: torch.device) -> None:
    """Restore `rng_state()`'s states; CUDA's only on CUDA with the same number of GPUs."""
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if dev.type == "cuda" and "cuda" in rng and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])


# MARK: - Writing


def save_checkpoint(run: Path, model, opt, st: dict) -> None:
    """last.pt, last16.pt and the three optimiser files (train.py's module doc)."""
    sd = opt.state_dict()
    m1 = {k: v["exp_avg"] for k, v in sd["state"].items()}
    m2 = {k: {kk: vv for kk, vv in v.items() if kk != "exp_avg"} for k, v in sd["state"].items()}
    atomic_save({"state": m1}, run / "last.optim1.pt")
    atomic_save({"state": m2, "param_groups": sd["param_groups"]}, run / "last.optim2.pt")
    half = {k: {"exp_avg": v["exp_avg"].bfloat16(), "exp_avg_sq": v["exp_avg_sq"].bfloat16(),
                "step": v["step"]} for k, v in sd["state"].items()}
    atomic_save({"state": half, "param_groups": sd["param_groups"]}, run / "last.optim16.pt")
    rng = rng_state()
    atomic_save({"model": model.state_dict(), "rng": rng, **st}, run / "last.pt")
    light = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    atomic_save({"model": light, "rng": rng, **st}, run / "last16.pt")


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


def save_best(model, path: Path, meta: dict[str, str], peak_ratio: float) -> None:
    """Export the model (mambasep_ref.io.save_model: written aside, then renamed) with its decoder
    scaled by `output_gain(peak_ratio)`, recorded as metadata `output_gain`."""
    from mambasep_ref.io import save_model  # noqa: PLC0415
    gain = output_gain(peak_ratio)
    with scaled_decoder(model, gain):
        save_model(model, path, {**meta, "output_gain": f"{gain:g}"})


# MARK: - Reading


def find_checkpoint(folder: Path) -> Path | None:
    """folder's last.pt, else its last16.pt, else None."""
    return next((folder / f for f in CHECKPOINTS if (folder / f).exists()), None)


def load_checkpoint(path: Path, cfg: ModelConfig) -> dict:
    """A checkpoint (last.pt or last16.pt) with its weights widened to float32; SystemExit when
    it was written for another config."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    ck["model"] = {k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()}
    if ck["config"] != cfg.to_json():
        raise SystemExit(f"error: {path} has config {ck['config']}, not {cfg.to_json()}")
    return ck


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


# MARK: - Partial initialisation (--init-partial)

MIXER_KEY = re.compile(r"\.(intra|inter)\.mixer\.")   # a path layer's mixer: masker.blocks.I.PATH.mixer.*


@dataclass
class PartialInit:
    """What `partial_init_state` took from a file: the tensors to load and, by key, what was
    loaded, what stays at its fresh initialisation and what of the file went unused (each
    sorted in the new model's, or the file's, state-dict order)."""

    state: dict = field(default_factory=dict)      # key → tensor (float32), the loaded part
    loaded: list = field(default_factory=list)
    fresh: list = field(default_factory=list)
    unused: list = field(default_factory=list)
    other_mixer: list = field(default_factory=list)  # the unused ones of a path whose mixer changed

    def summary(self) -> str:
        return (f"{len(self.loaded)} tensors loaded, {len(self.fresh)} fresh, "
                f"{len(self.unused)} of the file's unused")


def _mixer_of(key: str, cfg: ModelConfig) -> str | None:
    m = MIXER_KEY.search(key)
    return None if m is None else getattr(cfg, f"{m.group(1)}_mixer")


def _config_diff(a: ModelConfig, b: ModelConfig) -> str:
    da, db = a.to_dict(), b.to_dict()
    return ", ".join(f"{k} {da[k]!r} → {db[k]!r}" for k in da if da[k] != db[k]) or "none"


def partial_init_state(path: str, cfg: ModelConfig, target: dict) -> PartialInit:
    """--init-partial: the tensors of `path` (an exported .safetensors or a checkpoint, as
    `init_state`) that a model of config `cfg`, whose state dict is `target`, can take over.

    A tensor carries over when its key is in `target` with the same shape. The tensors of a
    path layer's mixer (`masker.blocks.I.intra|inter.mixer.*`) carry over only when the file's
    config has the same mixer on that path: BiMamba's `D` or `out_proj.weight` are other
    tensors than BiS4D's of the same name. SystemExit when a key that should carry over has
    another shape (a config mistake: the message names the tensor and the configs' differences)
    or when nothing carries over.
    """
    from mambasep_ref.io import WeightsError, load_weights  # noqa: PLC0415
    try:
        m0, _ = load_weights(path)
    except WeightsError as e:
        raise SystemExit(f"error: {e}")
    src = m0.state_dict()
    out = PartialInit()
    for k, v in src.items():
        mixer = _mixer_of(k, m0.cfg)
        if mixer is not None and mixer != _mixer_of(k, cfg):
            out.unused.append(k)
            out.other_mixer.append(k)
        elif k not in target:
            out.unused.append(k)
        elif tuple(v.shape) != tuple(target[k].shape):
            raise SystemExit(
                f"error: --init-partial {path}: tensor {k} has shape {tuple(v.shape)} there and "
                f"{tuple(target[k].shape)} in this model (config differences, file → this model: "
                f"{_config_diff(m0.cfg, cfg)})")
        else:
            out.state[k] = v
    out.loaded = [k for k in target if k in out.state]
    out.fresh = [k for k in target if k not in out.state]
    if not out.loaded:
        raise SystemExit(f"error: --init-partial {path}: no tensor of the file matches this model "
                         f"(key and shape; config differences, file → this model: "
                         f"{_config_diff(m0.cfg, cfg)})")
    return out


def compact_keys(keys: list[str]) -> list[str]:
    """State-dict keys with the block numbers folded: `masker.blocks.[0-7].inter.mixer.C`
    stands for 8 keys (a readable list for stdout; the log has every key)."""
    groups: dict[str, list[int]] = {}
    for k in keys:
        m = re.match(r"(.*\.blocks\.)(\d+)(\..*)", k)
        pat, i = ((m.group(1) + "{}" + m.group(3)), int(m.group(2))) if m else (k, -1)
        groups.setdefault(pat, []).append(i)
    out = []
    for pat, idx in groups.items():
        if idx == [-1]:
            out.append(pat)
            continue
        idx = sorted(set(idx))
        runs, start = [], idx[0]
        for a, b in zip(idx, idx[1:] + [None]):
            if b != a + 1:
                runs.append(str(start) if start == a else f"{start}-{a}")
                start = b
        out.append(pat.format(runs[0] if len(idx) == 1 else "[" + ",".join(runs) + "]"))
    return out
