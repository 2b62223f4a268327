"""Fused Triton selective scan: one forward and one backward kernel behind an autograd Function.

Glossary of dimension letters (the same as docs/MODEL.md):
  B  sequences scanned independently (B·S or B·K inside the dual-path model)
  L  time steps of one scan (L may be 1)
  E  channels, Mamba's inner width (expand · N)
  M  state size per channel (Mamba's d_state, 16 in every preset)

The scan, per sequence b, channel e, state m, with h₋₁ = 0 (the definition in docs/MODEL.md):

    h_t[e,m] = exp(delta_t[e]·A[e,m]) · h_{t-1}[e,m] + delta_t[e] · Bm_t[m] · u_t[e]
    y_t[e]   = Σ_m Cm_t[m] · h_t[e,m] + D[e] · u_t[e]

Shapes are channels-last: u, delta `[B, L, E]`; A `[E, M]`; Bm, Cm `[B, L, M]`; D `[E]`;
y `[B, L, E]` float32. u, delta, Bm, Cm may be float32, float16 or bfloat16 (they are widened
to float32 on load); A and D any float dtype. Every sum is accumulated in float32.

Forward kernel: one program per (b, block of BLOCK_E channels, direction); the state
`[M, BLOCK_E]` lives in registers, the program walks t = 0..L-1, loads u/delta contiguous along E
(coalesced) and stores only y. Nothing but the inputs is kept for the backward pass. The
direction axis serves BiMamba's split variant (`selective_scan_bidir`: inputs stacked [2, ...],
both directions in one launch, direction 1 walking t = L-1..0 by index arithmetic, no flipped
copies); `selective_scan_triton` launches one direction. Options of the split variant (constexpr
flags, off for `selective_scan_triton`): KEEP_CK writes the backward's checkpoints, SOFTPLUS
forms delta = softplus(dt + dt_bias) from dt, MERGE forms BiMamba's gated merge of the two
directions (two launches).

Backward kernel (recomputation, as in the Mamba paper): the same program grid. It first re-runs
the forward recurrence and writes a checkpoint of the state every T = 8 steps; then it walks the
segments from last to first: re-runs one segment from its checkpoint, writing the segment's T
states to a small scratch area, and steps backwards through the segment with

    g_t       = Cm_t · dy_t + exp(delta_{t+1}·A) · g_{t+1}            (g = ∂loss/∂h_t)
    dCm_t[m]  = Σ_e dy_t[e] · h_t[e,m]
    dBm_t[m]  = Σ_e g_t[e,m] · delta_t[e] · u_t[e]
    du_t[e]   = Σ_m g_t[e,m] · delta_t[e] · Bm_t[m] + D[e] · dy_t[e]
    ddelta_t[e] = Σ_m g_t[e,m] · (A[e,m]·exp(delta_t·A[e,m])·h_{t-1}[e,m] + Bm_t[m]·u_t[e])
    dA[e,m]   = Σ_{b,t} g_t[e,m] · delta_t[e] · exp(delta_t·A[e,m]) · h_{t-1}[e,m]
    dD[e]     = Σ_{b,t} dy_t[e] · u_t[e]

Sums over E (dBm, dCm) are per-block partials and sums over B (dA, dD) per-sequence partials,
finished with a torch `sum` (deterministic, no atomics). With the forward's checkpoints (HAVE_CK) the first pass
is skipped; with SOFTPLUS the stored ddelta is the gradient for dt.

Memory of the backward pass, transient (float32): the scratch holds (⌈L/T⌉ + T) states per program,
B · E' · M' · (⌈L/T⌉ + T) · 4 bytes with E' = E rounded up to BLOCK_E and M' = M rounded up to a
power of two: 173 MB for B=264, L=250, E=256, M=16 and 426 MB for B=2000, L=33 (storing every
state would take 1.1 GB for either). The partials add n_eblocks·B·L·M·8 bytes for dBm/dCm and
B·E·(M+1)·4 bytes for dA/dD. Each recurrence step is evaluated three times in all, whatever T.
T = 8 rather than √L (which minimises memory) keeps the segment scratch of all resident programs
closer to L2 size; on an H100 it was up to ~10% faster at L = 250 and no slower at L = 33.
"""

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

__all__ = ["SelectiveScanTriton", "selective_scan_triton", "selective_scan_bidir", "interpreter_enabled"]

_INPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Triton's `jit` reads TRITON_INTERPRET when a kernel is defined, i.e. when this module is imported.
_INTERPRETED = os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def interpreter_enabled() -> bool:
    """Whether this module's kernels were defined for Triton's CPU interpreter (`TRITON_INTERPRET=1`)."""
    return _INTERPRETED


# MARK: - Kernels


@triton.jit
def _fetch(ptr, t, stride, mask, DEPTH: tl.constexpr, ALIGN: tl.constexpr = 0):
    """Row t of a [L, ·] view (pointer block ptr, row stride; 0 where masked): with DEPTH 1
    widened to float32 at once, as the next step uses it; with DEPTH 2 (scan_gluon's loads two
    steps ahead) as stored, widened where it is used, so that the load stays in flight meanwhile
    (a conversion right after the load would wait for it). ALIGN > 0: the row's start is a
    multiple of ALIGN bytes (the launcher's `row_align`), which lets rows whose stride Triton
    cannot see to be a multiple of 16 (Bm, Cm: R + 2M elements) load as vectors."""
    p = ptr + t * stride
    if ALIGN > 0:
        p = tl.multiple_of(p, [ALIGN])
    x = tl.load(p, mask=mask, other=0.0)
    if DEPTH == 1:
        x = x.to(tl.float32)
    return x


@triton.jit
def _ld(ptr, t, stride, mask):
    """Row t of a [L, ·] view widened to float32 (`_fetch` one step ahead)."""
    return _fetch(ptr, t, stride, mask, 1)


@triton.jit
def _origin(d, s_dir, b, s_b, s_l, L):
    """Where direction d's scan of sequence b starts in a [ND, B, L, ·] tensor, and the stride of
    one scan step: (d·s_dir + b·s_b, s_l) for d = 0; for d = 1 the offset of step L-1 and −s_l."""
    dd = d.to(tl.int64)
    return dd * s_dir + b * s_b + dd * (L - 1) * s_l, s_l - 2 * d * s_l


@triton.jit
def _walk(ptr, d, s_dir, b, s_b, s_l, L, cols):
    """Pointers to step 0 of direction d's scan of sequence b (`_origin`) at the column offsets
    `cols`, and the stride of one scan step."""
    off, step = _origin(d, s_dir, b, s_b, s_l, L)
    return ptr + off + cols, step


@triton.jit
def _softplus(v):
    """log(1 + e^v) = max(v, 0) + log1p(w), w = e^−|v| ∈ (0, 1], with log1p(w) = w·P(w): P of
    degree 9 fitted to log1p(w)/w on [0, 1] (Chebyshev, coefficients rounded to float32; Horner
    in float32 within 1.6e-7 relative) and e^−|v| by exp2 (relative error ≈ 6e-8·|v| from
    rounding |v|·log2 e): one MUFU and ≈ 20 instructions on sm_90 against 2 and ≈ 50 with
    libdevice's exp and log (training/bench/NOTES.md, "Cheaper softplus and sigmoid")."""
    w = tl.exp2(tl.abs(v) * -1.4426950408889634)
    p = w * -0.0032140322 + 0.019649142
    p = p * w - 0.05643497
    p = p * w + 0.1053322
    p = p * w - 0.15251446
    p = p * w + 0.19651489
    p = p * w - 0.24947809
    p = p * w + 0.333291
    p = p * w - 0.4999985
    p = p * w + 1.0
    return tl.maximum(v, 0.0) + p * w


