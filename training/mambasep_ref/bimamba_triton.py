"""Fused bidirectional selective scan for training: both directions, gate and merge in one op.

Glossary of dimension letters (docs/MODEL.md's, as in scan_triton.py):
  B  sequences scanned independently (B·S or B·K inside the dual-path model)
  L  time steps of one scan
  E  channels, Mamba's inner width (expand · N)
  M  state size per channel (Mamba's d_state)
  T  time steps of one tile (a power of two; the unit of the chunked scan and its checkpoints)
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
Time goes in tiles of T steps: a tile's decays a = exp(delta·A) and inputs delta·Bm·u form a
[T, M, BLOCK_E] block, and the recurrence over the tile is one `tl.associative_scan` of the
affine maps h ↦ a·h + b, with the state carried in from the previous tile. The forward kernel,
when gradients will be needed, also writes the state entering each tile (the checkpoints,
float32 `[2, B, n_eblk, n_tiles, M', E']`: 4 · 2 · M / T bytes per element of u).

The backward kernel walks the tiles from last to first (in each direction's own scan order k):
  - h_{k−1} for the tile by a second associative scan whose inputs are loaded one row earlier
    (row 0 is the checkpoint), and h_k = a_k·h_{k−1} + delta_k·Bm_k·u_k;
  - g_k = ∂loss/∂h_k by a reverse associative scan of g_k = Cm_k·dy_k + a_{k+1}·g_{k+1}, with
    a_{k+1} loaded one row later and g carried in from the tile after;
  - then, with dy = dout·SiLU(z)/2 and q = g·a·h_{k−1}:
        du      = Σ_m g·Bm·delta + D·dy          dBm = Σ_e g·delta·u      dCm = Σ_e dy·h
        ddelta  = Σ_m q·A + u·Σ_m g·Bm           ddt = ddelta · sigmoid(dt + dt_bias)
        dA      = Σ_{b,t} q·delta                dD  = Σ_{b,t} dy·u       ddt_bias = Σ_{b,t} ddt
        dz      = dout · (y_0 + y_1)/2 · SiLU'(z)   (y recomputed from h; direction 0's parked in dz)
No per-step state is stored. Sums over E (dBm, dCm) are per-block partials and sums over B
(dA, dD, ddt_bias) per-program partials (BPG sequences per program), finished with a torch
`sum`: deterministic, no atomics.

The ops are registered with `torch.library` (`mambasep::bimamba_scan_fwd` / `_bwd`, with fake
implementations), so `torch.compile` keeps them as two opaque kernels and fuses the element-wise
work around them into its own graph.
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from .scan import selective_scan_ref

__all__ = ["bimamba_scan", "bimamba_scan_ref", "interpreter_enabled", "TileConfig", "tile_config",
           "set_tile_config"]

_INPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Triton's `jit` reads TRITON_INTERPRET when a kernel is defined, i.e. when this module is imported.
_INTERPRETED = os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453


def interpreter_enabled() -> bool:
    """Whether the kernels were defined for Triton's CPU interpreter (`TRITON_INTERPRET=1`)."""
    return _INTERPRETED


# MARK: - Reference


def bimamba_scan_ref(u: Tensor, dt: Tensor, Bm: Tensor, Cm: Tensor, z: Tensor, A_log: Tensor,
                     D: Tensor, dt_bias: Tensor) -> Tensor:
    """The definition (module docstring) from torch ops and the plain-loop scan; differentiable.

    Direction 1 is computed exactly as BiMamba's reference path does: flip, scan, flip back.
    """
    y = []
    for d in range(2):
        delta = torch.nn.functional.softplus(dt[d].float() + dt_bias[d].float())  # [B, L, E]
        A = -torch.exp(A_log[d].float())                                          # [E, M]
        args = (u[d].float(), delta, A, Bm[d].float(), Cm[d].float(), D[d].float())
        if d == 1:
            args = tuple(a.flip(1) if a.dim() == 3 else a for a in args)
        yd = selective_scan_ref(*args)                                            # [B, L, E]
        y.append(yd.flip(1) if d == 1 else yd)
    zf = z.float()
    return ((y[0] + y[1]) / 2 * torch.nn.functional.silu(zf)).to(z.dtype)         # [B, L, E]


