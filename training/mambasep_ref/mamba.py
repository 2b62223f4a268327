"""Bidirectional Mamba mixer ("v2", as in Vision Mamba): shared in_proj, per-direction SSM.

Glossary: B' sequences, L' steps, N model width, E inner width (expand · N), R dt rank,
M state size, W depthwise conv width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import scan
from .config import ModelConfig
from .scan import selective_scan

__all__ = ["BiMamba"]


class _PerDirectionLinear(torch.autograd.Function):
    """y[d] = x[d] · w[d]ᵀ for each direction d: x [2, P, K], w [2, O, K] → y [2, P, O].

    The forward and the input gradient are one batched product each. The weight gradient,
    w's [O, K] from a sum over P ≈ 10⁵ rows, is one product per direction: cuBLAS then splits
    the long sum across the GPU (split-K), which it does not for the batched form (on an H100
    the batched weight gradients of x_proj and dt_proj took 0.21 ms a call against 0.04 ms for
    each direction's own; training/bench/NOTES.md, v8). The maths is the batched product's.
    x and w share one dtype (the caller casts w), so y and g have it too.

    With `tee` it returns (y, x'), x' a view of x for x's other consumer, and x's gradient is
    that consumer's gradient plus g · w in one product (baddbmm: the GEMM adds the other
    gradient as it writes), where autograd would write g · w and then add the two in a pass of
    its own over [2, P, K] (BiMamba's xc, whose other consumer is the scan: ≈ 2 ms a training
    step on an H100, v8's profile).
    """

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, tee: bool = False):
        ctx.save_for_backward(x, w)
        y = torch.bmm(x, w.transpose(1, 2))                                    # [2, P, O]
        return (y, x.view_as(x)) if tee else y

    @staticmethod
    def backward(ctx, g: Tensor, g_tee: Tensor | None = None):
        x, w = ctx.saved_tensors
        gx = None
        if ctx.needs_input_grad[0]:   # autograd hands g_tee in x's dtype, which g has too
            gx = torch.bmm(g, w) if g_tee is None else torch.baddbmm(g_tee, g, w)           # [2, P, K]
        gw = torch.stack([g[d].t().mm(x[d]) for d in range(x.shape[0])]) \
            if ctx.needs_input_grad[1] else None                                         # [2, O, K]
        return gx, gw, None


class BiMamba(nn.Module):
    """out = out_proj(((y_fwd + flip(y_bwd)) / 2) · SiLU(z)) for input h [B', L', N].

    The backward direction runs the same computation with its own `*_b` weights on the
    time-reversed inner sequence. Weight names follow docs/MODEL.md ("BiMamba").
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        n, e, r, m, w = cfg.n_filters, cfg.d_inner, cfg.dt_rank, cfg.d_state, cfg.d_conv
        self.d_inner, self.dt_rank, self.d_state, self.d_conv = e, r, m, w
        # MARK: - Shared projections
        self.in_proj = nn.Linear(n, 2 * e, bias=False)           # in_proj.weight [2E, N]
        self.out_proj = nn.Linear(e, n, bias=False)              # out_proj.weight [N, E]
        # MARK: - Forward direction
        self.conv1d = nn.Conv1d(e, e, w, groups=e, bias=True)   # conv1d.weight [E, 1, W], .bias [E]
        self.x_proj = nn.Linear(e, r + 2 * m, bias=False)        # x_proj.weight [R+2M, E]
        self.dt_proj = nn.Linear(r, e, bias=True)                # dt_proj.weight [E, R], .bias [E]
        self.A_log = nn.Parameter(torch.empty(e, m))             # A_log [E, M]
        self.D = nn.Parameter(torch.empty(e))                    # D [E]
        # MARK: - Backward direction
        self.conv1d_b = nn.Conv1d(e, e, w, groups=e, bias=True)  # conv1d_b.weight [E, 1, W], .bias [E]
        self.x_proj_b = nn.Linear(e, r + 2 * m, bias=False)      # x_proj_b.weight [R+2M, E]
        self.dt_proj_b = nn.Linear(r, e, bias=True)              # dt_proj_b.weight [E, R], .bias [E]
        self.A_b_log = nn.Parameter(torch.empty(e, m))           # A_b_log [E, M]
        self.D_b = nn.Parameter(torch.empty(e))                  # D_b [E]
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self, dt_min: float = 1e-3, dt_max: float = 1e-1,
                             dt_floor: float = 1e-4) -> None:
        """Mamba's initialisation of the SSM parameters of both directions.

        dt_proj weight ~ U(±R^-0.5); dt_proj bias = softplus⁻¹(dt), dt log-uniform in
        [dt_min, dt_max] (floored at dt_floor); A_log = log(1..M) per channel; D = 1.
        Linear and conv layers keep PyTorch's default initialisation.
        """
        std = self.dt_rank ** -0.5
        for dt_proj in (self.dt_proj, self.dt_proj_b):
            nn.init.uniform_(dt_proj.weight, -std, std)
            dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min))
                           + math.log(dt_min)).clamp(min=dt_floor)          # [E]
            dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))          # softplus⁻¹(dt)
        a = torch.arange(1, self.d_state + 1, dtype=torch.float32)         # [M]
        for p in (self.A_log, self.A_b_log):
            p.copy_(torch.log(a).expand(self.d_inner, -1))
        self.D.fill_(1.0)
        self.D_b.fill_(1.0)

    # MARK: - Forward

    def _direction(self, x: Tensor, conv: nn.Conv1d, x_proj: nn.Linear, dt_proj: nn.Linear,
                   A_log: Tensor, D: Tensor) -> Tensor:
        """One direction's SSM on x [B', L', E] (already in that direction's time order)."""
        L = x.shape[1]
        xc = F.conv1d(x.transpose(1, 2), conv.weight, conv.bias,
                      padding=self.d_conv - 1, groups=self.d_inner)[..., :L]  # [B', E, L']
        xc = F.silu(xc).transpose(1, 2)                                        # [B', L', E]
        dbc = x_proj(xc)                                                       # [B', L', R+2M]
        dt, Bm, Cm = torch.split(dbc, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(dt_proj(dt))                                        # [B', L', E]
        A = -torch.exp(A_log)                                                  # [E, M]
        return selective_scan(xc, delta, A, Bm.contiguous(), Cm.contiguous(), D)  # [B', L', E]

    def forward(self, h: Tensor) -> Tensor:
        """h [B', L', N] -> [B', L', N]."""
        xz = self.in_proj(h)                                                   # [B', L', 2E]
        x, z = xz.chunk(2, dim=-1)                                             # [B', L', E] each
        if scan.fused_active(x):
            return self.out_proj(self._fused_inner(x, z))                      # [B', L', N]
        y_f = self._direction(x, self.conv1d, self.x_proj, self.dt_proj, self.A_log, self.D)
        y_b = self._direction(x.flip(1), self.conv1d_b, self.x_proj_b, self.dt_proj_b,
                              self.A_b_log, self.D_b).flip(1)                  # [B', L', E]
        return self.out_proj((y_f + y_b) / 2 * F.silu(z))                      # [B', L', N]

    # MARK: - Fused path (training on the GPU)

    def _fused_inner(self, x: Tensor, z: Tensor) -> Tensor:
        """((y_fwd + flip(y_bwd)) / 2) · SiLU(z) with both directions in original time order.

        The same maths as `forward`'s reference path: direction 1's causal convolution of the
        flipped sequence is an anti-causal one of x; its projections are per step, so they need
        no flip either; the scan walks direction 1 from the end (`bimamba_triton`). softplus,
        dt_proj's bias, exp(A), D, the gate and the merge happen inside the scan op: in its
        kernels (v4) or as torch operations around one launch of both directions' scans (the
        split variant); `bimamba_triton.TileConfig` chooses.
        """
        from .bimamba_triton import bimamba_scan, tile_config  # noqa: PLC0415 (Triton imports lazily)
        b, L, e = x.shape
        r, m = self.dt_rank, self.d_state
        if tile_config().conv:                      # the same maths in conv_triton's kernels
            from .conv_triton import conv_silu_bidir  # noqa: PLC0415
            xc = conv_silu_bidir(x, torch.stack([self.conv1d.weight[:, 0], self.conv1d_b.weight[:, 0]]),
                                 torch.stack([self.conv1d.bias, self.conv1d_b.bias]))   # [2, B', L', E]
        else:
            xc = F.silu(self._bidirectional_conv(x.float())).to(x.dtype)      # [2, B', L', E]
        w_x = torch.stack([self.x_proj.weight, self.x_proj_b.weight]).to(xc.dtype)     # [2, R+2M, E]
        dbc, xc = _PerDirectionLinear.apply(xc.view(2, b * L, e), w_x, True)           # [2, B'·L', R+2M], xc
        xc = xc.view(2, b, L, e)                                                        # [2, B', L', E]
        w_dt = torch.stack([self.dt_proj.weight, self.dt_proj_b.weight]).to(dbc.dtype)  # [2, E, R]
        dt = _PerDirectionLinear.apply(dbc[..., :r], w_dt)                              # [2, B'·L', E]
        dbc = dbc.view(2, b, L, r + 2 * m)
        return bimamba_scan(
            xc, dt.view(2, b, L, e), dbc[..., r:r + m], dbc[..., r + m:], z,  # [B', L', E]
            torch.stack([self.A_log, self.A_b_log]), torch.stack([self.D, self.D_b]),
            torch.stack([self.dt_proj.bias, self.dt_proj_b.bias]))

    def _bidirectional_conv(self, x: Tensor) -> Tensor:
        """Both directions' depthwise convolutions of x [B', L', E] → [2, B', L', E] (before SiLU).

        Direction 0: Σ_k w[k]·x[t − (W−1) + k] (causal); direction 1, the causal convolution of
        the flipped sequence flipped back: Σ_k w_b[k]·x[t + (W−1) − k]. Written as W shifted
        multiply-adds so that torch.compile fuses them (and their backward) with the SiLU.
        """
        w = self.d_conv
        L = x.shape[1]
        xp = F.pad(x, (0, 0, w - 1, w - 1))                                   # [B', L'+2(W−1), E]
        wf = self.conv1d.weight[:, 0].to(x.dtype)                              # [E, W]
        wb = self.conv1d_b.weight[:, 0].to(x.dtype)                            # [E, W]
        yf = self.conv1d.bias.to(x.dtype) + sum(xp[:, k:k + L] * wf[:, k] for k in range(w))
        yb = self.conv1d_b.bias.to(x.dtype) + sum(
            xp[:, 2 * (w - 1) - k:2 * (w - 1) - k + L] * wb[:, k] for k in range(w))
        return torch.stack([yf, yb])                                           # [2, B', L', E]
