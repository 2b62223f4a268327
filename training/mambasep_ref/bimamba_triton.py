"""Fused bidirectional selective scan for training: both directions, gate and merge in one op.

Glossary of dimension letters (docs/MODEL.md's, as in scan_triton.py):
  B  sequences scanned independently (B·S or B·K inside the dual-path model)
  L  time steps of one scan
  E  channels, Mamba's inner width (expand · N)
  M  state size per channel (Mamba's d_state)
  T  time steps of one window (a power of two; unrolled, and the spacing of the checkpoints)
  d  direction: 0 scans t = 0..L-1, 1 scans t = L-1..0 (the "backward" direction of BiMamba)

What it computes, per direction d, sequence b, channel e, state m (inputs stacked over d):

    delta_d = softplus(dt_d + dt_bias_d)                  A_d = −exp(A_log_d)
    h_d,t   = exp(delta_d,t·A_d) · h_d,t∓1 + delta_d,t · Bm_d,t · u_d,t   (h before the first step = 0)
    y_d,t   = Σ_m Cm_d,t · h_d,t + D_d · u_d,t
    out_t   = (y_0,t + y_1,t) / 2 · SiLU(z_t)

with direction 1 stepping through time backwards (h_1,t depends on h_1,t+1). This is BiMamba's
`(y_fwd + flip(y_bwd)) / 2 · SiLU(z)` with no flipped copies: direction 1's inputs are in the
original time order and the kernel walks them from the end. `bimamba_scan_ref` below is the
definition (the plain-loop `selective_scan_ref` per direction); the test compares against it.

Shapes: u, dt `[2, B, L, E]`; Bm, Cm `[2, B, L, M]`; z `[B, L, E]`; A_log `[2, E, M]`; D, dt_bias
`[2, E]`; out `[B, L, E]` in z's dtype. Big inputs may be strided views (the last dimension must
be contiguous) in float32, float16 or bfloat16; every sum is accumulated in float32.

Kernels. One program per (sequence, block of BLOCK_E channels) runs both directions one after
the other (direction 0's y is parked in `out`, in out's dtype, until direction 1 adds its own).
The state [M, BLOCK_E] stays in registers and the program steps through time sequentially, in
windows of T steps whose loop is unrolled (the loads of a window's steps do not wait for the
recurrence). The forward kernel, when gradients will be needed, also writes the state entering
each window (the checkpoints, float32 `[2, B, n_eblk, n_windows, M', E']`: 4 · 2 · M / T bytes
per element of u).

The backward kernel walks the windows from last to first (in each direction's own scan order k):
  - the window's states h_k are recomputed from its checkpoint into registers (a tuple of T
    [M, BLOCK_E] tensors);
  - then its steps are walked backwards with the adjoint g = ∂loss/∂h carried in registers:
    g_k = Cm_k·dy_k + a_{k+1}·g_{k+1}, and with dy = dout·SiLU(z)/2 and q = g·a·h_{k−1}:
        du      = Σ_m g·Bm·delta + D·dy          dBm = Σ_e g·delta·u      dCm = Σ_e dy·h
        ddelta  = Σ_m q·A + u·Σ_m g·Bm           ddt = ddelta · sigmoid(dt + dt_bias)
        dA      = Σ_{b,t} q·delta                dD  = Σ_{b,t} dy·u       ddt_bias = Σ_{b,t} ddt
        dz      = dout · (y_0 + y_1)/2 · SiLU'(z)   (y recomputed from h; direction 0's parked in dz)
No per-step state goes to memory. Sums over E (dBm, dCm) are per-block partials and sums over B
(dA, dD, ddt_bias) per-program partials (BPG sequences per program), finished with a torch
`sum`: deterministic, no atomics. A_log reaches the kernels transposed ([2, M, E]), so that
Triton lays a [M, BLOCK_E] tile out as 4 states × 4 channels in each thread (threadsPerWarp
[4, 8]): both kinds of sum then cross only 2 or 3 lane levels (training/bench/NOTES.md).

The ops are registered with `torch.library` (`mambasep::bimamba_scan_fwd` / `_bwd`, with fake
implementations), so `torch.compile` keeps them as two opaque kernels and fuses the element-wise
work around them into its own graph.

The "split" variant (`TileConfig(kernel="split")`, tiles spec `split` or `S:BLOCK_E:WARPS…`) computes
the same out with exp(A_log), the gate and the merge as torch operations (which Inductor fuses
with their neighbours) and the scan in Triton: scan_triton.py's per-direction kernels with a
program axis for the direction, direction 1 walking time from the end by index arithmetic
(`selective_scan_bidir`: one launch per pass for both directions, no flipped copies); softplus
(dt + dt_bias) in torch, or with `softplus` in the kernels (no delta tensor; the backward
writes the gradient for dt); checkpoints between the passes only with `keep_ck` (in the inputs'
dtype with `ck_low`); with `gluon`
both passes run as scan_gluon.py's kernels (the same algorithm with explicit layouts) on CUDA
tensors, and as scan_triton's under the interpreter (Gluon has none). The default
(`tile_config()`, S:32:1+ck+gl) is the fastest compiled XS step measured so far (BENCHMARKS.md;
training/bench/NOTES.md has the kernels' timings). The tiles also carry one choice outside this
op: `conv` (+cv), BiMamba's depthwise convolutions and SiLU in conv_triton.py's kernels.
"""

from __future__ import annotations

import os
import re

import torch
import triton
import triton.language as tl
from torch import Tensor

from . import scan_triton
from .scan_triton import _sigmoid, _softplus
from .scan import selective_scan_ref

__all__ = ["bimamba_scan", "bimamba_scan_ref", "interpreter_enabled", "TileConfig", "tile_config",
           "set_tile_config"]

_INPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Triton's `jit` reads TRITON_INTERPRET when a kernel is defined, i.e. when this module is imported.
_INTERPRETED = os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def interpreter_enabled() -> bool:
    """Whether the kernels were defined for Triton's CPU interpreter (`TRITON_INTERPRET=1`)."""
    return _INTERPRETED


# MARK: - Reference