# MARK: - Kernels


@triton.jit
def _combine(a1, b1, a2, b2):
    """Composition of the affine maps h ↦ a1·h + b1, then h ↦ a2·h + b2."""
    return a1 * a2, a2 * b1 + b2


@triton.jit
def _softplus(v):
    """log(1 + e^v) = max(v, 0) + log1p(e^−|v|), with log1p(w) = log(1+w)·w/((1+w)−1) (exact
    to a few ulp where 1+w rounds, unlike log(1+w))."""
    w = tl.exp(-tl.abs(v))
    one_w = 1.0 + w
    l1p = tl.where(one_w == 1.0, w, tl.log(one_w) * w / (one_w - 1.0))
    return tl.maximum(v, 0.0) + l1p


@triton.jit
def _sigmoid(v):
    return 1.0 / (1.0 + tl.exp(-v))


@triton.jit
def _rows(ptr, t, s_l, ok, ecol, e_ok):
    """Rows t of a [L, E] view (row stride s_l; ecol: channel offsets) as float32; 0 where masked."""
    return tl.load(ptr + t[:, None] * s_l + ecol[None, :], mask=ok[:, None] & e_ok[None, :],
                   other=0.0).to(tl.float32)


@triton.jit
def _col(ptr, t, s_l, ok, mi, M):
    """Column mi of rows t of a [L, M] view ([T] float32, 0 where masked or mi ≥ M)."""
    return tl.load(ptr + t * s_l + mi, mask=ok & (t * 0 + mi < M), other=0.0).to(tl.float32)


@triton.jit
def _decay2(Alog_p, e, e_ok, mi, M):
    """A·log2(e) for state mi of channels e ([BE]; 0 on padding lanes, so their decay is 1)."""
    a_log = tl.load(Alog_p + e * M + mi, mask=e_ok & (e * 0 + mi < M), other=float("-inf")).to(tl.float32)
    return -tl.exp(a_log) * 1.4426950408889634


@triton.jit
def _time_of(k, L, d):
    """Time index of scan position k in direction d (direction 1 scans from the end)."""
    return k + d * (L - 1 - 2 * k)


@triton.jit
def _row_of(x, j, r: tl.constexpr):
    """Row r of a [T, BE] tile as [BE] (a reduction over the thread's own registers)."""
    return tl.sum(tl.where((j == r)[:, None], x, 0.0), axis=0)


