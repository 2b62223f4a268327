"""One training step and the learning-rate schedule (train.py's loop, probe.py and bench_step.py
time this very step)."""

from __future__ import annotations

import math

import torch

from mambasep_ref.losses import pit_loss


def lr_at(args, step: int, progress: float, rewarm_from: int) -> float:
    """Linear warm-up over `args.warmup` steps (and over `args.rewarm` steps again from
    `rewarm_from` ≥ 0, after a resume without optimiser moments), then cosine from `args.lr` to
    `args.min_lr` as `progress` goes from 0 to 1."""
    w = min(1.0, (step + 1) / max(1, args.warmup))
    if rewarm_from >= 0:
        w = min(w, (step - rewarm_from + 1) / max(1, args.rewarm))
    p = min(1.0, max(0.0, progress))
    return w * (args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * p)))


def train_step(net, params, opt, mix: torch.Tensor, src: torch.Tensor, amp: bool,
               clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch (mix [B, T], src [B, C, T]): bf16 forward when `amp`, loss
    −PIT SI-SNR in float32, backward, clipping to `clip`; returns (loss, gradient norm), both
    still on the device (no host sync)."""
    if mix.is_cuda:   # a new step for CUDA graphs (torch.compile mode reduce-overhead); else a no-op
        torch.compiler.cudagraph_mark_step_begin()
    opt.zero_grad(set_to_none=True)   # first: no gradient outlives the step (CUDA graphs reuse their memory)
    with torch.autocast(mix.device.type, dtype=torch.bfloat16, enabled=amp):
        est = net(mix)                                                           # [B, C, T]
    loss = pit_loss(est.float(), src)
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