def bimamba_scan_ref(u: Tensor, dt: Tensor, Bm: Tensor, Cm: Tensor, z: Tensor, A_log: Tensor,
                     D: Tensor, dt_bias: Tensor) -> Tensor:
    """The definition (module docstring) from torch ops and the plain-loop scan; differentiable.

    Direction 1 is computed exactly as BiMamba's reference path does: flip, scan, flip back.
    """
    return _gated_merge(_scan_bidir_ref, u, dt, Bm, Cm, z, A_log, D, dt_bias)


def _scan_bidir_ref(u: Tensor, dt: Tensor, dt_bias: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor,
                    D: Tensor) -> Tensor:
    """Both directions' scans ([2, ...] inputs) with delta = softplus(dt + dt_bias) and
    `selective_scan_ref`, direction 1 on flipped copies; [2, B, L, E] float32."""
    delta = _softplus_delta(dt, dt_bias)                                          # [2, B, L, E]
    y = []
    for d in range(2):
        args = (u[d].float(), delta[d], A[d], Bm[d].float(), Cm[d].float(), D[d].float())
        if d == 1:
            args = tuple(a.flip(1) if a.dim() == 3 else a for a in args)
        yd = selective_scan_ref(*args)                                            # [B, L, E]
        y.append(yd.flip(1) if d == 1 else yd)
    return torch.stack(y)                                                         # [2, B, L, E]


def _softplus_delta(dt: Tensor, dt_bias: Tensor) -> Tensor:
    """delta = softplus(dt + dt_bias) [2, B, L, E] float32 for dt [2, B, L, E], dt_bias [2, E]."""
    return torch.nn.functional.softplus(dt.float() + dt_bias.float()[:, None, None])


def _gated_merge(scan_bidir, u: Tensor, dt: Tensor, Bm: Tensor, Cm: Tensor, z: Tensor, A_log: Tensor,
                 D: Tensor, dt_bias: Tensor) -> Tensor:
    """The element-wise stages around the scan as torch operations, with the scan of both
    directions (delta = softplus(dt + dt_bias) included) a parameter: the reference's loops, or
    the split variant's kernels."""
    A = -torch.exp(A_log.float())                                                     # [2, E, M]
    y = scan_bidir(u, dt, dt_bias, A, Bm, Cm, D)                                      # [2, B, L, E]
    return ((y[0] + y[1]) / 2 * torch.nn.functional.silu(z.float())).to(z.dtype)      # [B, L, E]


# MARK: - Kernels


@triton.jit
def _time_of(k, L, d):
    """Time index of scan position k in direction d (direction 1 scans from the end)."""
    return k + d * (L - 1 - 2 * k)


@triton.jit
def _step_inputs(u_p, dt_p, B_p, C_p, t, s_ul, s_dl, s_Bl, s_Cl, bias, ok_e, ok_m):
    """u, delta [BE] and Bm, Cm [BM] of time t as float32 (0 where masked; delta 0 there too, so a
    masked step leaves the state and the adjoint unchanged)."""
    u = tl.load(u_p + t * s_ul, mask=ok_e, other=0.0).to(tl.float32)
    v = tl.load(dt_p + t * s_dl, mask=ok_e, other=0.0).to(tl.float32) + bias
    delta = tl.where(ok_e, _softplus(v), 0.0)
    Bt = tl.load(B_p + t * s_Bl, mask=ok_m, other=0.0).to(tl.float32)
    Ct = tl.load(C_p + t * s_Cl, mask=ok_m, other=0.0).to(tl.float32)
    return u, v, delta, Bt, Ct


@triton.jit
def _recur(h, A2, u, delta, Bt):
    """One step of the recurrence: h ↦ exp(delta·A)·h + delta·Bm·u ([BM, BE]; A2 = A·log2 e)."""
    return tl.exp2(delta[None, :] * A2) * h + Bt[:, None] * (delta * u)[None, :]


@triton.jit
def _advance(h, i, L, d, A2, bias, u_p, dt_p, B_p, C_p, s_ul, s_dl, s_Bl, s_Cl, e, e_ok, m, m_ok,
             T: tl.constexpr):
    """The state after window i's T steps, from h entering it."""
    for s in tl.static_range(T):
        k = i * T + s
        ok_e = e_ok & (e * 0 + k < L)
        ok_m = m_ok & (m * 0 + k < L)
        t = _time_of(k, L, d)
        u, v, delta, Bt, Ct = _step_inputs(u_p, dt_p, B_p, C_p, t, s_ul, s_dl, s_Bl, s_Cl, bias, ok_e, ok_m)
        h = _recur(h, A2, u, delta, Bt)
    return h