@triton.jit(do_not_specialize=["s_e"])
def _bimamba_fwd_kernel(
    u_ptr, dt_ptr, B_ptr, C_ptr, z_ptr, Alog_ptr, D_ptr, bias_ptr, out_ptr, ws_ptr,
    BATCH, L, E, M, NT, NSLOT,
    s_ud, s_ub, s_ul, s_dd, s_db, s_dl, s_Bd, s_Bb, s_Bl, s_Cd, s_Cb, s_Cl, s_zb, s_zl, s_e,
    T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_M: tl.constexpr, SAVE: tl.constexpr, UNROLL_M: tl.constexpr,
):
    """out [B, L, E] for one sequence and BLOCK_E channels.

    The state of state index mi entering tile i is slot i (SAVE: all NT + 1 kept as the
    checkpoints) or slot i mod 2 (no gradients) of ws, row mi; tiles hold [T, BE] tensors and the
    M states are an unrolled loop, so every scan runs along the thread's own registers.
    """
    b = tl.program_id(0).to(tl.int64)
    pid_e = tl.program_id(1)
    n_eblk = tl.num_programs(1)
    el = tl.arange(0, BLOCK_E)
    e = pid_e * BLOCK_E + el  # [BE]
    e_ok = e < E
    ecol = tl.max_contiguous(e * s_e, [2])  # [BE] channel offsets (s_e = 1; see _CHANNEL_STRIDE)
    j = tl.arange(0, T)  # [T] row of a tile
    o_p = out_ptr + b * L * E
    for d in range(2):  # a loop, not unrolled: one copy of the body (compile time)
        Dv = tl.load(D_ptr + d * E + ecol, mask=e_ok, other=0.0).to(tl.float32)  # [BE]
        bias = tl.load(bias_ptr + d * E + ecol, mask=e_ok, other=0.0).to(tl.float32)  # [BE]
        u_p = u_ptr + d * s_ud + b * s_ub
        dt_p = dt_ptr + d * s_dd + b * s_db
        B_p = B_ptr + d * s_Bd + b * s_Bb
        C_p = C_ptr + d * s_Cd + b * s_Cb
        A_p = Alog_ptr + d * E * M
        ws_p = ws_ptr + ((d * BATCH + b) * n_eblk + pid_e) * NSLOT * (BLOCK_M * BLOCK_E) + el * s_e
        for m0 in tl.static_range(BLOCK_M):
            tl.store(ws_p + m0 * BLOCK_E, tl.zeros([BLOCK_E], dtype=tl.float32))
        tl.debug_barrier()
        for i in range(0, NT):
            if SAVE:
                slot = i
                nxt = i + 1
            else:
                slot = i % 2
                nxt = (i + 1) % 2
            k = i * T + j  # [T] scan positions
            ok = k < L
            t = _time_of(k, L, d)
            u = _rows(u_p, t, s_ul, ok, ecol, e_ok)  # [T, BE]
            v = _rows(dt_p, t, s_dl, ok, ecol, e_ok) + bias[None, :]  # [T, BE]
            delta = tl.where(ok[:, None], _softplus(v), 0.0)  # [T, BE] 0 on padding rows: a = 1, b = 0
            du = delta * u  # [T, BE]
            y = Dv[None, :] * u  # [T, BE]
            for mi in tl.range(0, BLOCK_M, loop_unroll_factor=UNROLL_M):
                A2 = _decay2(A_p, e, e_ok, mi, M)  # [BE]
                Bc = _col(B_p, t, s_Bl, ok, mi, M)  # [T]
                Cc = _col(C_p, t, s_Cl, ok, mi, M)  # [T]
                h0 = tl.load(ws_p + (slot * BLOCK_M + mi) * BLOCK_E)  # [BE] state before row 0
                a = tl.exp2(delta * A2[None, :])  # [T, BE]
                bx = Bc[:, None] * du
                bx = tl.where((j == 0)[:, None], bx + a * h0[None, :], bx)
                _, h = tl.associative_scan((a, bx), 0, _combine)  # [T, BE] h_k
                y += Cc[:, None] * h
                tl.store(ws_p + (nxt * BLOCK_M + mi) * BLOCK_E, _row_of(h, j, T - 1))
            tl.debug_barrier()  # the next tile reads the states just stored
            o_ptrs = o_p + t[:, None] * E + ecol[None, :]
            o_ok = ok[:, None] & e_ok[None, :]
            if d == 1:
                zz = _rows(z_ptr + b * s_zb, t, s_zl, ok, ecol, e_ok)  # [T, BE]
                y0 = tl.load(o_ptrs, mask=o_ok, other=0.0).to(tl.float32)
                tl.store(o_ptrs, (y0 + y) * 0.5 * zz * _sigmoid(zz), mask=o_ok)
            else:
                tl.store(o_ptrs, y, mask=o_ok)
        tl.debug_barrier()  # direction 0's y is in out before direction 1 reads it