@triton.jit
def _sigmoid(v):
    """1 / (1 + e^−v): exp2 and the full-range approximate division (2 ulp)."""
    return tl.math.fdiv(1.0, 1.0 + tl.exp2(v * -1.4426950408889634))


@triton.jit
def _recur(h, A2, u, dt, Bt):
    """One step of the recurrence: h ↦ exp(dt·A)·h + dt·Bm·u ([BM, BE]; A2 = A·log2 e). Shared
    with scan_gluon's kernels (element-wise, so any layout)."""
    return tl.exp2(dt[None, :] * A2) * h + Bt[:, None] * (dt * u)[None, :]


@triton.jit
def _sum_e(x):
    """Σ over the channels (axis 1) of a [BM, BE] tile: [BM]."""
    return tl.sum(x, axis=1)


@triton.jit
def _adjoint_step(h_prev, g_next, A2, u, dt, dy, Bt, Ct, Dv, SUM_E: tl.constexpr):
    """One step of the backward walk at step t, from h_{t-1} and g_next = exp(dt_{t+1}·A)·g_{t+1}:
    g_t = g_next + Cm_t·dy_t and the step's gradients. Returns (exp(dt_t·A)·g_t, dCm_t [BM],
    dBm_t [BM], du_t [BE], ddelta_t [BE], the step's dA term q·dt [BM, BE]). SUM_E sums a tile
    over the channels (`_sum_e`, or scan_gluon's reduce-scatter, whose result is laid out by
    lane). Shared with scan_gluon's backward (its sums reduce in whatever layout the tile has)."""
    dA_t = tl.exp2(dt[None, :] * A2)  # [BM, BE] exp(delta_t·A)
    du_t = dt * u  # [BE]
    h = dA_t * h_prev + Bt[:, None] * du_t[None, :]  # [BM, BE] h_t
    g = g_next + Ct[:, None] * dy[None, :]  # [BM, BE] g_t
    dC = SUM_E(h * dy[None, :])  # [BM]
    dB = SUM_E(g * du_t[None, :])  # [BM]
    gB = tl.sum(g * Bt[:, None], axis=0)  # [BE]
    q = g * dA_t * h_prev  # [BM, BE]
    ddt = tl.sum(q * A2, axis=0) * 0.6931471805599453 + gB * u  # [BE] (A = A2·ln 2)
    du = gB * dt + Dv * dy  # [BE]
    return dA_t * g, dC, dB, du, ddt, q * dt[None, :]


@triton.jit
def _delta_of(x, mask, bias, SOFTPLUS: tl.constexpr):
    """(delta, pre) [BE] float32 of a fetched dt/delta row x: with SOFTPLUS pre = dt + bias and
    delta = softplus(pre), 0 where masked (a padding channel's state stays 0); else both the
    stored delta."""
    pre = x.to(tl.float32)
    if SOFTPLUS:
        pre = pre + bias
        delta = tl.where(mask, _softplus(pre), 0.0)
    else:
        delta = pre
    return delta, pre


@triton.jit
def _delta_pre_at(p, t, stride, mask, bias, SOFTPLUS: tl.constexpr):
    """(delta, pre) of row t (`_delta_of`)."""
    return _delta_of(_ld(p, t, stride, mask), mask, bias, SOFTPLUS)


@triton.jit
def _delta_at(p, t, stride, mask, bias, SOFTPLUS: tl.constexpr):
    """delta of row t [BE] float32 (`_delta_pre_at`)."""
    delta, _ = _delta_pre_at(p, t, stride, mask, bias, SOFTPLUS)
    return delta


@triton.jit
def _bias_of(bias_ptr, d, x_bias, e, s_bias, mask, SOFTPLUS: tl.constexpr):
    """dt_bias of direction d at channels e [BE] float32 (0 without SOFTPLUS)."""
    if SOFTPLUS:
        b = tl.load(bias_ptr + d * x_bias + e * s_bias, mask=mask, other=0.0).to(tl.float32)
    else:
        b = (e * 0).to(tl.float32)  # zeros in e's layout (tl.zeros has none to give under Gluon)
    return b


@triton.jit
def _program_inputs(u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, d, pid_b, e, m, e_ok, m_ok, L,
                    s_ae, s_am, s_dd, s_bias, x_bias, s_ub, s_ul, s_ue, s_db, s_dl, s_de, s_Bb, s_Bl, s_Bm,
                    s_Cb, s_Cl, s_Cm, x_u, x_d, x_B, x_C, x_A, x_D, SOFTPLUS: tl.constexpr):
    """What both kernels read for direction d, sequence pid_b and the tile's channels e and
    states m: A·log2(e) [BM, BE], D and dt_bias [BE] (float32; padding lanes 0, so their state
    stays exactly 0), and the step-0 pointers and step strides of u, delta, Bm and Cm (`_walk`)."""
    A2 = tl.load(A_ptr + d * x_A + e[None, :] * s_ae + m[:, None] * s_am, mask=m_ok[:, None] & e_ok[None, :],
                 other=0.0).to(tl.float32) * 1.4426950408889634  # [BM, BE] exp(delta·A) = exp2(delta·A2)
    Dv = tl.load(D_ptr + d * x_D + e * s_dd, mask=e_ok, other=0.0).to(tl.float32)  # [BE]
    bias = _bias_of(bias_ptr, d, x_bias, e, s_bias, e_ok, SOFTPLUS)  # [BE]
    u_p, s_ul = _walk(u_ptr, d, x_u, pid_b, s_ub, s_ul, L, e * s_ue)
    d_p, s_dl = _walk(delta_ptr, d, x_d, pid_b, s_db, s_dl, L, e * s_de)
    B_p, s_Bl = _walk(B_ptr, d, x_B, pid_b, s_Bb, s_Bl, L, m * s_Bm)
    C_p, s_Cl = _walk(C_ptr, d, x_C, pid_b, s_Cb, s_Cl, L, m * s_Cm)
    return A2, Dv, bias, u_p, s_ul, d_p, s_dl, B_p, s_Bl, C_p, s_Cl


@triton.jit
def _ck_tile(ck_ptr, d, b, BATCH, NSEG, M, E, m, e):
    """Pointers to checkpoint 0 of direction d, sequence b in ck [ND, B, NSEG, E, M] at the
    tile's states m and channels e (checkpoint s is + s·E·M), and the tile's mask. The layout
    does not depend on BLOCK_E, so forward and backward may tile E differently; M innermost as
    in the state tiles' registers (4 states of a channel in a thread), so no layout conversion."""
    base = ck_ptr + ((d.to(tl.int64) * BATCH + b) * NSEG) * E * M
    return base + e[None, :] * M + m[:, None], (m < M)[:, None] & (e < E)[None, :]


@triton.jit
def _fwd_outputs(y_ptr, z_ptr, o_ptr, d, pid_b, e, L, x_y, s_yb, s_yl, s_ye, s_zb, s_zl, s_ze, s_ob, s_ol, s_oe,
                 MERGE: tl.constexpr):
    """The forward's output walks (`_walk`): y, and with MERGE 2 z and out (else y's again)."""
    y_p, s_yl = _walk(y_ptr, d, x_y, pid_b, s_yb, s_yl, L, e * s_ye)
    if MERGE == 2:
        z_p, s_zl = _walk(z_ptr, d, 0, pid_b, s_zb, s_zl, L, e * s_ze)
        o_p, s_ol = _walk(o_ptr, d, 0, pid_b, s_ob, s_ol, L, e * s_oe)
    else:
        z_p, s_zl, o_p, s_ol = y_p, s_yl, y_p, s_yl
    return y_p, s_yl, z_p, s_zl, o_p, s_ol


