"""SI-SNR and its permutation-invariant (PIT) form, as in SpeechBrain / Asteroid.

Glossary: B batch, C sources, T samples.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

__all__ = ["si_snr", "pit_si_snr", "pit_loss"]


def si_snr(est: Tensor, ref: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale-invariant SNR in dB over the last (time) axis, means removed; shape = leading dims.

    s_t = <ŝ,s>/(‖s‖²+ε)·s, e = ŝ − s_t, 10·log10(‖s_t‖²/(‖e‖²+ε) + ε). Shapes must match
    in the time axis and broadcast in the others.
    """
    try:
        torch.broadcast_shapes(est.shape, ref.shape)
    except RuntimeError:
        raise ValueError(f"si_snr: shapes do not broadcast: {tuple(est.shape)} vs "
                         f"{tuple(ref.shape)}") from None
    if est.shape[-1] != ref.shape[-1]:
        raise ValueError(f"si_snr: lengths differ: {est.shape[-1]} vs {ref.shape[-1]}")
    est = est - est.mean(-1, keepdim=True)
    ref = ref - ref.mean(-1, keepdim=True)
    dot = (est * ref).sum(-1, keepdim=True)
    s_t = dot / (ref.pow(2).sum(-1, keepdim=True) + eps) * ref
    e = est - s_t
    return 10 * torch.log10(s_t.pow(2).sum(-1) / (e.pow(2).sum(-1) + eps) + eps)


def pit_si_snr(est: Tensor, ref: Tensor, eps: float = 1e-8) -> tuple[Tensor, Tensor]:
    """Best mean SI-SNR over all source permutations: (score [B], perm [B, C]).

    est, ref [B, C, T]. `perm[b, j]` is the estimate index paired with reference j, so
    `est[b, perm[b]]` lines up with `ref[b]`. Tries all C! permutations.
    """
    if est.dim() != 3 or est.shape != ref.shape:
        raise ValueError(f"pit_si_snr: expected est, ref [B, C, T] of one shape, got "
                         f"{tuple(est.shape)} and {tuple(ref.shape)}")
    b, c, _ = est.shape
    pair = si_snr(est[:, :, None, :], ref[:, None, :, :], eps)                # [B, C_est, C_ref]
    perms = torch.tensor(list(itertools.permutations(range(c))), device=est.device)  # [P, C]
    ref_idx = torch.arange(c, device=est.device)
    scores = pair[:, perms, ref_idx].mean(-1)                                   # [B, P]
    best, idx = scores.max(-1)                                                  # [B]
    return best, perms[idx]


def pit_loss(est: Tensor, ref: Tensor, eps: float = 1e-8) -> Tensor:
    """Training loss: −(batch mean of the PIT SI-SNR)."""
    return -pit_si_snr(est, ref, eps)[0].mean()