@triton.jit(do_not_specialize=["s_e"])
def _bimamba_bwd_kernel(
    u_ptr, dt_ptr, B_ptr, C_ptr, z_ptr, Alog_ptr, D_ptr, bias_ptr, dout_ptr, ws_ptr, gs_ptr,
    du_ptr, ddt_ptr, dB_part_ptr, dC_part_ptr, dz_ptr, dA_part_ptr, dD_part_ptr, db_part_ptr,
    BATCH, L, E, M, NT, NSLOT, BPG,
    s_ud, s_ub, s_ul, s_dd, s_db, s_dl, s_Bd, s_Bb, s_Bl, s_Cd, s_Cb, s_Cl, s_zb, s_zl,
    s_gb, s_gl, s_e,
    T: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_M: tl.constexpr, UNROLL_M: tl.constexpr,
):
    """Gradients for BPG sequences and BLOCK_E channels, tiles from last to first.

    gs: this program's [BLOCK_M, BLOCK_E] adjoint states g of the later tile's row 0. Outputs:
    du, ddt [2, B, L, E]; dB_part, dC_part [2, n_eblk, B, M, L] (time innermost, so a state's
    column stores are contiguous); dz [B, L, E]; dA_part [2, n_g, M, E] (accumulated here,
    zeroed by the launcher); dD_part, db_part [2, n_g, E].
    """
    pid_g = tl.program_id(0).to(tl.int64)
    pid_e = tl.program_id(1)
    n_g = tl.num_programs(0)
    n_eblk = tl.num_programs(1)
    el = tl.arange(0, BLOCK_E)
    e = pid_e * BLOCK_E + el  # [BE]
    e_ok = e < E
    ecol = tl.max_contiguous(e * s_e, [2])  # [BE] channel offsets (s_e = 1; see _CHANNEL_STRIDE)
    j = tl.arange(0, T)  # [T]
    gs_p = gs_ptr + (pid_g * n_eblk + pid_e) * (BLOCK_M * BLOCK_E) + el * s_e
    for d in range(2):  # a loop, not unrolled: one copy of the body (compile time)
        Dv = tl.load(D_ptr + d * E + ecol, mask=e_ok, other=0.0).to(tl.float32)  # [BE]
        bias = tl.load(bias_ptr + d * E + ecol, mask=e_ok, other=0.0).to(tl.float32)  # [BE]
        A_p = Alog_ptr + d * E * M
        part = d * n_g + pid_g
        dA_p = dA_part_ptr + part * M * E + ecol  # row mi at + mi·E
        dD = tl.zeros([BLOCK_E], dtype=tl.float32)  # [BE] Σ over this program's b, t
        db = tl.zeros([BLOCK_E], dtype=tl.float32)  # [BE]
        for bb in range(0, BPG):
            b = pid_g * BPG + bb
            b_ok = (j * 0 + b) < BATCH  # [T] (a tensor: the interpreter rejects a scalar bool in a mask)
            bs = tl.minimum(b, BATCH - 1)  # keeps a padding sequence's pointers in bounds
            u_p = u_ptr + d * s_ud + bs * s_ub
            dt_p = dt_ptr + d * s_dd + bs * s_db
            B_p = B_ptr + d * s_Bd + bs * s_Bb
            C_p = C_ptr + d * s_Cd + bs * s_Cb
            z_p = z_ptr + bs * s_zb
            g_p = dout_ptr + bs * s_gb
            ws_p = ws_ptr + ((d * BATCH + bs) * n_eblk + pid_e) * NSLOT * (BLOCK_M * BLOCK_E) + el * s_e
            du_p = du_ptr + (d * BATCH + bs) * L * E
            ddt_p = ddt_ptr + (d * BATCH + bs) * L * E
            prow = ((d * n_eblk + pid_e) * BATCH + bs) * M * L  # this program's [M, L] partials
            dz_p = dz_ptr + bs * L * E
            for m0 in tl.static_range(BLOCK_M):
                tl.store(gs_p + m0 * BLOCK_E, tl.zeros([BLOCK_E], dtype=tl.float32))
            tl.debug_barrier()
            for ii in range(0, NT):
                i = NT - 1 - ii
                k = i * T + j  # [T] scan positions
                ok = (k < L) & b_ok
                ok_p1 = (k + 1 < L) & b_ok
                t = _time_of(k, L, d)
                t_p1 = _time_of(k + 1, L, d)
                u = _rows(u_p, t, s_ul, ok, ecol, e_ok)  # [T, BE]
                v = _rows(dt_p, t, s_dl, ok, ecol, e_ok) + bias[None, :]  # [T, BE]
                delta = tl.where(ok[:, None], _softplus(v), 0.0)  # [T, BE]
                v_p1 = _rows(dt_p, t_p1, s_dl, ok_p1, ecol, e_ok) + bias[None, :]  # rows k+1
                delta_p1 = tl.where(ok_p1[:, None], _softplus(v_p1), 0.0)  # [T, BE]
                dout = _rows(g_p, t, s_gl, ok, ecol, e_ok)  # [T, BE]
                zz = _rows(z_p, t, s_zl, ok, ecol, e_ok)  # [T, BE]
                sz = _sigmoid(zz)
                dy = dout * zz * sz * 0.5  # [T, BE] ∂loss/∂y of each direction
                dzf = dout * 0.5 * sz * (1.0 + zz * (1.0 - sz))  # [T, BE] dz = dzf · (y_0 + y_1)
                du_t = delta * u  # [T, BE]
                y = Dv[None, :] * u  # [T, BE]
                gB = tl.zeros([T, BLOCK_E], dtype=tl.float32)  # Σ_m g·Bm
                qA = tl.zeros([T, BLOCK_E], dtype=tl.float32)  # Σ_m q·A·log2(e)
                for mi in tl.range(0, BLOCK_M, loop_unroll_factor=UNROLL_M):
                    A2 = _decay2(A_p, e, e_ok, mi, M)  # [BE]
                    Bc = _col(B_p, t, s_Bl, ok, mi, M)  # [T]
                    Cc = _col(C_p, t, s_Cl, ok, mi, M)  # [T]
                    h0 = tl.load(ws_p + (i * BLOCK_M + mi) * BLOCK_E)  # [BE] checkpoint
                    g_in = tl.load(gs_p + mi * BLOCK_E)  # [BE] g of the later tile's row 0
                    # States h_k of the tile from its checkpoint.
                    a = tl.exp2(delta * A2[None, :])  # [T, BE]
                    bx = Bc[:, None] * du_t  # [T, BE]
                    bx0 = tl.where((j == 0)[:, None], bx + a * h0[None, :], bx)
                    _, h = tl.associative_scan((a, bx0), 0, _combine)  # [T, BE]
                    y += Cc[:, None] * h
                    # Adjoint states g_k = Cm_k·dy_k + a_{k+1}·g_{k+1}, by a reverse scan.
                    a_p1 = tl.exp2(delta_p1 * A2[None, :])  # [T, BE]
                    c = Cc[:, None] * dy
                    c = tl.where((j == T - 1)[:, None], c + a_p1 * g_in[None, :], c)
                    _, g = tl.associative_scan((a_p1, c), 0, _combine, reverse=True)  # [T, BE]
                    tl.store(gs_p + mi * BLOCK_E, _row_of(g, j, 0))
                    q = g * (h - bx)  # [T, BE] g_k·a_k·h_{k−1}
                    gB += g * Bc[:, None]
                    qA += q * A2[None, :]
                    m_ok = ok & (t * 0 + mi < M)  # (a tensor comparison: the interpreter rejects a Python bool in a mask)
                    tl.store(dC_part_ptr + prow + mi * L + t, tl.sum(h * dy, axis=1), mask=m_ok)
                    tl.store(dB_part_ptr + prow + mi * L + t, tl.sum(g * du_t, axis=1), mask=m_ok)
                    dA_r = dA_p + mi * E
                    dA_ok = e_ok & (e * 0 + mi < M)
                    tl.store(dA_r, tl.load(dA_r, mask=dA_ok, other=0.0) + tl.sum(q * delta, axis=0), mask=dA_ok)
                tl.debug_barrier()  # g of row 0 and dA are in memory for the next tile
                o_ok = ok[:, None] & e_ok[None, :]
                dz_ptrs = dz_p + t[:, None] * E + ecol[None, :]
                if d == 1:
                    y0 = tl.load(dz_ptrs, mask=o_ok, other=0.0).to(tl.float32)
                    tl.store(dz_ptrs, dzf * (y0 + y), mask=o_ok)
                else:
                    tl.store(dz_ptrs, y, mask=o_ok)
                ddelta = qA * 0.6931471805599453 + gB * u  # [T, BE]
                ddt = tl.where(ok[:, None], ddelta * _sigmoid(v), 0.0)  # [T, BE]
                tl.store(du_p + t[:, None] * E + ecol[None, :], gB * delta + Dv[None, :] * dy, mask=o_ok)
                tl.store(ddt_p + t[:, None] * E + ecol[None, :], ddt, mask=o_ok)
                dD += tl.sum(dy * u, axis=0)
                db += tl.sum(ddt, axis=0)
        tl.store(dD_part_ptr + part * E + ecol, dD, mask=e_ok)
        tl.store(db_part_ptr + part * E + ecol, db, mask=e_ok)
        tl.debug_barrier()  # direction 0's y is in dz before direction 1 reads it