@triton.jit
def _fwd_step(h, t, A2, u, dt, Bt, Ct, Dv, ck_p, ck_mask, E, M, T, KEEP_CK: tl.constexpr):
    """Step t of the forward from the state before it (checkpointed there when t is a multiple
    of T and KEEP_CK): (h_t, y_t [BE]), for `_fwd_output`. Shared with scan_gluon's forward."""
    if KEEP_CK:
        if t % T == 0:
            tl.store(ck_p + (t // T) * E * M, h.to(ck_p.dtype.element_ty), mask=ck_mask)
    h = _recur(h, A2, u, dt, Bt)  # [BM, BE]
    return h, tl.sum(Ct[:, None] * h, axis=0) + Dv * u  # [BE]


@triton.jit
def _merge_rows(y_p, s_yl, z_p, s_zl, t, ok):
    """The merging launch's (MERGE 2) own inputs of step t [BE]: the y_0 parked at y_p (float32)
    and z (its dtype). Fetched a step ahead, as the scan's inputs are: loaded where they are
    used, each step would wait for them. Shared with scan_gluon's forward."""
    return tl.load(y_p + t * s_yl, mask=ok, other=0.0), tl.load(z_p + t * s_zl, mask=ok, other=0.0)


@triton.jit
def _fwd_output(y, t, y_p, s_yl, o_p, s_ol, e_ok, y0, zt, MERGE: tl.constexpr):
    """Stores step t's y (MERGE 2: adds y_0 and stores the gated merge to o_p as well, module
    docstring; y0, zt are step t's `_merge_rows`, unused otherwise), in y's layout (the
    pointers' and mask's too). Shared with scan_gluon's forward."""
    if MERGE == 2:
        y += y0  # y_0 + y_1
        zf = zt.to(tl.float32)
        tl.store(o_p + t * s_ol, y * 0.5 * zf * _sigmoid(zf), mask=e_ok)
    tl.store(y_p + t * s_yl, y, mask=e_ok)


@triton.jit
def _scan_fwd_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, y_ptr, ck_ptr, z_ptr, o_ptr,
    L, E, M, T, NSEG, BATCH, d0,
    s_ae, s_am, s_dd, s_bias, x_bias,
    s_ub, s_ul, s_ue,
    s_db, s_dl, s_de,
    s_Bb, s_Bl, s_Bm,
    s_Cb, s_Cl, s_Cm,
    s_yb, s_yl, s_ye,
    s_zb, s_zl, s_ze,
    s_ob, s_ol, s_oe,
    x_u, x_d, x_B, x_C, x_y, x_A, x_D,
    BLOCK_E: tl.constexpr, BLOCK_M: tl.constexpr, KEEP_CK: tl.constexpr, SOFTPLUS: tl.constexpr,
    MERGE: tl.constexpr,
):
    """y for one sequence, one direction and BLOCK_E channels; the state [BLOCK_M, BLOCK_E]
    stays in registers. With KEEP_CK it also writes the state before every T-th step to
    ck [ND, B, NSEG, E, M] float32 (`_ck_tile`), the backward's checkpoints. With SOFTPLUS,
    delta_ptr holds dt and delta = softplus(dt + dt_bias) (bias_ptr [ND, E]) is formed here.

    MERGE (BiMamba's gate and merge, out = (y_0 + y_1)/2 · SiLU(z), in two launches of one
    direction each, d0 = 0 then 1): 1 writes y_0 to y_ptr [B, L, E] (x_y = 0); 2 adds y_1 to it
    there (y_0 + y_1 stays for the backward's dz) and writes out (z_ptr, o_ptr [B, L, E], the
    strides s_z*, s_o*). 0: y of every direction to y_ptr [ND, B, L, E].

    Direction (program axis 2 plus d0, `_origin`): 0 walks t = 0..L-1, 1 walks t = L-1..0
    through the same loop, its pointers starting at step L-1 with negated step strides. x_* are
    the strides of the direction axis. The inputs of step t+1 are loaded while step t is
    computed (software prefetch), so that the loop is not bound by the latency of global loads.
    """
    pid_b = tl.program_id(0).to(tl.int64)
    pid_e = tl.program_id(1)
    d = tl.program_id(2) + d0
    e = pid_e * BLOCK_E + tl.arange(0, BLOCK_E)  # [BE]
    m = tl.arange(0, BLOCK_M)  # [BM]
    e_ok = e < E
    m_ok = m < M
    A2, Dv, bias, u_p, s_ul, d_p, s_dl, B_p, s_Bl, C_p, s_Cl = _program_inputs(
        u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, d, pid_b, e, m, e_ok, m_ok, L,
        s_ae, s_am, s_dd, s_bias, x_bias, s_ub, s_ul, s_ue, s_db, s_dl, s_de, s_Bb, s_Bl, s_Bm,
        s_Cb, s_Cl, s_Cm, x_u, x_d, x_B, x_C, x_A, x_D, SOFTPLUS)
    y_p, s_yl, z_p, s_zl, o_p, s_ol = _fwd_outputs(y_ptr, z_ptr, o_ptr, d, pid_b, e, L, x_y, s_yb, s_yl, s_ye,
                                                   s_zb, s_zl, s_ze, s_ob, s_ol, s_oe, MERGE)
    ck_p, ck_mask = _ck_tile(ck_ptr, d, pid_b, BATCH, NSEG, M, E, m, e)
    h = tl.zeros([BLOCK_M, BLOCK_E], dtype=tl.float32)  # [BM, BE]
    u_n, dt_n = _ld(u_p, 0, s_ul, e_ok), _delta_at(d_p, 0, s_dl, e_ok, bias, SOFTPLUS)  # [BE] step 0
    B_n, C_n = _ld(B_p, 0, s_Bl, m_ok), _ld(C_p, 0, s_Cl, m_ok)  # [BM] step 0
    if MERGE == 2:
        y0_n, z_n = _merge_rows(y_p, s_yl, z_p, s_zl, 0, e_ok)  # [BE] step 0
    for t in range(0, L):
        u, dt, Bt, Ct = u_n, dt_n, B_n, C_n
        tn = tl.minimum(t + 1, L - 1)  # the last step prefetches itself again (unused)
        u_n, dt_n = _ld(u_p, tn, s_ul, e_ok), _delta_at(d_p, tn, s_dl, e_ok, bias, SOFTPLUS)
        B_n, C_n = _ld(B_p, tn, s_Bl, m_ok), _ld(C_p, tn, s_Cl, m_ok)
        if MERGE == 2:  # issued with the other rows, before the step's work
            y0, zt = y0_n, z_n
            y0_n, z_n = _merge_rows(y_p, s_yl, z_p, s_zl, tn, e_ok)
        h, y = _fwd_step(h, t, A2, u, dt, Bt, Ct, Dv, ck_p, ck_mask, E, M, T, KEEP_CK)  # [BM, BE], [BE]
        if MERGE != 2:
            y0, zt = y, y  # unused
        _fwd_output(y, t, y_p, s_yl, o_p, s_ol, e_ok, y0, zt, MERGE)


@triton.jit
def _scan_bwd_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, dy_ptr, ws_ptr, ck_ptr,
    du_ptr, ddelta_ptr, dB_part_ptr, dC_part_ptr, dA_part_ptr, dD_part_ptr, db_part_ptr,
    L, E, M, T, NSEG, BATCH,
    s_ae, s_am, s_dd, s_bias, x_bias,
    s_ub, s_ul, s_ue,
    s_db, s_dl, s_de,
    s_Bb, s_Bl, s_Bm,
    s_Cb, s_Cl, s_Cm,
    s_gb, s_gl, s_ge,
    x_u, x_d, x_B, x_C, x_g, x_A, x_D,
    BLOCK_E: tl.constexpr, BLOCK_M: tl.constexpr, HAVE_CK: tl.constexpr, SOFTPLUS: tl.constexpr,
    M_INNER: tl.constexpr,
):
    """All gradients for one sequence, one direction and BLOCK_E channels, recomputing states
    segment by segment (t below is the position in the direction's scan order, as in the forward
    kernel; `_origin` maps it to memory).

    Scratch `ws` per program: NSEG checkpoint slots (state before step s·T) then T slots for the
    states h_{t-1} of the segment being walked backwards; a slot is [BLOCK_M, BLOCK_E]. With
    HAVE_CK the forward kernel wrote the checkpoints (ck, `_ck_tile`): pass 1 is skipped and
    `ws` holds only the T segment slots. With SOFTPLUS (as in the forward) the gradient stored
    for delta is the one for dt: ddelta · sigmoid(dt + dt_bias), and db_part [ND, B, E] gets
    its sum over the steps (dt_bias's gradient, summed in float32 whatever ddelta's dtype).
    du, ddelta are [ND, B, L, E] contiguous (float32, or rounded to the launcher's dtypes on
    store); dB_part, dC_part [ND, n_eblocks, B, L, M]; dA_part [ND, B, M, E]; dD_part [ND, B, E].
    Every loop prefetches the next step's inputs.
    """
    pid_b = tl.program_id(0).to(tl.int64)
    pid_e = tl.program_id(1)
    d = tl.program_id(2)
    n_eblk = tl.num_programs(1)
    el = tl.arange(0, BLOCK_E)  # [BE]
    e = pid_e * BLOCK_E + el  # [BE]
    m = tl.arange(0, BLOCK_M)  # [BM]
    e_ok = e < E
    m_ok = m < M
    A2, Dv, bias, u_p, s_ul, d_p, s_dl, B_p, s_Bl, C_p, s_Cl = _program_inputs(
        u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, d, pid_b, e, m, e_ok, m_ok, L,
        s_ae, s_am, s_dd, s_bias, x_bias, s_ub, s_ul, s_ue, s_db, s_dl, s_de, s_Bb, s_Bl, s_Bm,
        s_Cb, s_Cl, s_Cm, x_u, x_d, x_B, x_C, x_A, x_D, SOFTPLUS)
    g_p, s_gl = _walk(dy_ptr, d, x_g, pid_b, s_gb, s_gl, L, e * s_ge)
    # Outputs with known contiguous layouts (allocated by the launcher).
    o_off, s_o = _origin(d, BATCH * L * E, pid_b, L * E, E, L)
    du_p = du_ptr + o_off + e
    dd_p = ddelta_ptr + o_off + e
    part_off, s_pm = _origin(d, n_eblk * BATCH * L * M, pid_e * BATCH + pid_b, L * M, M, L)
    dB_p = dB_part_ptr + part_off + m  # this program's [L, M] partial rows
    dC_p = dC_part_ptr + part_off + m
    slot = BLOCK_M * BLOCK_E
    if M_INNER:   # m innermost, as the tile sits in the registers: no layout conversion
        tile = el[None, :] * BLOCK_M + m[:, None]  # [BM, BE] offsets inside one slot
    else:         # e innermost: `--scan triton` as it was (through shared memory each step)
        tile = m[:, None] * BLOCK_E + el[None, :]
    n_ck_slots = 0 if HAVE_CK else NSEG
    ws_p = ws_ptr + ((d * BATCH + pid_b) * n_eblk + pid_e) * (n_ck_slots + T) * slot  # this program's slot 0
    seg_p = ws_p + n_ck_slots * slot  # the segment's states: slot k holds h_{t0+k-1}

    if HAVE_CK:
        ck_p, ck_mask = _ck_tile(ck_ptr, d, pid_b, BATCH, NSEG, M, E, m, e)
    else:
        # Pass 1: forward recurrence, keeping only the state at the start of each segment.
        h = tl.zeros([BLOCK_M, BLOCK_E], dtype=tl.float32)  # [BM, BE]
        u_n, dt_n, B_n = _ld(u_p, 0, s_ul, e_ok), _delta_at(d_p, 0, s_dl, e_ok, bias, SOFTPLUS), _ld(B_p, 0, s_Bl, m_ok)
        for t in range(0, L):
            u, dt, Bt = u_n, dt_n, B_n
            tn = tl.minimum(t + 1, L - 1)
            u_n, dt_n, B_n = _ld(u_p, tn, s_ul, e_ok), _delta_at(d_p, tn, s_dl, e_ok, bias, SOFTPLUS), _ld(B_p, tn, s_Bl, m_ok)
            if t % T == 0:
                tl.store(ws_p + (t // T) * slot + tile, h)
            h = _recur(h, A2, u, dt, Bt)
        tl.debug_barrier()

    # Pass 2: segments from last to first; inside a segment, time from last to first.
    g_next = tl.zeros([BLOCK_M, BLOCK_E], dtype=tl.float32)  # exp(delta_{t+1}·A)·g_{t+1}
    dA_acc = tl.zeros([BLOCK_M, BLOCK_E], dtype=tl.float32)  # [BM, BE]
    dD_acc = tl.zeros([BLOCK_E], dtype=tl.float32)  # [BE]
    db_acc = tl.zeros([BLOCK_E], dtype=tl.float32)  # [BE] (SOFTPLUS)
    for i in range(0, NSEG):
        s = NSEG - 1 - i
        t0 = s * T
        t_end = tl.minimum(t0 + T, L)
        # 2a: recompute the segment's states from its checkpoint.
        if HAVE_CK:
            h = tl.load(ck_p + s * E * M, mask=ck_mask, other=0.0).to(tl.float32)  # [BM, BE] state before step t0
        else:
            h = tl.load(ws_p + s * slot + tile)  # [BM, BE] state before step t0
        u_n, dt_n, B_n = _ld(u_p, t0, s_ul, e_ok), _delta_at(d_p, t0, s_dl, e_ok, bias, SOFTPLUS), _ld(B_p, t0, s_Bl, m_ok)
        for t in range(t0, t_end):
            u, dt, Bt = u_n, dt_n, B_n
            tn = tl.minimum(t + 1, t_end - 1)
            u_n, dt_n, B_n = _ld(u_p, tn, s_ul, e_ok), _delta_at(d_p, tn, s_dl, e_ok, bias, SOFTPLUS), _ld(B_p, tn, s_Bl, m_ok)
            tl.store(seg_p + (t - t0) * slot + tile, h)  # h_{t-1}
            h = _recur(h, A2, u, dt, Bt)
        tl.debug_barrier()
        # 2b: walk the segment backwards.
        t = t_end - 1
        hp_n = tl.load(seg_p + (t - t0) * slot + tile)  # [BM, BE]
        u_n, dy_n = _ld(u_p, t, s_ul, e_ok), _ld(g_p, t, s_gl, e_ok)
        dt_n, pre_n = _delta_pre_at(d_p, t, s_dl, e_ok, bias, SOFTPLUS)  # [BE]; pre: dt + bias (SOFTPLUS)
        B_n, C_n = _ld(B_p, t, s_Bl, m_ok), _ld(C_p, t, s_Cl, m_ok)
        for k in range(0, t_end - t0):
            t = t_end - 1 - k
            h_prev, u, dt, pre, dy, Bt, Ct = hp_n, u_n, dt_n, pre_n, dy_n, B_n, C_n
            tp = tl.maximum(t - 1, t0)  # the segment's first step prefetches itself (unused)
            hp_n = tl.load(seg_p + (tp - t0) * slot + tile)  # [BM, BE]
            u_n, dy_n = _ld(u_p, tp, s_ul, e_ok), _ld(g_p, tp, s_gl, e_ok)
            dt_n, pre_n = _delta_pre_at(d_p, tp, s_dl, e_ok, bias, SOFTPLUS)
            B_n, C_n = _ld(B_p, tp, s_Bl, m_ok), _ld(C_p, tp, s_Cl, m_ok)  # [BM]
            g_next, dC, dB, du, ddt, dA_term = _adjoint_step(h_prev, g_next, A2, u, dt, dy, Bt, Ct, Dv, _sum_e)
            dA_acc += dA_term
            dD_acc += dy * u
            tl.store(du_p + t * s_o, du, mask=e_ok)
            if SOFTPLUS:
                ddt = ddt * _sigmoid(pre)  # d/d dt of softplus(dt + bias)
                db_acc += ddt
            tl.store(dd_p + t * s_o, ddt, mask=e_ok)
            tl.store(dB_p + t * s_pm, dB, mask=m_ok)
            tl.store(dC_p + t * s_pm, dC, mask=m_ok)
        tl.debug_barrier()

    row = d * BATCH + pid_b
    tl.store(dA_part_ptr + row * M * E + m[:, None] * E + e[None, :], dA_acc,
             mask=m_ok[:, None] & e_ok[None, :])
    tl.store(dD_part_ptr + row * E + e, dD_acc, mask=e_ok)
    if SOFTPLUS:
        tl.store(db_part_ptr + row * E + e, db_acc, mask=e_ok)


# MARK: - Launchers


# Checkpoint spacing of the backward pass (see the module docstring).
_SEG_LEN = 8


def _block_sizes(E: int, M: int, block_e: int | None, num_warps: int | None) -> tuple[int, int, int]:
    """BLOCK_E, BLOCK_M and the warp count.

    Default: 32 channels and one warp per program, among the fastest settings tried on H100 for
    E = 256, M = 16 (16/1, 32/1, 32/2, 64/1, 64/2, 128/2, 128/4; timings moved ±15% between
    machines, `bench_scan.py --sweep` measures them again).
    """
    block_m = triton.next_power_of_2(M)
    if block_e is None:
        block_e = min(32, max(16, triton.next_power_of_2(E)))
    if block_e < 1 or block_e & (block_e - 1):
        raise ValueError(f"block_e must be a power of two, got {block_e}")
    if num_warps is None:
        num_warps = 1
    return block_e, block_m, num_warps


def _check_inputs(u, delta, A, Bm, Cm, D) -> tuple[int, int, int, int]:
    """Validates shapes, dtypes and devices; returns (B, L, E, M) or raises ValueError/TypeError."""
    names = ("u", "delta", "A", "Bm", "Cm", "D")
    tensors = (u, delta, A, Bm, Cm, D)
    for name, x in zip(names, tensors):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"selective_scan_triton: {name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"selective_scan_triton: {name} must be floating point, got {x.dtype}")
    for name, x in zip(("u", "delta", "Bm", "Cm"), (u, delta, Bm, Cm)):
        if x.dtype not in _INPUT_DTYPES:
            raise TypeError(f"selective_scan_triton: {name} must be float32/float16/bfloat16, got {x.dtype}")
    if u.dim() != 3:
        raise ValueError(f"selective_scan_triton: u must be [B, L, E], got shape {tuple(u.shape)}")
    Bsz, L, E = u.shape
    if A.dim() != 2 or A.shape[0] != E:
        raise ValueError(f"selective_scan_triton: A must be [E, M] with E={E}, got shape {tuple(A.shape)}")
    M = A.shape[1]
    if M < 1:
        raise ValueError("selective_scan_triton: state size M (A.shape[1]) must be at least 1")
    expected = {"delta": (Bsz, L, E), "Bm": (Bsz, L, M), "Cm": (Bsz, L, M), "D": (E,)}
    for name, x in zip(("delta", "Bm", "Cm", "D"), (delta, Bm, Cm, D)):
        if tuple(x.shape) != expected[name]:
            raise ValueError(f"selective_scan_triton: {name} must have shape {list(expected[name])} "
                             f"(u is {list(u.shape)}, A is {list(A.shape)}), got {list(x.shape)}")
    devices = {x.device for x in tensors}
    if len(devices) != 1:
        raise ValueError(f"selective_scan_triton: all inputs must be on one device, got {sorted(map(str, devices))}")
    device = u.device
    if device.type != "cuda" and not _INTERPRETED:
        raise RuntimeError(f"selective_scan_triton needs CUDA tensors (got {device}); on CPU set "
                           "TRITON_INTERPRET=1 before importing this module, or use selective_scan_ref")
    return Bsz, L, E, M


def _scan_forward(u, delta, A, Bm, Cm, D, block_e=None, num_warps=None) -> torch.Tensor:
    """Runs the forward kernel on checked inputs (any strides, A/D any float dtype); returns y [B, L, E] float32."""
    y, _ = _launch_forward(u[None], delta[None], A[None], Bm[None], Cm[None], D[None], block_e, num_warps)
    return y[0]


def _seg_len(L: int, seg_len: int | None) -> int:
    """The backward's checkpoint spacing T for sequences of L steps (default `_SEG_LEN`)."""
    return max(1, min(int(seg_len if seg_len is not None else _SEG_LEN), L))


def _ck_shape(u: torch.Tensor, A: torch.Tensor, seg_len: int | None) -> tuple[int, int, int, int, int]:
    """Shape of the forward's checkpoints for u [ND, B, L, E], A [ND, E, M]: [ND, B, NSEG, E, M]."""
    ND, Bsz, L, E = u.shape
    return ND, Bsz, triton.cdiv(L, _seg_len(L, seg_len)) if L else 0, E, A.shape[-1]


def _row_align(block_e: int, rows_e: tuple, rows_m: tuple) -> int:
    """The bytes (16, 8, 4, 2 or 1) that the start of every row the kernels fetch is a multiple
    of (`_fetch`'s ALIGN): the gcd of 16, each tensor's data pointer and its strides in bytes
    (the last one only when it is not 1, as a row's elements are then not contiguous) and, for
    the [.., E] tensors `rows_e`, a channel block's offset (block_e elements); `rows_m` ([.., M]
    rows: Bm, Cm) start at state 0."""
    g = 16
    for x, blocked in [(x, True) for x in rows_e] + [(x, False) for x in rows_m]:
        size = x.element_size()
        strides = [st * size for st in x.stride()[:-1]] + ([x.stride(-1) * size] if x.stride(-1) != 1 else [])
        g = math.gcd(g, x.data_ptr(), *strides, *([block_e * size] if blocked else []))
    return g


def _bias_args(dt_bias, D) -> tuple:
    """The kernels' (bias_ptr, s_bias, x_bias) for dt_bias [ND, E], or placeholders without it."""
    return (D, 0, 0) if dt_bias is None else (dt_bias, dt_bias.stride(1), dt_bias.stride(0))


def _launch_forward(u, delta, A, Bm, Cm, D, block_e=None, num_warps=None, ck=None, seg_len=None,
                    dt_bias=None, z=None, gluon=0, gluon_layout=0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The forward kernel over ND directions in one launch: u, delta [ND, B, L, E]; A [ND, E, M];
    Bm, Cm [ND, B, L, M]; D [ND, E] → (y [ND, B, L, E] float32, None) (direction 1 scanned from
    the end). With `ck` (float32, `_ck_shape`) it also writes the backward's checkpoints there.
    With `dt_bias` [ND, E], `delta` holds dt and the kernel uses softplus(dt + dt_bias). With z
    [B, L, E] (ND = 2): (out, ysum), out = (y_0 + y_1)/2 · SiLU(z) [B, L, E] in z's dtype and
    ysum = y_0 + y_1 [B, L, E] float32, in two launches of one direction. `gluon` N ≥ 1: the same
    algorithm in `scan_gluon._scan_fwd_gluon_kernel`, loads N steps ahead (one warp; CUDA only),
    its tile laid out as `scan_gluon.tile_layout(…, gluon_layout)` says."""
    ND, Bsz, L, E = u.shape
    M = A.shape[-1]
    merge = z is not None
    y = torch.empty(*((Bsz,) if merge else (ND, Bsz)), L, E, device=u.device, dtype=torch.float32)
    out = torch.empty(z.shape, device=u.device, dtype=z.dtype) if merge else y
    result = (out, y) if merge else (y, None)
    if y.numel() == 0:
        return result
    BE, BM, nw = _block_sizes(E, M, block_e, num_warps)
    T = _seg_len(L, seg_len)
    bias, s_bias, x_bias = _bias_args(dt_bias, D)
    y4 = y[None] if merge else y                         # [ND or 1, B, L, E]; direction stride 0 when merging
    zz = z if merge else y4[0]
    strides = (*A.stride()[1:], D.stride(1), s_bias, x_bias,
               *u.stride()[1:], *delta.stride()[1:], *Bm.stride()[1:], *Cm.stride()[1:], *y4.stride()[1:],
               *zz.stride(), *(out if merge else zz).stride(),
               u.stride(0), delta.stride(0), Bm.stride(0), Cm.stride(0), 0 if merge else y.stride(0), A.stride(0),
               D.stride(0))
    for d0, nd, mode in (((0, 1, 1), (1, 1, 2)) if merge else ((0, ND, 0),)):
        args = (u, delta, A, Bm, Cm, D, bias, y, y if ck is None else ck, zz, out)
        flags = {"BLOCK_E": BE, "BLOCK_M": BM, "KEEP_CK": ck is not None, "SOFTPLUS": dt_bias is not None,
                 "MERGE": mode}
        if gluon:
            from . import scan_gluon  # noqa: PLC0415 (Gluon is imported only where it runs)
            scan_gluon._scan_fwd_gluon_kernel[(Bsz, triton.cdiv(E, BE), nd)](
                *args, L, E, M, triton.cdiv(L, T), Bsz, d0, *strides, T=T, **flags,
                **scan_gluon.tile_layout(BE, BM, gluon_layout), DEPTH=int(gluon),
                ROW_ALIGN=_row_align(BE, (u, delta), (Bm, Cm)), num_warps=1)
        else:
            _scan_fwd_kernel[(Bsz, triton.cdiv(E, BE), nd)](
                *args, L, E, M, T, triton.cdiv(L, T), Bsz, d0, *strides, **flags, num_warps=nw)
    return result


def _scan_backward(u, delta, A, Bm, Cm, D, dy, block_e=None, num_warps=None, seg_len=None):
    """Runs the backward kernel on checked inputs; returns float32 (du, ddelta, dA, dBm, dCm, dD).

    seg_len is the checkpoint spacing T (default 8); any value ≥ 1 gives the same result.
    """
    grads = _launch_backward(u[None], delta[None], A[None], Bm[None], Cm[None], D[None], dy[None],
                             block_e, num_warps, seg_len, m_inner=False)
    return tuple(g[0] for g in grads[:6])


def _launch_backward(u, delta, A, Bm, Cm, D, dy, block_e=None, num_warps=None, seg_len=None, ck=None,
                     dt_bias=None, m_inner=True, maxnreg=0, gluon=0, own_dtypes=False, gluon_layout=0,
                     unroll=False):
    """The backward kernel over ND directions in one launch (shapes of `_launch_forward`, dy
    [ND, B, L, E]); returns float32 (du, ddelta, dA, dBm, dCm, dD, ddt_bias), each with the
    leading ND (ddt_bias [ND, E], None without dt_bias); with `own_dtypes` du and ddelta are
    stored in u's and delta's dtypes (rounded in the kernel, as a `.to()` of the float32 values
    would, without float32 copies). `ck`: the forward's checkpoints at the same seg_len (then the
    first pass is skipped). With `dt_bias` (as in the forward), ddelta is the gradient for dt,
    and the kernel sums it for dt_bias's gradient in float32 before ddelta is rounded (so
    ddelta need not stay float32 for that sum: one pass over it fewer). `m_inner` False keeps the
    segment scratch e-innermost, as `--scan triton` had it when issue #17 measured it (its
    baseline: 233 registers against 212, a shared-memory layout conversion per scratch access).
    `maxnreg` > 0 caps the kernel's registers a thread (ptxas .maxnreg): more one-warp programs
    an SM, at the cost of spills where the cap is below what it needs (the interpreter ignores it).
    `gluon` N ≥ 1: the same algorithm in `scan_gluon._scan_bwd_gluon_kernel`, loads N steps
    ahead (needs `ck`; one warp; CUDA only, as Gluon has no interpreter), its tile laid out as
    `scan_gluon.tile_layout(…, gluon_layout)` says; with `unroll` its recomputation of a
    segment runs all seg_len steps as straight code (scan_gluon's UNROLL)."""
    ND, Bsz, L, E = u.shape
    M = A.shape[-1]
    dev = u.device
    f32 = torch.float32
    if Bsz * L * E == 0:
        return (torch.zeros(ND, Bsz, L, E, device=dev, dtype=f32), torch.zeros(ND, Bsz, L, E, device=dev, dtype=f32),
                torch.zeros(ND, E, M, device=dev, dtype=f32), torch.zeros(ND, Bsz, L, M, device=dev, dtype=f32),
                torch.zeros(ND, Bsz, L, M, device=dev, dtype=f32), torch.zeros(ND, E, device=dev, dtype=f32),
                None if dt_bias is None else torch.zeros(ND, E, device=dev, dtype=f32))
    BE, BM, nw = _block_sizes(E, M, block_e, num_warps)
    n_eblk = triton.cdiv(E, BE)
    T = _seg_len(L, seg_len)
    nseg = triton.cdiv(L, T)
    have_ck = ck is not None
    if have_ck and tuple(ck.shape) != _ck_shape(u, A, seg_len):
        raise ValueError(f"checkpoints of shape {list(ck.shape)} for {list(_ck_shape(u, A, seg_len))}")
    if gluon and not have_ck:
        raise ValueError("the Gluon backward reads the forward's checkpoints: pass ck (tiles +ck)")
    du = torch.empty(ND, Bsz, L, E, device=dev, dtype=u.dtype if own_dtypes else f32)  # [ND, B, L, E]
    ddelta = torch.empty(ND, Bsz, L, E, device=dev, dtype=delta.dtype if own_dtypes else f32)  # [ND, B, L, E]
    dB_part = torch.empty(ND, n_eblk, Bsz, L, M, device=dev, dtype=f32)  # [ND, n_eblk, B, L, M]
    dC_part = torch.empty(ND, n_eblk, Bsz, L, M, device=dev, dtype=f32)  # [ND, n_eblk, B, L, M]
    dA_part = torch.empty(ND, Bsz, M, E, device=dev, dtype=f32)  # [ND, B, M, E]
    dD_part = torch.empty(ND, Bsz, E, device=dev, dtype=f32)  # [ND, B, E]
    db_part = None if dt_bias is None else torch.empty(ND, Bsz, E, device=dev, dtype=f32)  # [ND, B, E]
    db_arg = dD_part if db_part is None else db_part  # the kernels write it only with SOFTPLUS
    bias, s_bias, x_bias = _bias_args(dt_bias, D)
    strides = (*A.stride()[1:], D.stride(1), s_bias, x_bias,
               *u.stride()[1:], *delta.stride()[1:], *Bm.stride()[1:], *Cm.stride()[1:], *dy.stride()[1:],
               u.stride(0), delta.stride(0), Bm.stride(0), Cm.stride(0), dy.stride(0), A.stride(0), D.stride(0))
    if gluon:
        from . import scan_gluon  # noqa: PLC0415 (Gluon is imported only where it runs)
        scan_gluon._scan_bwd_gluon_kernel[(Bsz, n_eblk, ND)](
            u, delta, A, Bm, Cm, D, bias, dy, ck, du, ddelta, dB_part, dC_part, dA_part, dD_part, db_arg,
            L, E, M, nseg, Bsz, *strides,
            T=T, BLOCK_E=BE, BLOCK_M=BM, SOFTPLUS=dt_bias is not None, **scan_gluon.tile_layout(BE, BM, gluon_layout),
            DEPTH=int(gluon), ROW_ALIGN=_row_align(BE, (u, delta, dy), (Bm, Cm)), UNROLL=bool(unroll), num_warps=1,
            **({"maxnreg": maxnreg} if maxnreg else {}),
        )
    else:
        ws = torch.empty(ND * Bsz * n_eblk * ((0 if have_ck else nseg) + T) * BM * BE, device=dev, dtype=f32)  # scratch
        _scan_bwd_kernel[(Bsz, n_eblk, ND)](
            u, delta, A, Bm, Cm, D, bias, dy, ws, ws if ck is None else ck,
            du, ddelta, dB_part, dC_part, dA_part, dD_part, db_arg,
            L, E, M, T, nseg, Bsz, *strides,
            BLOCK_E=BE, BLOCK_M=BM, HAVE_CK=have_ck, SOFTPLUS=dt_bias is not None, M_INNER=m_inner, num_warps=nw,
            **({"maxnreg": maxnreg} if maxnreg else {}),
        )
    return _reduce_parts(du, ddelta, dB_part, dC_part, dA_part, dD_part, db_part)


def _reduce_parts(du, ddelta, dB_part, dC_part, dA_part, dD_part, db_part):
    """The backward's outputs from its per-program partial sums (shapes of `_launch_backward`;
    db_part None without dt_bias)."""
    dA = dA_part.sum(1).transpose(1, 2).contiguous()  # [ND, E, M]
    db = None if db_part is None else db_part.sum(1)  # [ND, E]
    return du, ddelta, dA, dB_part.sum(1), dC_part.sum(1), dD_part.sum(1), db


# MARK: - Autograd


class SelectiveScanTriton(torch.autograd.Function):
    """The selective scan with Triton kernels for forward and backward (see the module docstring).

    Saves only the inputs; the backward pass recomputes the states. Gradients come back in each
    input's dtype.
    """

    @staticmethod
    def forward(ctx, u, delta, A, Bm, Cm, D):
        _check_inputs(u, delta, A, Bm, Cm, D)
        y = _scan_forward(u.detach(), delta.detach(), A, Bm.detach(), Cm.detach(), D)
        ctx.save_for_backward(u, delta, A, Bm, Cm, D)
        return y

    @staticmethod
    def backward(ctx, dy):
        u, delta, A, Bm, Cm, D = ctx.saved_tensors
        grads = _scan_backward(u, delta, A, Bm, Cm, D, dy)
        inputs = (u, delta, A, Bm, Cm, D)
        return tuple(g.to(x.dtype) if need else None
                     for g, x, need in zip(grads, inputs, ctx.needs_input_grad))


def selective_scan_triton(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor,
                          Bm: torch.Tensor, Cm: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """The selective scan y [B, L, E] (float32) of u, delta [B, L, E], A [E, M], Bm, Cm [B, L, M], D [E].

    Differentiable in all six inputs. Needs CUDA tensors, or CPU tensors when this module was
    imported with TRITON_INTERPRET=1 (slow; for tests). Any strides are accepted (coalesced when
    E is the innermost dimension). L = 0 or B = 0 give an empty y. Bad shapes, dtypes or mixed
    devices raise ValueError/TypeError naming the input; CPU tensors without the interpreter raise RuntimeError.
    """
    return SelectiveScanTriton.apply(u, delta, A, Bm, Cm, D)


# MARK: - Both directions in one launch (the fused path's "split" variant)


# The backward's launch (bwd_block_e, bwd_num_warps, seg_len, bwd_maxnreg) travels through the
# forward op, whose autograd formula launches the backward op with it. Outputs: y [2, B, L, E]
# float32, or with a non-empty z [B, L, E] the gated merge out = (y_0 + y_1)/2 · SiLU(z)
# [B, L, E] (z's dtype); ysum = y_0 + y_1 [B, L, E] float32 with z (else empty), kept for dz; with keep_ck the
# backward's checkpoints ([2, B, NSEG, E, M] float32, or u's dtype with ck_low; else empty). A non-empty dt_bias [2, E]
# makes `delta` the raw dt (softplus(dt + dt_bias) in the kernels).
@torch.library.custom_op("mambasep::scan2_fwd", mutates_args=())
def _scan2_fwd_op(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor, Cm: torch.Tensor,
                  D: torch.Tensor, dt_bias: torch.Tensor, z: torch.Tensor, block_e: int, num_warps: int,
                  bwd_block_e: int, bwd_num_warps: int, seg_len: int, keep_ck: bool, ck_low: bool,
                  bwd_maxnreg: int, gluon: int, gluon_layout: int, unroll: bool
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ck = _scan2_ck(u, A, seg_len, keep_ck, ck_low)
    y, ysum = _launch_forward(u, delta, A, Bm, Cm, D, block_e, num_warps, ck if keep_ck else None, seg_len,
                              dt_bias if dt_bias.numel() else None, z if z.numel() else None, gluon, gluon_layout)
    return y, ysum if ysum is not None else u.new_empty(0, dtype=torch.float32), ck


def _scan2_ck(u: torch.Tensor, A: torch.Tensor, seg_len: int | None, keep_ck: bool, low: bool = False) -> torch.Tensor:
    """The forward's checkpoints for the backward (`_ck_shape`; empty without keep_ck): float32,
    or with `low` in u's dtype (half the memory; the states are rounded where they are kept)."""
    shape = _ck_shape(u, A, seg_len) if keep_ck else (0,)
    return u.new_empty(shape, dtype=u.dtype if low else torch.float32)


@_scan2_fwd_op.register_fake
def _(u, delta, A, Bm, Cm, D, dt_bias, z, block_e, num_warps, bwd_block_e, bwd_num_warps, seg_len, keep_ck,
      ck_low, bwd_maxnreg, gluon, gluon_layout, unroll):
    f32 = torch.float32
    if z.numel():
        y, ysum = z.new_empty(z.shape), u.new_empty(z.shape, dtype=f32)
    else:
        y, ysum = u.new_empty(u.shape, dtype=f32), u.new_empty(0, dtype=f32)
    return y, ysum, _scan2_ck(u, A, seg_len, keep_ck, ck_low)


@torch.library.custom_op("mambasep::scan2_bwd", mutates_args=())
def _scan2_bwd_op(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor, Cm: torch.Tensor,
                  D: torch.Tensor, dt_bias: torch.Tensor, dy: torch.Tensor, ck: torch.Tensor, bwd_block_e: int,
                  bwd_num_warps: int, seg_len: int, bwd_maxnreg: int, gluon: int, gluon_layout: int, unroll: bool
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                             torch.Tensor]:
    """dy: [2, B, L, E], or [B, L, E] for both directions alike (the gated merge's)."""
    bias = dt_bias if dt_bias.numel() else None
    dy = dy if dy.dim() == 4 else dy[None].expand(2, *dy.shape)           # direction stride 0
    grads = _launch_backward(u, delta, A, Bm, Cm, D, dy, bwd_block_e, bwd_num_warps, seg_len,
                             ck if ck.numel() else None, bias, maxnreg=bwd_maxnreg, gluon=gluon, own_dtypes=True,
                             gluon_layout=gluon_layout, unroll=unroll)
    dbias = grads[6] if bias is not None else dt_bias.new_zeros(dt_bias.shape)  # [2, E]
    return tuple(g.to(x.dtype) for g, x in zip((*grads[:6], dbias), (u, delta, A, Bm, Cm, D, dt_bias)))


@_scan2_bwd_op.register_fake
def _(u, delta, A, Bm, Cm, D, dt_bias, dy, ck, bwd_block_e, bwd_num_warps, seg_len, bwd_maxnreg, gluon, gluon_layout,
      unroll):
    return tuple(x.new_empty(x.shape) for x in (u, delta, A, Bm, Cm, D, dt_bias))


def _scan2_setup_context(ctx, inputs, output):
    (u, delta, A, Bm, Cm, D, dt_bias, z, block_e, num_warps, bwd_block_e, bwd_num_warps, seg_len, keep_ck,
     ck_low, bwd_maxnreg, gluon, gluon_layout, unroll) = inputs
    ctx.save_for_backward(u, delta, A, Bm, Cm, D, dt_bias, z, output[1], output[2])
    ctx.launch = (bwd_block_e, bwd_num_warps, seg_len, bwd_maxnreg, gluon, gluon_layout, unroll)


def _scan2_backward(ctx, dout, _dysum, _dck):
    u, delta, A, Bm, Cm, D, dt_bias, z, ysum, ck = ctx.saved_tensors
    dz = None
    if z.numel():                 # out = ysum/2 · SiLU(z): the same dy reaches both directions
        zf = z.float()
        sig = torch.sigmoid(zf)
        half = dout.float() * 0.5
        dz = (half * ysum * sig * (1 + zf * (1 - sig))).to(z.dtype)                # [B, L, E]
        dout = half * zf * sig                                                    # [B, L, E]
    grads = _scan2_bwd_op(u, delta, A, Bm, Cm, D, dt_bias, dout, ck, *ctx.launch)
    return (*grads, dz, *[None] * 11)       # the launch arguments have no gradient


_scan2_fwd_op.register_autograd(_scan2_backward, setup_context=_scan2_setup_context)


def selective_scan_bidir(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor,
                         Cm: torch.Tensor, D: torch.Tensor, block_e: int = 32, num_warps: int = 1,
                         bwd_num_warps: int = 1, bwd_block_e: int | None = None,
                         seg_len: int | None = None, keep_ck: bool = False,
                         dt_bias: torch.Tensor | None = None, z: torch.Tensor | None = None,
                         bwd_maxnreg: int = 0, gluon: int = 0, gluon_layout: int = 0,
                         ck_low: bool = False, unroll: bool = False) -> torch.Tensor:
    """Both directions of BiMamba's scan in one launch per pass: y [2, B, L, E] float32.

    u, delta [2, B, L, E]; A [2, E, M]; Bm, Cm [2, B, L, M]; D [2, E], all in the original time
    order. y[0] is the scan of direction 0 over t = 0..L-1; y[1] is direction 1's scan over
    t = L-1..0 (h_t depends on h_{t+1}), stored in the original time order, i.e.
    flip(scan(flip(u[1]), …)) without a flipped copy. The same kernels as `selective_scan_triton`,
    with a program axis for the direction. Registered as the custom ops `mambasep::scan2_fwd` /
    `_bwd` (with fake implementations), so `torch.compile` keeps them in its graph. The
    backward launches with its own BLOCK_E (`bwd_block_e`, default `block_e`), warps and
    checkpoint spacing (`seg_len`, default 8); with `keep_ck` the forward keeps the checkpoints
    for it (float32 [2, B, ⌈L/seg_len⌉, E, M], held until the backward) and the backward skips
    its first pass. Any setting gives the same result. With `dt_bias` [2, E], `delta` is the raw
    dt and the kernels use softplus(dt + dt_bias) (its gradient flows to dt and dt_bias). With
    `z` [B, L, E] it returns BiMamba's gated merge (y_0 + y_1)/2 · SiLU(z) [B, L, E] in z's
    dtype instead of y, formed in the kernels (two launches of one direction each).
    `bwd_maxnreg` > 0 caps the backward kernel's registers a thread (same result).
    `gluon` N ≥ 1 runs both passes as `scan_gluon`'s kernels, their loads N (1 or 2) steps
    ahead (needs `keep_ck`; CUDA only); `gluon_layout` 1 lays their tile out with a channel's
    states in one thread (`scan_gluon.tile_layout`; BLOCK_E 32). `ck_low` keeps the checkpoints
    in u's dtype (needs `keep_ck`): half their memory in bf16 training, the backward then
    recomputing each segment from states rounded to it (the same result for float32 inputs).
    `unroll` (with gluon) has the backward recompute each segment in straight code, all seg_len
    steps unrolled (no loop-carried copies of the rows fetched ahead; the last segment's
    steps past L recompute unread states from clamped rows): the same result.
    """
    if u.dim() != 4 or u.shape[0] != 2:
        raise ValueError(f"selective_scan_bidir: u must be [2, B, L, E], got shape {list(u.shape)}")
    for name, x in (("delta", delta), ("A", A), ("Bm", Bm), ("Cm", Cm), ("D", D)):
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] != 2:
            raise ValueError(f"selective_scan_bidir: {name} must have a leading direction axis of 2")
    _check_inputs(u[0], delta[0], A[0], Bm[0], Cm[0], D[0])
    if dt_bias is not None and tuple(dt_bias.shape) != (2, u.shape[-1]):
        raise ValueError(f"selective_scan_bidir: dt_bias must be [2, E] = [2, {u.shape[-1]}], "
                         f"got {list(dt_bias.shape)}")
    bias = dt_bias if dt_bias is not None else D.new_empty(0)
    if z is not None and tuple(z.shape) != tuple(u.shape[1:]):
        raise ValueError(f"selective_scan_bidir: z must be [B, L, E] = {list(u.shape[1:])}, got {list(z.shape)}")
    zz = z if z is not None else u.new_empty(0)
    bwd_block_e = block_e if bwd_block_e is None else bwd_block_e
    seg_len = _SEG_LEN if seg_len is None else seg_len
    if seg_len < 1:
        raise ValueError(f"selective_scan_bidir: seg_len must be at least 1, got {seg_len}")
    if bwd_maxnreg < 0:
        raise ValueError(f"selective_scan_bidir: bwd_maxnreg must be ≥ 0, got {bwd_maxnreg}")
    if gluon not in (0, 1, 2):
        raise ValueError(f"selective_scan_bidir: gluon must be 0 (off), 1 or 2 (steps loaded ahead), got {gluon}")
    if gluon and not keep_ck:
        raise ValueError("selective_scan_bidir: gluon reads the forward's checkpoints: set keep_ck too")
    if ck_low and not keep_ck:
        raise ValueError("selective_scan_bidir: ck_low is the dtype of the forward's checkpoints: set keep_ck too")
    if gluon_layout not in (0, 1) or (gluon_layout and not gluon):
        raise ValueError(f"selective_scan_bidir: gluon_layout must be 0, or 1 with gluon, got {gluon_layout}")
    if unroll and not gluon:
        raise ValueError("selective_scan_bidir: unroll is the Gluon backward's (set gluon too)")
    if gluon and not u.is_cuda:
        raise RuntimeError("selective_scan_bidir: the Gluon kernels need CUDA tensors (Gluon has no CPU "
                           "interpreter); leave gluon off to run scan_triton's kernels")
    return _scan2_fwd_op(u, delta, A, Bm, Cm, D, bias, zz, block_e, num_warps, bwd_block_e, bwd_num_warps,
                         seg_len, keep_ck, bool(ck_low), bwd_maxnreg, int(gluon), int(gluon_layout), bool(unroll))[0]
