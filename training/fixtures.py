#!/usr/bin/env python3
"""Write the parity fixtures audio-fixtures/parity/*.safetensors (docs/MODEL.md, "Parity fixtures").

Each file: the model's weights under their state-dict keys, the `io.*` tensors of one forward
pass (computed with the reference scan in float32), and the config in `__metadata__`.
Seeded and deterministic: rerunning rewrites identical tensors on the same PyTorch build.

    python training/fixtures.py [--out audio-fixtures/parity] [--check]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import torch

from mambasep_ref import scan
from mambasep_ref.config import ModelConfig
from mambasep_ref.io import save_tensors
from mambasep_ref.model import DPMamba

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "audio-fixtures", "parity")
RATE = 8000

# Small fixture size: N=16, 2 blocks, K=20 (hop 10), d_state 4, expand 2.
SMALL = dict(n_filters=16, num_blocks=2, chunk_size=20, d_state=4, expand=2, s4d_state=8)


@dataclass
class Fixture:
    """One fixture file: its config, input shape, seeds and storage choices."""
    name: str
    description: str
    config: ModelConfig
    batch: int
    samples: int
    seed: int
    perturb: bool = True
    weights_f16: bool = False
    keep_blocks: list[int] | None = None   # None: every io.block{i}
    notes: dict[str, Any] = field(default_factory=dict)


FIXTURES = [
    Fixture("small_mamba", "BiMamba on both paths, N=16, 2 blocks, K=20, d_state 4, dt_rank 3, "
            "batch 2, T=2401 (not a multiple of the stride)",
            ModelConfig.preset("xs", **SMALL, dt_rank=3), batch=2, samples=2401, seed=1),
    Fixture("small_s4d", "BiS4D on both paths (S4D-Lin), N=16, 2 blocks, K=20, s4d_state 8",
            ModelConfig.preset("xs", **SMALL, intra_mixer="s4d", inter_mixer="s4d"),
            batch=1, samples=1600, seed=2),
    Fixture("small_mixed_noskip", "BiMamba intra + BiS4D (LegS init) inter, "
            "skip_around_intra=false, N=16, 2 blocks, K=20",
            ModelConfig.preset("xs", **SMALL, inter_mixer="s4d", s4d_init="legs",
                               skip_around_intra=False),
            batch=1, samples=1600, seed=3),
    Fixture("small_mamba_c3", "three speakers (C=3), BiMamba, N=16, 2 blocks, K=20, "
            "T=1599, batch 2",
            ModelConfig.preset("xs", **SMALL, num_speakers=3), batch=2, samples=1599, seed=4),
    Fixture("xs", "the XS preset, plain random init (seed 0, as `export.py --preset xs --init "
            "random --seed 0`), weights stored F16 (outputs computed from the F16-rounded "
            "weights), T=2992 (0.374 s: S=4 chunks), only the last block's io.block7 kept "
            "(size budget)",
            ModelConfig.preset("xs"), batch=1, samples=2992, seed=0, perturb=False,
            weights_f16=True, keep_blocks=[7]),
]


# MARK: - Inputs and weights


def make_input(batch: int, samples: int, seed: int) -> torch.Tensor:
    """[B, T] deterministic test mixture: a few sines with a slow tremolo plus white noise."""
    g = torch.Generator().manual_seed(1000 + seed)
    t = torch.arange(samples, dtype=torch.float64) / RATE                   # [T]
    rows = []
    for _ in range(batch):
        f = 120 + 900 * torch.rand(4, generator=g, dtype=torch.float64)    # [4] Hz
        ph = 2 * math.pi * torch.rand(4, generator=g, dtype=torch.float64)
        amp = 0.05 + 0.2 * torch.rand(4, generator=g, dtype=torch.float64)
        trem = 0.6 + 0.4 * torch.sin(2 * math.pi * 3 * t[None] + ph[:, None])  # [4, T]
        x = (amp[:, None] * trem * torch.sin(2 * math.pi * f[:, None] * t + ph[:, None])).sum(0)
        x = x + 0.03 * torch.randn(samples, generator=g, dtype=torch.float64)
        rows.append(x)
    return torch.stack(rows).float()                                        # [B, T]


@torch.no_grad()
def perturb(model: DPMamba, seed: int) -> None:
    """Seeded, O(1) perturbations so every stage of a random-init model carries signal.

    Norm gains in [0.5, 1.5], non-zero norm/conv biases, jittered A_log / S4D poles, varied D,
    Mamba steps delta in [0.05, 1], larger encoder/decoder, mixer and head weights (default
    init shrinks activations, leaving the mixers a few percent of the residual stream).
    """
    g = torch.Generator().manual_seed(5000 + seed)

    def rn(p: torch.Tensor) -> torch.Tensor:
        return torch.randn(p.shape, generator=g)

    def ru(p: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(p.shape, generator=g)

    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        parent = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else ""
        if leaf == "weight" and ("norm" in parent):
            p.copy_(ru(p, 0.5, 1.5))
        elif leaf == "bias" and "norm" in parent:
            p.copy_(0.2 * rn(p))
        elif leaf == "weight" and parent == "prelu":
            p.copy_(ru(p, 0.1, 0.4))
        elif leaf in ("A_log", "A_b_log"):
            p.add_(0.3 * rn(p))
        elif leaf in ("D", "D_b") and "mixer" in name and p.dim() == 1:
            p.add_(0.5 * rn(p))
        elif leaf in ("log_A_real", "log_A_real_b", "A_imag", "A_imag_b"):
            p.add_(0.3 * rn(p))
        elif leaf == "bias" and parent in ("dt_proj", "dt_proj_b"):
            dt = ru(p, 0.05, 1.0)                     # step sizes with real memory
            p.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
        elif leaf == "bias":
            p.add_(0.1 * rn(p))
        elif leaf == "weight" and parent in ("in_proj", "out_proj", "encoder", "conv"):
            p.mul_(3.0)
        elif leaf == "weight" and parent in ("conv1d", "conv1d_b"):
            p.mul_(2.0)
        elif leaf == "weight" and parent in ("x_proj", "x_proj_b", "conv_out",
                                             "output", "output_gate", "end_conv", "conv_in"):
            p.mul_(1.7)


# MARK: - Build


def build(fx: Fixture) -> tuple[dict[str, torch.Tensor], dict[str, str], DPMamba]:
    """(tensors to save, metadata, model) of one fixture."""
    torch.manual_seed(fx.seed)
    model = DPMamba(fx.config).eval()
    if fx.perturb:
        perturb(model, fx.seed)
    if fx.weights_f16:
        with torch.no_grad():
            for p in model.state_dict().values():
                p.copy_(p.half().float())
    x = make_input(fx.batch, fx.samples, fx.seed)
    prev = scan.get_scan_impl()
    scan.set_scan_impl("ref")
    try:
        with torch.inference_mode():
            io = model.forward_intermediates(x)
    finally:
        scan.set_scan_impl(prev)
    if fx.keep_blocks is not None:
        io = {k: v for k, v in io.items()
              if not k.startswith("io.block") or int(k[len("io.block"):]) in fx.keep_blocks}
    weights = {k: (v.half() if fx.weights_f16 else v.float())
               for k, v in model.state_dict().items()}
    tensors = {**weights, **{k: v.float() for k, v in io.items()}}
    meta = {"config": fx.config.to_json(), "name": f"parity-{fx.name}", "format": "pt"}
    return tensors, meta, model


def stats(tensors: dict[str, torch.Tensor]) -> str:
    lines = []
    for k, v in tensors.items():
        if k.startswith("io."):
            nz = (v != 0).float().mean().item()
            lines.append(f"    {k:12s} {str(tuple(v.shape)):22s} std {v.std().item():8.4f}  "
                         f"max|.| {v.abs().max().item():8.4f}  nonzero {nz:.2f}")
    return "\n".join(lines)


@torch.no_grad()
def float64_error(model: DPMamba, tensors: dict[str, torch.Tensor]) -> str:
    """Max |float32 − float64| per io tensor: the noise floor parity tolerances must exceed."""
    m64 = DPMamba(model.cfg)
    m64.load_state_dict(model.state_dict())
    m64 = m64.double().eval()
    prev = scan.get_scan_impl()
    scan.set_scan_impl("ref")
    try:
        io64 = m64.forward_intermediates(tensors["io.input"].double())
    finally:
        scan.set_scan_impl(prev)
    parts = []
    for k, v in tensors.items():
        if k.startswith("io.") and k != "io.input":
            d = (v.double() - io64[k]).abs().max().item()
            parts.append(f"{k[3:]} {d:.1e}")
    return "    f32 vs f64 max abs diff: " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--only", nargs="*", help="fixture names to write (default: all)")
    ap.add_argument("--check", action="store_true",
                    help="also report the float32 vs float64 difference of each io tensor")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for fx in FIXTURES:
        if args.only and fx.name not in args.only:
            continue
        tensors, meta, model = build(fx)
        path = os.path.join(args.out, f"{fx.name}.safetensors")
        save_tensors(tensors, path, meta)
        size = os.path.getsize(path)
        total += size
        print(f"{path}: {size / 1e6:.2f} MB — {fx.description}")
        print(stats(tensors))
        if args.check:
            print(float64_error(model, tensors))
    print(f"total {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