# MARK: - Launch configuration

# Every [.., E] tensor the kernels touch has contiguous channels, so their channel offsets are
# e · 1. The 1 is passed as an argument that Triton does not specialise (`s_e`): when it knows
# the channels are contiguous it vectorises loads along E, spreading a tile's T rows over 8 lanes
# (threadsPerWarp [8, 4]), and every scan over time then crosses lanes. With the stride unknown it
# keeps each [T, BLOCK_E] tile as T rows in each thread's registers (threadsPerWarp [1, 32]):
# scans over time run in registers, and a warp still reads each row as one coalesced access.
_CHANNEL_STRIDE = 1


class TileConfig:
    """Launch parameters: T (tile steps; `T_short` for sequences of at most `short` steps),
    BLOCK_E, warps of each kernel, and sequences per backward program (0: automatic).

    Defaults chosen by `bench_bimamba.py --sweep` on one H200 (see BENCHMARKS.md); any setting
    gives the same result up to float32 rounding.
    """

    def __init__(self, T: int = 8, block_e: int = 32, num_warps: int = 1, bwd_num_warps: int = 1,
                 bpg: int = 0, T_short: int = 8, short: int = 64, unroll_m: int = 16):
        for name, x in (("T", T), ("T_short", T_short), ("block_e", block_e)):
            if x < 1 or x & (x - 1):
                raise ValueError(f"TileConfig: {name} must be a power of two, got {x}")
        self.T, self.block_e, self.num_warps, self.bwd_num_warps = T, block_e, num_warps, bwd_num_warps
        self.bpg, self.T_short, self.short, self.unroll_m = bpg, T_short, short, unroll_m

    def __repr__(self) -> str:
        return (f"TileConfig(T={self.T}, block_e={self.block_e}, num_warps={self.num_warps}, "
                f"bwd_num_warps={self.bwd_num_warps}, bpg={self.bpg}, T_short={self.T_short}, "
                f"short={self.short}, unroll_m={self.unroll_m})")


