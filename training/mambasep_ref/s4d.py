"""Bidirectional S4D mixer: diagonal linear state space layer applied as an FFT convolution.

Glossary: B' sequences, L' steps, N model width (one SSM per channel), P complex state pairs
(s4d_state / 2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig

__all__ = ["BiS4D", "s4d_kernel", "s4d_fft_conv", "s4d_direct_conv", "s4d_recurrence",
           "legs_init"]


# MARK: - Kernel and its three equal evaluations


def _complex_params(log_dt: Tensor, log_A_real: Tensor, A_imag: Tensor, C: Tensor
                    ) -> tuple[Tensor, Tensor]:
    """(dtA [N, P], Kc [N, P]) in complex128: the discrete decay and ZOH-scaled output weight."""
    dt = torch.exp(log_dt.double())                                         # [N]
    A = torch.complex(-torch.exp(log_A_real.double()), A_imag.double())     # [N, P]
    Cc = torch.complex(C[..., 0].double(), C[..., 1].double())              # [N, P]
    dtA = dt[:, None] * A                                                   # [N, P]
    Kc = Cc * (torch.exp(dtA) - 1) / A                                      # [N, P] (ZOH, B = 1)
    return dtA, Kc


def s4d_kernel(log_dt: Tensor, log_A_real: Tensor, A_imag: Tensor, C: Tensor, length: int
               ) -> Tensor:
    """Kr[n, l] = 2·Re(Σ_p Kc[n,p]·exp(dtA[n,p]·l)) for l < length → [N, length] float32.

    Computed in float64 (complex128) and rounded once to the parameters' dtype (float32), so
    the kernel is the same on any engine that also computes it in double precision.
    length = 0 gives [N, 0].
    """
    dtA, Kc = _complex_params(log_dt, log_A_real, A_imag, C)
    l = torch.arange(length, dtype=torch.float64, device=log_dt.device)     # [L']
    vand = torch.exp(dtA[:, :, None] * l)                                   # [N, P, L']
    return (2 * torch.einsum("np,npl->nl", Kc, vand).real).to(log_dt.dtype)  # [N, L']


def s4d_fft_conv(h: Tensor, k_fwd: Tensor, k_bwd: Tensor | None = None) -> Tensor:
    """Σ_{l≤t} k_fwd[n,l]·h[t-l,n] (+ Σ_{l} k_bwd[n,l]·h[t+l,n]) by FFT of size 2L' (no wrap).

    h [B', L', N], kernels [N, L'] → [B', L', N]. The anticausal (backward) term is a
    correlation: FFT(h) · conj(FFT(k_bwd)), equal to flipping h, convolving, flipping back.
    """
    L = h.shape[1]
    if L == 0:
        return h.clone()
    n_fft = 2 * L
    work = torch.float64 if h.dtype == torch.float64 else torch.float32
    hf = torch.fft.rfft(h.transpose(1, 2).to(work), n=n_fft)                # [B', N, L'+1]
    kf = torch.fft.rfft(k_fwd.to(work), n=n_fft)                            # [N, L'+1]
    if k_bwd is not None:
        kf = kf + torch.conj(torch.fft.rfft(k_bwd.to(work), n=n_fft))
    y = torch.fft.irfft(hf * kf, n=n_fft)[..., :L]                          # [B', N, L']
    return y.transpose(1, 2)                                                # [B', L', N]


def s4d_direct_conv(h: Tensor, k: Tensor) -> Tensor:
    """The causal convolution Σ_{l≤t} k[n,l]·h[t-l,n] by direct summation (tests only)."""
    L = h.shape[1]
    y = torch.zeros_like(h)                                                 # [B', L', N]
    for l in range(L):
        y[:, l:] += k[:, l] * h[:, :L - l]
    return y


def s4d_recurrence(h: Tensor, log_dt: Tensor, log_A_real: Tensor, A_imag: Tensor, C: Tensor
                   ) -> Tensor:
    """The same causal output by the recurrence s = exp(dtA)·s + h[t], y = 2·Re(Σ_p Kc·s)."""
    dtA, Kc = _complex_params(log_dt, log_A_real, A_imag, C)
    decay = torch.exp(dtA)                                                  # [N, P]
    s = torch.zeros(h.shape[0], *dtA.shape, dtype=torch.complex128)         # [B', N, P]
    ys = []
    for t in range(h.shape[1]):
        s = decay * s + h[:, t, :, None].double()
        ys.append(2 * (Kc * s).sum(-1).real)                                # [B', N]
    return torch.stack(ys, 1).to(h.dtype) if ys else h.clone()              # [B', L', N]


# MARK: - Initialisation


def legs_init(state: int) -> tuple[Tensor, Tensor]:
    """S4D-LegS: (A_imag [P], B̃ [P] complex) from the normal part of HiPPO-LegS.

    The normal part is -½·I + S with S skew-symmetric, so every eigenvalue has real part -½;
    the P eigenvalues with positive imaginary part are kept, and B = sqrt(2n+1) is projected
    onto their eigenvectors (folded into C, since the model's B is fixed to 1).
    """
    q = torch.sqrt(2 * torch.arange(state, dtype=torch.float64) + 1)       # [2P]
    s = -0.5 * q[:, None] * q[None, :]                                      # [2P, 2P]
    s = torch.tril(s, -1) - torch.tril(s, -1).T                             # skew-symmetric
    w, v = torch.linalg.eig(s)
    keep = torch.argsort(w.imag, descending=True)[: state // 2]
    keep = keep[torch.argsort(w.imag[keep])]
    b = v[:, keep].conj().T @ q.to(torch.complex128)                        # [P]
    return w.imag[keep], b


# MARK: - Module


class BiS4D(nn.Module):
    """out = GLU(out_proj(GELU(y_fwd + y_bwd))) for input h [B', L', N].

    Each direction is a diagonal S4D kernel (ZOH, B = 1) plus a D skip; the backward one runs
    on the time-reversed input. Parameter names follow docs/MODEL.md ("BiS4D").
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        n, p = cfg.n_filters, cfg.s4d_state // 2
        self.s4d_init = cfg.s4d_init
        for suffix in ("", "_b"):
            self.register_parameter("log_dt" + suffix, nn.Parameter(torch.empty(n)))      # [N]
            self.register_parameter("log_A_real" + suffix, nn.Parameter(torch.empty(n, p)))  # [N, P]
            self.register_parameter("A_imag" + suffix, nn.Parameter(torch.empty(n, p)))   # [N, P]
            self.register_parameter("C" + suffix, nn.Parameter(torch.empty(n, p, 2)))     # [N, P, 2]
            self.register_parameter("D" + suffix, nn.Parameter(torch.empty(n)))           # [N]
        self.out_proj = nn.Linear(n, 2 * n, bias=True)   # out_proj.weight [2N, N], .bias [2N]
        self.reset_ssm_parameters()

    @torch.no_grad()
    def reset_ssm_parameters(self, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        """S4D-Lin (A = -½ + iπp) or S4D-LegS; C ~ complex N(0, 1) (each part variance ½),
        log_dt ~ U[log dt_min, log dt_max], D ~ N(0, 1)."""
        n, p = self.D.shape[0], self.A_imag.shape[1]
        for suffix in ("", "_b"):
            log_dt = getattr(self, "log_dt" + suffix)
            log_dt.uniform_(math.log(dt_min), math.log(dt_max))
            getattr(self, "log_A_real" + suffix).fill_(math.log(0.5))
            c = torch.randn(n, p, 2) * math.sqrt(0.5)                          # [N, P, 2]
            if self.s4d_init == "lin":
                a_imag = math.pi * torch.arange(p, dtype=torch.float32)        # [P]
            else:
                a_imag, b = legs_init(2 * p)
                cc = torch.complex(c[..., 0].double(), c[..., 1].double()) * b  # [N, P]
                c = torch.stack([cc.real, cc.imag], -1).float()
            getattr(self, "A_imag" + suffix).copy_(a_imag.float().expand(n, p))
            getattr(self, "C" + suffix).copy_(c)
            getattr(self, "D" + suffix).normal_()

    def kernels(self, length: int) -> tuple[Tensor, Tensor]:
        """(forward, backward) kernels [N, length]."""
        return (s4d_kernel(self.log_dt, self.log_A_real, self.A_imag, self.C, length),
                s4d_kernel(self.log_dt_b, self.log_A_real_b, self.A_imag_b, self.C_b, length))

    def forward(self, h: Tensor) -> Tensor:
        """h [B', L', N] -> [B', L', N]."""
        k_f, k_b = self.kernels(h.shape[1])                                    # [N, L'] each
        y = s4d_fft_conv(h, k_f, k_b) + h * (self.D + self.D_b)                # [B', L', N]
        return F.glu(self.out_proj(F.gelu(y)), dim=-1)                         # [B', L', N]