@triton.jit
def _bimamba_fwd_kernel(
    u_ptr, dt_ptr, B_ptr, C_ptr, z_ptr, Alog_ptr, D_ptr, bias_ptr, out_ptr, ws_ptr,
    BATCH, L, E, M, NT, NCK,
    s_ud, s_ub, s_ul, s_dd, s_db, s_dl, s_Bd, s_Bb, s_Bl, s_Cd, s_Cb, s_Cl, s_zb, s_zl,
    T: tl.constexpr, CK: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_M: tl.constexpr, SAVE: tl.constexpr,
):
    """out [B, L, E] for one sequence and BLOCK_E channels; the state [BLOCK_M, BLOCK_E] stays in
    registers and the program steps through time, T steps a window (unrolled). SAVE: the state
    entering every CK-th window goes to ws (the backward's NCK checkpoints)."""
    b = tl.program_id(0).to(tl.int64)
    pid_e = tl.program_id(1)
    n_eblk = tl.num_programs(1)
    el = tl.arange(0, BLOCK_E)
    e = pid_e * BLOCK_E + el  # [BE]
    m = tl.arange(0, BLOCK_M)  # [BM]
    e_ok = e < E
    m_ok = m < M
    slot = m[:, None] * BLOCK_E + el[None, :]  # [BM, BE] offsets inside one state slot
    o_p = out_ptr + b * L * E + e
    z_p = z_ptr + b * s_zb + e
    for d in range(2):  # a loop, not unrolled: one copy of the body (compile time)
        A_p = Alog_ptr + d * M * E + m[:, None] * E + e[None, :]  # A_log transposed: [2, M, E]
        A2 = -tl.exp(tl.load(A_p, mask=m_ok[:, None] & e_ok[None, :], other=float("-inf"))) * 1.4426950408889634
        Dv = tl.load(D_ptr + d * E + e, mask=e_ok, other=0.0).to(tl.float32)  # [BE]
        bias = tl.load(bias_ptr + d * E + e, mask=e_ok, other=0.0).to(tl.float32)  # [BE]
        u_p = u_ptr + d * s_ud + b * s_ub + e
        dt_p = dt_ptr + d * s_dd + b * s_db + e
        B_p = B_ptr + d * s_Bd + b * s_Bb + m
        C_p = C_ptr + d * s_Cd + b * s_Cb + m
        ws_p = ws_ptr + ((d * BATCH + b) * n_eblk + pid_e) * NCK * (BLOCK_M * BLOCK_E) + slot
        h = tl.zeros([BLOCK_M, BLOCK_E], dtype=tl.float32)  # [BM, BE]
        for i in range(0, NT):
            if SAVE:
                if i % CK == 0:
                    tl.store(ws_p + (i // CK) * (BLOCK_M * BLOCK_E), h)
            for s in tl.static_range(T):
                k = i * T + s
                ok_e = e_ok & (e * 0 + k < L)  # [BE] (tensor masks: the interpreter wants them)
                ok_m = m_ok & (m * 0 + k < L)  # [BM]
                t = _time_of(k, L, d)
                u, v, delta, Bt, Ct = _step_inputs(u_p, dt_p, B_p, C_p, t, s_ul, s_dl, s_Bl, s_Cl, bias, ok_e, ok_m)
                h = _recur(h, A2, u, delta, Bt)  # [BM, BE]
                y = tl.sum(Ct[:, None] * h, axis=0) + Dv * u  # [BE]
                if d == 0:
                    tl.store(o_p + t * E, y, mask=ok_e)  # parked until direction 1 adds its own
                else:
                    zz = tl.load(z_p + t * s_zl, mask=ok_e, other=0.0).to(tl.float32)
                    y0 = tl.load(o_p + t * E, mask=ok_e, other=0.0).to(tl.float32)
                    tl.store(o_p + t * E, (y0 + y) * 0.5 * zz * _sigmoid(zz), mask=ok_e)
        tl.debug_barrier()  # direction 0's y is in out before direction 1 reads it


@triton.jit
def _bimamba_bwd_kernel(
    u_ptr, dt_ptr, B_ptr, C_ptr, z_ptr, Alog_ptr, D_ptr, bias_ptr, dout_ptr, ws_ptr, sc_ptr,
    du_ptr, ddt_ptr, dB_part_ptr, dC_part_ptr, dz_ptr, dA_part_ptr, dD_part_ptr, db_part_ptr,
    BATCH, L, E, M, NT, NCK, BPG,
    s_ud, s_ub, s_ul, s_dd, s_db, s_dl, s_Bd, s_Bb, s_Bl, s_Cd, s_Cb, s_Cl, s_zb, s_zl,
    s_gb, s_gl,
    T: tl.constexpr, CK: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_M: tl.constexpr,
):
    """Gradients for BPG sequences and BLOCK_E channels, windows of T steps from last to first.

    Per group of CK windows (one checkpoint in ws): with CK > 1 the states entering its windows
    are recomputed from the checkpoint and parked in this program's sc slots [CK, BM, BE]; then
    per window, last first: its T states recomputed into registers (a tuple), and the steps
    walked backwards with the adjoint g carried in registers. Outputs: du, ddt
    [2, B, L, E]; dB_part, dC_part [2, n_eblk, B, L, M]; dz [B, L, E]; dA_part [2, n_g, M, E];
    dD_part, db_part [2, n_g, E].
    """
    pid_g = tl.program_id(0).to(tl.int64)
    pid_e = tl.program_id(1)
    n_g = tl.num_programs(0)
    n_eblk = tl.num_programs(1)
    el = tl.arange(0, BLOCK_E)
    e = pid_e * BLOCK_E + el  # [BE]
    m = tl.arange(0, BLOCK_M)  # [BM]
    e_ok = e < E
    m_ok = m < M
    slot = m[:, None] * BLOCK_E + el[None, :]  # [BM, BE]
    for d in range(2):  # a loop, not unrolled: one copy of the body (compile time)
        A_p = Alog_ptr + d * M * E + m[:, None] * E + e[None, :]  # A_log transposed: [2, M, E]
        A2 = -tl.exp(tl.load(A_p, mask=m_ok[:, None] & e_ok[None, :], other=float("-inf"))) * 1.4426950408889634
        Dv = tl.load(D_ptr + d * E + e, mask=e_ok, other=0.0).to(tl.float32)  # [BE]
        bias = tl.load(bias_ptr + d * E + e, mask=e_ok, other=0.0).to(tl.float32)  # [BE]
        part = d * n_g + pid_g
        dA = tl.zeros([BLOCK_M, BLOCK_E], dtype=tl.float32)  # Σ_{b,t} q·delta (∂loss/∂A)
        dD = tl.zeros([BLOCK_E], dtype=tl.float32)  # Σ_{b,t} dy·u
        db = tl.zeros([BLOCK_E], dtype=tl.float32)  # Σ_{b,t} ddt
        for bb in range(0, BPG):
            b = pid_g * BPG + bb
            e_in = e_ok & (e * 0 + b < BATCH)  # [BE] false for a padding sequence
            m_in = m_ok & (m * 0 + b < BATCH)  # [BM]
            bs = tl.minimum(b, BATCH - 1)  # keeps a padding sequence's pointers in bounds
            u_p = u_ptr + d * s_ud + bs * s_ub + e
            dt_p = dt_ptr + d * s_dd + bs * s_db + e
            B_p = B_ptr + d * s_Bd + bs * s_Bb + m
            C_p = C_ptr + d * s_Cd + bs * s_Cb + m
            z_p = z_ptr + bs * s_zb + e
            g_p = dout_ptr + bs * s_gb + e
            ws_p = ws_ptr + ((d * BATCH + bs) * n_eblk + pid_e) * NCK * (BLOCK_M * BLOCK_E) + slot
            sc_p = sc_ptr + (pid_g * n_eblk + pid_e) * CK * (BLOCK_M * BLOCK_E) + slot
            du_p = du_ptr + (d * BATCH + bs) * L * E + e
            ddt_p = ddt_ptr + (d * BATCH + bs) * L * E + e
            part_p = ((d * n_eblk + pid_e) * BATCH + bs) * L * M + m  # this program's [L, M] partial rows
            dz_p = dz_ptr + bs * L * E + e
            g = tl.zeros([BLOCK_M, BLOCK_E], dtype=tl.float32)  # a_{k+1}·g_{k+1}: the adjoint from later steps
            for gg in range(0, NCK):
                grp = NCK - 1 - gg
                i0 = grp * CK
                n_win = tl.minimum(CK, NT - i0)
                if CK > 1:  # the states entering the group's windows, from its checkpoint
                    h = tl.load(ws_p + grp * (BLOCK_M * BLOCK_E))
                    tl.store(sc_p, h)
                    for w in range(1, n_win):
                        h = _advance(h, i0 + w - 1, L, d, A2, bias, u_p, dt_p, B_p, C_p, s_ul, s_dl, s_Bl,
                                     s_Cl, e, e_ok, m, m_ok, T)
                        tl.store(sc_p + w * (BLOCK_M * BLOCK_E), h)
                for ww in range(0, n_win):
                    i = i0 + n_win - 1 - ww
                    if CK > 1:
                        h_in = tl.load(sc_p + (i - i0) * (BLOCK_M * BLOCK_E))  # [BM, BE] entering window i
                    else:
                        h_in = tl.load(ws_p + i * (BLOCK_M * BLOCK_E))
                    # The window's states h_k, recomputed into registers.
                    hs = ()
                    h = h_in
                    for s in tl.static_range(T):
                        k = i * T + s
                        ok_e = e_in & (e * 0 + k < L)
                        ok_m = m_in & (m * 0 + k < L)
                        t = _time_of(k, L, d)
                        u, v, delta, Bt, Ct = _step_inputs(u_p, dt_p, B_p, C_p, t, s_ul, s_dl, s_Bl, s_Cl, bias,
                                                           ok_e, ok_m)
                        h = _recur(h, A2, u, delta, Bt)
                        hs = hs + (h,)
                    # The steps backwards.
                    for s in tl.static_range(T):
                        k = i * T + (T - 1 - s)  # (T − 1 − s written out: a named constexpr cannot change per step)
                        ok_e = e_in & (e * 0 + k < L)
                        ok_m = m_in & (m * 0 + k < L)
                        t = _time_of(k, L, d)
                        u, v, delta, Bt, Ct = _step_inputs(u_p, dt_p, B_p, C_p, t, s_ul, s_dl, s_Bl, s_Cl, bias,
                                                           ok_e, ok_m)
                        dout = tl.load(g_p + t * s_gl, mask=ok_e, other=0.0).to(tl.float32)  # [BE]
                        zz = tl.load(z_p + t * s_zl, mask=ok_e, other=0.0).to(tl.float32)  # [BE]
                        sz = _sigmoid(zz)
                        dy = dout * zz * sz * 0.5  # [BE] ∂loss/∂y of each direction
                        h_r = hs[T - 1 - s]
                        if s < T - 1:
                            h_prev = hs[T - 2 - s]
                        else:
                            h_prev = h_in
                        a = tl.exp2(delta[None, :] * A2)  # [BM, BE]
                        du_t = delta * u  # [BE]
                        g = g + Ct[:, None] * dy[None, :]  # [BM, BE] g_k = ∂loss/∂h_k
                        q = g * a * h_prev  # [BM, BE]
                        gB = tl.sum(g * Bt[:, None], axis=0)  # [BE]
                        ddt = tl.where(ok_e, (tl.sum(q * A2, axis=0) * 0.6931471805599453 + gB * u) * _sigmoid(v), 0.0)
                        tl.store(dC_part_ptr + part_p + t * M, tl.sum(h_r * dy[None, :], axis=1), mask=ok_m)
                        tl.store(dB_part_ptr + part_p + t * M, tl.sum(g * du_t[None, :], axis=1), mask=ok_m)
                        tl.store(du_p + t * E, gB * delta + Dv * dy, mask=ok_e)
                        tl.store(ddt_p + t * E, ddt, mask=ok_e)
                        y = tl.sum(Ct[:, None] * h_r, axis=0) + Dv * u  # [BE]
                        if d == 0:
                            tl.store(dz_p + t * E, y, mask=ok_e)  # parked until direction 1 adds its own
                        else:
                            y0 = tl.load(dz_p + t * E, mask=ok_e, other=0.0).to(tl.float32)
                            tl.store(dz_p + t * E, dout * 0.5 * sz * (1.0 + zz * (1.0 - sz)) * (y0 + y), mask=ok_e)
                        dA += q * delta[None, :]
                        dD += dy * u
                        db += ddt
                        g = a * g  # flows to step k − 1
        dA_ok = m_ok[:, None] & e_ok[None, :]
        tl.store(dA_part_ptr + part * M * E + m[:, None] * E + e[None, :], dA, mask=dA_ok)
        tl.store(dD_part_ptr + part * E + e, dD, mask=e_ok)
        tl.store(db_part_ptr + part * E + e, db, mask=e_ok)
        tl.debug_barrier()  # direction 0's y is in dz before direction 1 reads it


# MARK: - Launch configuration


class TileConfig:
    """Which kernels and how they are launched.

    kernel "v4" (this module's kernels): T (steps of one window; `T_short` for sequences of at
    most `short` steps), ck (windows per checkpoint: the forward keeps the state entering every
    ck-th window, the backward recomputes the others; checkpoint memory falls as 1/ck), BLOCK_E,
    warps of each kernel, and sequences per backward program (0: automatic).
    kernel "split" (module docstring): BLOCK_E and the warps of each kernel, the backward's own
    BLOCK_E (`bwd_block_e`, 0: the forward's) and checkpoint spacing (`seg`, 0: scan_triton's
    8), `keep_ck` (the forward keeps the backward's checkpoints: more memory, one pass less)
    `softplus` (the kernels form softplus(dt + dt_bias) from dt: no delta tensor, more MUFU
    work in the kernels) and `gate_merge` (the forward forms (y_0 + y_1)/2 · SiLU(z) in two
    launches of one direction; the backward takes one dy for both), `bwd_maxnreg` (a cap on
    the backward kernel's registers a thread, ptxas's .maxnreg, 0 for none: more one-warp
    programs an SM, spills where the cap is below what the kernel needs), `gluon` (N ≥ 1:
    both kernels in Gluon, `scan_gluon`, on CUDA tensors, their loads N = 1 or 2 steps ahead;
    needs `keep_ck`), `gluon_layout` (1: their tile holds a channel's states in one thread,
    `scan_gluon.tile_layout`; BLOCK_E 32); the rest is unused.
    `ck_low` (split, with keep_ck): the checkpoints in the inputs' dtype (half their memory in
    bf16 training; the backward recomputes from states rounded to bf16).
    `conv` (either kernel): BiMamba's fused path forms both directions' SiLU(depthwise conv) in
    `conv_triton`'s kernels instead of as torch operations (the same maths).
    `unroll` (split, with gluon): the Gluon backward recomputes each segment in straight code
    (`scan_gluon`'s UNROLL: the rows fetched ahead need no loop-carried copies).

    Any setting gives the same result up to float32 rounding. The defaults (v4, T = 4,
    BLOCK_E = 64, one warp) were the fastest of the H100 sweep (training/bench/NOTES.md, v4).
    """

    KERNELS = ("v4", "split")
    FLAGS = {"ck": "keep_ck", "sp": "softplus", "gm": "gate_merge", "mt": "gluon_layout",
             "cv": "conv", "cb": "ck_low", "ur": "unroll"}   # the split spec's +FLAG suffixes

    def __init__(self, T: int = 4, block_e: int = 64, num_warps: int = 1, bwd_num_warps: int = 1,
                 bpg: int = 0, T_short: int = 4, short: int = 64, ck: int = 1, kernel: str = "v4",
                 bwd_block_e: int = 0, seg: int = 0, keep_ck: bool = False, softplus: bool = False,
                 gate_merge: bool = False, bwd_maxnreg: int = 0, gluon: int = 0, gluon_layout: int = 0,
                 conv: bool = False, ck_low: bool = False, unroll: bool = False):
        for name, x in (("T", T), ("T_short", T_short), ("block_e", block_e)):
            if x < 1 or x & (x - 1):
                raise ValueError(f"TileConfig: {name} must be a power of two, got {x}")
        if ck < 1:
            raise ValueError(f"TileConfig: ck must be at least 1, got {ck}")
        if bwd_block_e < 0 or bwd_block_e & (bwd_block_e - 1) or seg < 0:
            raise ValueError(f"TileConfig: bwd_block_e must be 0 or a power of two and seg ≥ 0, got "
                             f"{bwd_block_e} and {seg}")
        if bwd_maxnreg and not (32 <= bwd_maxnreg <= 255 and bwd_maxnreg % 8 == 0):
            raise ValueError(f"TileConfig: bwd_maxnreg must be 0 or a multiple of 8 in 32..255, got {bwd_maxnreg}")
        if gluon not in (0, 1, 2):
            raise ValueError(f"TileConfig: gluon must be 0, 1 or 2, got {gluon}")
        if gluon and not keep_ck:
            raise ValueError("TileConfig: the Gluon backward (+gl) needs the forward's checkpoints (+ck)")
        if ck_low and not keep_ck:
            raise ValueError("TileConfig: checkpoints in the inputs' dtype (+cb) need checkpoints kept (+ck)")
        if gluon_layout and not (gluon and block_e == 32 and bwd_block_e in (0, 32)):
            raise ValueError("TileConfig: the states-in-thread tile (+mt) is for the Gluon kernels (+gl) at "
                             "BLOCK_E 32")
        if unroll and not gluon:
            raise ValueError("TileConfig: the unrolled recomputation (+ur) is the Gluon backward's (+gl)")
        if kernel not in self.KERNELS:
            raise ValueError(f"TileConfig: kernel must be one of {self.KERNELS}, got {kernel!r}")
        self.T, self.block_e, self.num_warps, self.bwd_num_warps = T, block_e, num_warps, bwd_num_warps
        self.bpg, self.T_short, self.short, self.ck, self.kernel = bpg, T_short, short, ck, kernel
        self.bwd_block_e, self.seg = bwd_block_e or block_e, seg
        self.keep_ck, self.softplus, self.gate_merge = bool(keep_ck), bool(softplus), bool(gate_merge)
        self.bwd_maxnreg, self.gluon, self.gluon_layout = bwd_maxnreg, int(gluon), int(gluon_layout)
        self.conv, self.ck_low, self.unroll = bool(conv), bool(ck_low), bool(unroll)

    @classmethod
    def parse(cls, spec: str) -> "TileConfig":
        """From a tiles spec: "T:BLOCK_E:WARPS[:CK]" (v4, T_short = T); for the split variant
        "S:BLOCK_E:WARPS[:BWD_BLOCK_E:BWD_WARPS[:SEG]][+ck][+cb][+sp][+gm][+glN][+mt][+cv][+ur][+rN]"
        (SEG 0: the default spacing; +ck: `keep_ck`, +sp: `softplus`, +gm: `gate_merge`, +gl / +gl2:
        `gluon` 1 / 2, +mt: `gluon_layout` 1, +cv: `conv`, +cb: `ck_low`, +ur: `unroll`, +rN:
        `bwd_maxnreg` N) or "split" (= S:32:1, the old kernels' measured best), flags allowed on
        "split" too."""
        head, *flags = spec.strip().split("+")
        parts = head.split(":")
        try:
            if parts[0].upper() == "S" or parts == ["split"]:
                regs = [f for f in flags if re.fullmatch(r"r\d+", f)]
                gls = [f for f in flags if re.fullmatch(r"gl[12]?", f)]
                flags = [f for f in flags if f not in regs + gls]
                bad = ([f for f in flags if f not in cls.FLAGS] or len(set(flags)) < len(flags) or len(regs) > 1
                       or len(gls) > 1)
                if bad:
                    raise ValueError(f"flags must be among +{' +'.join(cls.FLAGS)}, one +rN and one +gl[N], each once")
                kw = {cls.FLAGS[f]: True for f in flags}
                if regs:
                    kw["bwd_maxnreg"] = int(regs[0][1:])
                if gls:
                    kw["gluon"] = int(gls[0][2:] or 1)
                if parts == ["split"]:
                    return cls(kernel="split", block_e=32, **kw)
                if len(parts) in (3, 5, 6):
                    be, w, *rest = (int(x) for x in parts[1:])
                    bbe, bw, seg = (*rest, 0)[:3] if rest else (be, w, 0)
                    return cls(kernel="split", block_e=be, num_warps=w, bwd_block_e=bbe, bwd_num_warps=bw,
                               seg=seg, **kw)
            elif len(parts) in (3, 4) and not flags:
                T, be, w, *ck = (int(x) for x in parts)
                return cls(T=T, T_short=T, block_e=be, num_warps=w, bwd_num_warps=w, ck=ck[0] if ck else 1)
        except ValueError as e:
            raise ValueError(f"bad tiles spec {spec!r}: {e}") from None
        raise ValueError(f"bad tiles spec {spec!r}: T:BLOCK_E:WARPS[:CK], "
                         f"S:BLOCK_E:WARPS[:BWD_BLOCK_E:BWD_WARPS[:SEG]][+ck][+cb][+sp][+gm][+glN][+mt][+cv][+ur][+rN] "
                         f"or split")

    def spec(self) -> str:
        """The tiles spec `parse` reads back (warps: the forward's)."""
        if self.kernel == "split":
            s = f"S:{self.block_e}:{self.num_warps}"
            if (self.bwd_block_e, self.bwd_num_warps, self.seg) != (self.block_e, self.num_warps, 0):
                s += f":{self.bwd_block_e}:{self.bwd_num_warps}" + (f":{self.seg}" if self.seg else "")
            s += "".join(f"+{f}" for f, attr in self.FLAGS.items() if getattr(self, attr))
            s += {0: "", 1: "+gl"}.get(self.gluon, f"+gl{self.gluon}")
            return s + (f"+r{self.bwd_maxnreg}" if self.bwd_maxnreg else "")
        return f"{self.T}:{self.block_e}:{self.num_warps}:{self.ck}"

    def __repr__(self) -> str:
        return (f"TileConfig(kernel={self.kernel!r}, T={self.T}, block_e={self.block_e}, "
                f"num_warps={self.num_warps}, bwd_num_warps={self.bwd_num_warps}, bpg={self.bpg}, "
                f"T_short={self.T_short}, short={self.short}, ck={self.ck}, "
                f"bwd_block_e={self.bwd_block_e}, seg={self.seg}, keep_ck={self.keep_ck}, "
                f"softplus={self.softplus}, gate_merge={self.gate_merge}, bwd_maxnreg={self.bwd_maxnreg}, "
                f"gluon={self.gluon}, gluon_layout={self.gluon_layout}, conv={self.conv}, ck_low={self.ck_low}, "
                f"unroll={self.unroll})")


_config = TileConfig.parse("S:32:1+ck+gl")   # the fastest compiled step measured (module docstring)
# The last launched compiled kernels ("fwd", "bwd"), for inspecting registers and IR.
LAST: dict = {}


def tile_config() -> TileConfig:
    return _config


def set_tile_config(cfg: TileConfig) -> None:
    global _config
    _config = cfg


def _shape(u: Tensor, A_log: Tensor, cfg: TileConfig) -> tuple[int, int, int, int, int, int, int, int]:
    """(B, L, E, M, T, BLOCK_E, BLOCK_M, n_windows) for inputs u [2, B, L, E], A_log [2, E, M]."""
    _, Bsz, L, E = u.shape
    M = A_log.shape[-1]
    T = cfg.T_short if L <= cfg.short else cfg.T
    T = max(1, min(T, triton.next_power_of_2(max(L, 1))))
    BE = min(cfg.block_e, max(16, triton.next_power_of_2(E)))
    BM = triton.next_power_of_2(M)
    return Bsz, L, E, M, T, BE, BM, triton.cdiv(max(L, 1), T)


def _ws_numel(u: Tensor, A_log: Tensor, save: bool, cfg: TileConfig) -> int:
    """Elements of the checkpoints: the state entering every ck-th window, [2, B, n_eblk, NCK, M', E']."""
    Bsz, L, E, M, T, BE, BM, NT = _shape(u, A_log, cfg)
    return 2 * Bsz * triton.cdiv(E, BE) * triton.cdiv(NT, cfg.ck) * BM * BE if save else 0


def _bpg(Bsz: int, n_eblk: int, cfg: TileConfig) -> int:
    """Sequences per backward program: enough programs to fill the GPU (≥ 4096), fewer partials."""
    if cfg.bpg > 0:
        return cfg.bpg
    return max(1, min(16, (Bsz * n_eblk) // 4096))


# MARK: - Checks


def _check(u, dt, Bm, Cm, z, A_log, D, dt_bias) -> None:
    names = ("u", "dt", "Bm", "Cm", "z", "A_log", "D", "dt_bias")
    tensors = (u, dt, Bm, Cm, z, A_log, D, dt_bias)
    for name, x in zip(names, tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"bimamba_scan: {name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"bimamba_scan: {name} must be floating point, got {x.dtype}")
    for name, x in zip(names[:5], tensors[:5]):
        if x.dtype not in _INPUT_DTYPES:
            raise TypeError(f"bimamba_scan: {name} must be float32/float16/bfloat16, got {x.dtype}")
    if u.dim() != 4 or u.shape[0] != 2:
        raise ValueError(f"bimamba_scan: u must be [2, B, L, E], got shape {list(u.shape)}")
    _, Bsz, L, E = u.shape
    if A_log.dim() != 3 or tuple(A_log.shape[:2]) != (2, E):
        raise ValueError(f"bimamba_scan: A_log must be [2, E, M] with E={E}, got shape {list(A_log.shape)}")
    M = A_log.shape[2]
    expected = {"dt": (2, Bsz, L, E), "Bm": (2, Bsz, L, M), "Cm": (2, Bsz, L, M), "z": (Bsz, L, E),
                "D": (2, E), "dt_bias": (2, E)}
    for name, x in zip(("dt", "Bm", "Cm", "z", "D", "dt_bias"), (dt, Bm, Cm, z, D, dt_bias)):
        if tuple(x.shape) != expected[name]:
            raise ValueError(f"bimamba_scan: {name} must have shape {list(expected[name])} "
                             f"(u is {list(u.shape)}, A_log is {list(A_log.shape)}), got {list(x.shape)}")
    devices = {x.device for x in tensors}
    if len(devices) != 1:
        raise ValueError(f"bimamba_scan: all inputs must be on one device, got {sorted(map(str, devices))}")
    if u.device.type != "cuda" and not _INTERPRETED:
        raise RuntimeError(f"bimamba_scan needs CUDA tensors (got {u.device}); on CPU set "
                           "TRITON_INTERPRET=1 before importing this module, or use bimamba_scan_ref")


def _inner(x: Tensor) -> Tensor:
    """x with a contiguous last dimension (a copy only when it has none)."""
    return x if x.stride(-1) == 1 else x.contiguous()


# MARK: - Launchers


def _forward(u, dt, Bm, Cm, z, A_log, D, dt_bias, save: bool, cfg: TileConfig) -> tuple[Tensor, Tensor]:
    u, dt, Bm, Cm, z = (_inner(x) for x in (u, dt, Bm, Cm, z))
    A_log, D, dt_bias = (x.contiguous() for x in (A_log, D, dt_bias))
    A_logT = A_log.transpose(1, 2).contiguous()  # [2, M, E]: a state's channels side by side
    Bsz, L, E, M, T, BE, BM, NT = _shape(u, A_log, cfg)
    out = torch.empty(Bsz, L, E, device=u.device, dtype=z.dtype)  # [B, L, E]
    ws = torch.empty(_ws_numel(u, A_log, save, cfg), device=u.device, dtype=torch.float32)  # [2, B, n_eblk, NT, M', E']
    if out.numel() == 0:
        return out, ws
    grid = (Bsz, triton.cdiv(E, BE))
    LAST["fwd"] = _bimamba_fwd_kernel[grid](
        u, dt, Bm, Cm, z, A_logT, D, dt_bias, out, ws if save else out,
        Bsz, L, E, M, NT, triton.cdiv(NT, cfg.ck),
        *u.stride()[:3], *dt.stride()[:3], *Bm.stride()[:3], *Cm.stride()[:3], *z.stride()[:2],
        T=T, CK=cfg.ck, BLOCK_E=BE, BLOCK_M=BM, SAVE=save, num_warps=cfg.num_warps,
    )
    return out, ws


def _backward(u, dt, Bm, Cm, z, A_log, D, dt_bias, dout, ws, cfg: TileConfig):
    """Returns (du, ddt, dBm, dCm, dz, dA_log, dD, ddt_bias) in the inputs' dtypes and shapes."""
    u, dt, Bm, Cm, z, dout = (_inner(x) for x in (u, dt, Bm, Cm, z, dout))
    A_log, D, dt_bias = (x.contiguous() for x in (A_log, D, dt_bias))
    A_logT = A_log.transpose(1, 2).contiguous()  # [2, M, E]: a state's channels side by side
    Bsz, L, E, M, T, BE, BM, NT = _shape(u, A_log, cfg)
    dev, f32 = u.device, torch.float32
    n_eblk = triton.cdiv(E, BE)
    du = torch.empty(2, Bsz, L, E, device=dev, dtype=u.dtype)  # [2, B, L, E]
    ddt = torch.empty(2, Bsz, L, E, device=dev, dtype=dt.dtype)  # [2, B, L, E]
    dz = torch.empty(Bsz, L, E, device=dev, dtype=z.dtype)  # [B, L, E]
    if du.numel() == 0:
        zeros = [torch.zeros(x.shape, device=dev, dtype=x.dtype) for x in (Bm, Cm)]
        return (du, ddt, *zeros, dz, torch.zeros_like(A_log), torch.zeros_like(D), torch.zeros_like(dt_bias))
    bpg = _bpg(Bsz, n_eblk, cfg)
    n_g = triton.cdiv(Bsz, bpg)
    dB_part = torch.empty(2, n_eblk, Bsz, L, M, device=dev, dtype=f32)  # [2, n_eblk, B, L, M]
    dC_part = torch.empty(2, n_eblk, Bsz, L, M, device=dev, dtype=f32)  # [2, n_eblk, B, L, M]
    dA_part = torch.empty(2, n_g, M, E, device=dev, dtype=f32)  # [2, n_g, M, E]
    dD_part = torch.empty(2, n_g, E, device=dev, dtype=f32)  # [2, n_g, E]
    sc = torch.empty(n_g * n_eblk * cfg.ck * BM * BE if cfg.ck > 1 else 1, device=dev, dtype=f32)  # [n_g, n_eblk, ck, M', E']
    db_part = torch.empty(2, n_g, E, device=dev, dtype=f32)  # [2, n_g, E]
    LAST["bwd"] = _bimamba_bwd_kernel[(n_g, n_eblk)](
        u, dt, Bm, Cm, z, A_logT, D, dt_bias, dout, ws, sc,
        du, ddt, dB_part, dC_part, dz, dA_part, dD_part, db_part,
        Bsz, L, E, M, NT, triton.cdiv(NT, cfg.ck), bpg,
        *u.stride()[:3], *dt.stride()[:3], *Bm.stride()[:3], *Cm.stride()[:3], *z.stride()[:2],
        *dout.stride()[:2],
        T=T, CK=cfg.ck, BLOCK_E=BE, BLOCK_M=BM, num_warps=cfg.bwd_num_warps,
    )
    A = -torch.exp(A_log.float())  # [2, E, M]
    dA_log = (dA_part.sum(1).transpose(1, 2) * A).to(A_log.dtype).contiguous()  # [2, E, M]
    dBm = dB_part.sum(1).to(Bm.dtype)  # [2, B, L, M]
    dCm = dC_part.sum(1).to(Cm.dtype)  # [2, B, L, M]
    return (du, ddt, dBm, dCm, dz, dA_log, dD_part.sum(1).to(D.dtype), db_part.sum(1).to(dt_bias.dtype))


# MARK: - Custom ops and autograd


@torch.library.custom_op("mambasep::bimamba_scan_fwd", mutates_args=())
def _fwd_op(u: Tensor, dt: Tensor, Bm: Tensor, Cm: Tensor, z: Tensor, A_log: Tensor, D: Tensor,
            dt_bias: Tensor, save: bool) -> tuple[Tensor, Tensor]:
    return _forward(u, dt, Bm, Cm, z, A_log, D, dt_bias, save, _config)


@_fwd_op.register_fake
def _(u, dt, Bm, Cm, z, A_log, D, dt_bias, save):
    _, Bsz, L, E = u.shape
    out = z.new_empty(Bsz, L, E)
    ws = u.new_empty(_ws_numel(u, A_log, save, _config), dtype=torch.float32)
    return out, ws


@torch.library.custom_op("mambasep::bimamba_scan_bwd", mutates_args=())
def _bwd_op(u: Tensor, dt: Tensor, Bm: Tensor, Cm: Tensor, z: Tensor, A_log: Tensor, D: Tensor,
            dt_bias: Tensor, dout: Tensor, ws: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor,
                                                                Tensor, Tensor, Tensor]:
    return _backward(u, dt, Bm, Cm, z, A_log, D, dt_bias, dout, ws, _config)


@_bwd_op.register_fake
def _(u, dt, Bm, Cm, z, A_log, D, dt_bias, dout, ws):
    return (u.new_empty(u.shape), dt.new_empty(dt.shape), Bm.new_empty(Bm.shape), Cm.new_empty(Cm.shape),
            z.new_empty(z.shape), A_log.new_empty(A_log.shape), D.new_empty(D.shape),
            dt_bias.new_empty(dt_bias.shape))


def _setup_context(ctx, inputs, output):
    u, dt, Bm, Cm, z, A_log, D, dt_bias, save = inputs
    ctx.checkpointed = save
    ctx.save_for_backward(u, dt, Bm, Cm, z, A_log, D, dt_bias, output[1])


def _autograd_backward(ctx, dout, _dws):
    u, dt, Bm, Cm, z, A_log, D, dt_bias, ws = ctx.saved_tensors
    if not ctx.checkpointed:
        raise RuntimeError("bimamba_scan: backward through a forward run without gradients")
    grads = _bwd_op(u, dt, Bm, Cm, z, A_log, D, dt_bias, dout, ws)
    return (*grads, None)


_fwd_op.register_autograd(_autograd_backward, setup_context=_setup_context)


def bimamba_scan(u: Tensor, dt: Tensor, Bm: Tensor, Cm: Tensor, z: Tensor, A_log: Tensor, D: Tensor,
                 dt_bias: Tensor) -> Tensor:
    """out [B, L, E] of the module docstring, differentiable in all eight inputs.

    Needs CUDA tensors, or CPU tensors when this module was imported with TRITON_INTERPRET=1
    (slow; for tests). Bad shapes, dtypes or mixed devices raise ValueError/TypeError naming the
    input. B = 0 or L = 0 give an empty out. `TileConfig.kernel` picks the kernels (v4 or split).
    """
    _check(u, dt, Bm, Cm, z, A_log, D, dt_bias)
    if _config.kernel == "split":
        return _split(u, dt, Bm, Cm, z, A_log, D, dt_bias, _config)
    save = torch.is_grad_enabled() and any(
        x.requires_grad for x in (u, dt, Bm, Cm, z, A_log, D, dt_bias))
    out, _ = _fwd_op(u, dt, Bm, Cm, z, A_log, D, dt_bias, save)
    return out


def _split(u, dt, Bm, Cm, z, A_log, D, dt_bias, cfg: TileConfig) -> Tensor:
    """The split variant (module docstring): the element-wise work in torch, the scan of both
    directions in `scan_triton.selective_scan_bidir` (with +sp the softplus, with +gm the gate
    and the merge there too)."""
    # Gluon has no interpreter: on the CPU scan_triton's kernels, without the Gluon kernels' own
    # settings (+mt, +ur)
    gluon = cfg.gluon if u.is_cuda else 0

    def scan_bidir(u, dt, dt_bias, A, Bm, Cm, D, z=None):
        if cfg.softplus:                       # the kernels form delta from dt
            delta, bias = dt, dt_bias
        else:
            delta, bias = _softplus_delta(dt, dt_bias), None                    # [2, B, L, E] float32
        return scan_triton.selective_scan_bidir(u, delta, A, Bm, Cm, D, cfg.block_e, cfg.num_warps,
                                                cfg.bwd_num_warps, cfg.bwd_block_e, cfg.seg or None,
                                                cfg.keep_ck, bias, z, cfg.bwd_maxnreg,
                                                gluon, cfg.gluon_layout if gluon else 0,
                                                cfg.ck_low, cfg.unroll and gluon > 0)   # [2, B, L, E] f32, or z's [B, L, E]
    if cfg.gate_merge:
        return scan_bidir(u, dt, dt_bias, -torch.exp(A_log.float()), Bm, Cm, D, z)    # [B, L, E]
    return _gated_merge(scan_bidir, u, dt, Bm, Cm, z, A_log, D, dt_bias)