_config = TileConfig()
# The last launched compiled kernels ("fwd", "bwd"), for inspecting registers and IR.
LAST: dict = {}


def tile_config() -> TileConfig:
    return _config


def set_tile_config(cfg: TileConfig) -> None:
    global _config
    _config = cfg


def _shape(u: Tensor, A_log: Tensor, cfg: TileConfig) -> tuple[int, int, int, int, int, int, int, int]:
    """(B, L, E, M, T, BLOCK_E, BLOCK_M, n_tiles) for inputs u [2, B, L, E], A_log [2, E, M]."""
    _, Bsz, L, E = u.shape
    M = A_log.shape[-1]
    T = cfg.T_short if L <= cfg.short else cfg.T
    T = max(2, min(T, triton.next_power_of_2(max(L, 1))))
    BE = min(cfg.block_e, max(16, triton.next_power_of_2(E)))
    BM = triton.next_power_of_2(M)
    return Bsz, L, E, M, T, BE, BM, triton.cdiv(max(L, 1), T)


def _ws_numel(u: Tensor, A_log: Tensor, save: bool, cfg: TileConfig) -> tuple[int, int]:
    """(elements of the state slots, slots per program): NT + 1 checkpoints, or 2 alternating."""
    Bsz, L, E, M, T, BE, BM, NT = _shape(u, A_log, cfg)
    nslot = NT + 1 if save else 2
    return 2 * Bsz * triton.cdiv(E, BE) * nslot * BM * BE, nslot


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
    Bsz, L, E, M, T, BE, BM, NT = _shape(u, A_log, cfg)
    out = torch.empty(Bsz, L, E, device=u.device, dtype=z.dtype)  # [B, L, E]
    n_ws, nslot = _ws_numel(u, A_log, save, cfg)
    ws = torch.empty(n_ws, device=u.device, dtype=torch.float32)  # [2, B, n_eblk, slots, M', E']
    if out.numel() == 0:
        return out, ws
    grid = (Bsz, triton.cdiv(E, BE))
    LAST["fwd"] = _bimamba_fwd_kernel[grid](
        u, dt, Bm, Cm, z, A_log, D, dt_bias, out, ws,
        Bsz, L, E, M, NT, nslot,
        *u.stride()[:3], *dt.stride()[:3], *Bm.stride()[:3], *Cm.stride()[:3], *z.stride()[:2], _CHANNEL_STRIDE,
        T=T, BLOCK_E=BE, BLOCK_M=BM, SAVE=save, UNROLL_M=cfg.unroll_m, num_warps=cfg.num_warps,
    )
    return out, ws if save else ws[:0]


def _backward(u, dt, Bm, Cm, z, A_log, D, dt_bias, dout, ws, cfg: TileConfig):
    """Returns (du, ddt, dBm, dCm, dz, dA_log, dD, ddt_bias) in the inputs' dtypes and shapes."""
    u, dt, Bm, Cm, z, dout = (_inner(x) for x in (u, dt, Bm, Cm, z, dout))
    A_log, D, dt_bias = (x.contiguous() for x in (A_log, D, dt_bias))
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
    gs = torch.empty(n_g * n_eblk * BM * BE, device=dev, dtype=f32)  # [n_g, n_eblk, M', E'] g carries
    dB_part = torch.empty(2, n_eblk, Bsz, M, L, device=dev, dtype=f32)  # [2, n_eblk, B, M, L]
    dC_part = torch.empty(2, n_eblk, Bsz, M, L, device=dev, dtype=f32)  # [2, n_eblk, B, M, L]
    dA_part = torch.zeros(2, n_g, M, E, device=dev, dtype=f32)  # [2, n_g, M, E]
    dD_part = torch.empty(2, n_g, E, device=dev, dtype=f32)  # [2, n_g, E]
    db_part = torch.empty(2, n_g, E, device=dev, dtype=f32)  # [2, n_g, E]
    LAST["bwd"] = _bimamba_bwd_kernel[(n_g, n_eblk)](
        u, dt, Bm, Cm, z, A_log, D, dt_bias, dout, ws, gs,
        du, ddt, dB_part, dC_part, dz, dA_part, dD_part, db_part,
        Bsz, L, E, M, NT, NT + 1, bpg,
        *u.stride()[:3], *dt.stride()[:3], *Bm.stride()[:3], *Cm.stride()[:3], *z.stride()[:2],
        *dout.stride()[:2], _CHANNEL_STRIDE,
        T=T, BLOCK_E=BE, BLOCK_M=BM, UNROLL_M=cfg.unroll_m, num_warps=cfg.bwd_num_warps,
    )
    A = -torch.exp(A_log.float())  # [2, E, M]
    dA_log = (dA_part.sum(1).transpose(1, 2) * A).to(A_log.dtype).contiguous()  # [2, E, M]
    dBm = dB_part.sum(1).transpose(2, 3).to(Bm.dtype).contiguous()  # [2, B, L, M]
    dCm = dC_part.sum(1).transpose(2, 3).to(Cm.dtype).contiguous()  # [2, B, L, M]
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
    ws = u.new_empty(_ws_numel(u, A_log, save, _config)[0] if save else 0, dtype=torch.float32)
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
    input. B = 0 or L = 0 give an empty out.
    """
    _check(u, dt, Bm, Cm, z, A_log, D, dt_bias)
    save = torch.is_grad_enabled() and any(
        x.requires_grad for x in (u, dt, Bm, Cm, z, A_log, D, dt_bias))
    out, _ = _fwd_op(u, dt, Bm, Cm, z, A_log, D, dt_bias, save)
    return out
