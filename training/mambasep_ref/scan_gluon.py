"""The split variant's scan kernels written in Gluon (Triton's explicit-layout dialect): issue #17.

Glossary (docs/MODEL.md): B batch of sequences (B' of the BiMamba layer), L steps, E channels,
M states, T checkpoint spacing (a segment), ND directions (2), BE / BM the tile's channels and
states.

The same algorithm as `scan_triton._scan_fwd_kernel` and `_scan_bwd_kernel` with `HAVE_CK` (the
forward keeps the state before every T-th step; the backward walks the segments from last to
first, recomputing a segment's states from its checkpoint (2a), then walking it backwards (2b)).
The arithmetic of a step and the pointer set-up are scan_triton's own @triton.jit helpers
(`_recur`, `_fwd_step`, `_adjoint_step`, `_program_inputs`, …), which Gluon compiles in the
layouts it is handed. What Gluon changes is where the values live, which plain Triton does not
let a kernel say:

- every [BE] vector (u, dt, dy, du, ddt) is loaded and stored in the slice of the state tile's
  layout that the tile uses, and every [BM] vector (Bm, Cm, dBm, dCm) likewise, so no value
  crosses lanes through shared memory between its load and its use (plain Triton loads a [BE]
  vector one element a lane and converts it: 7 barriers a step in the walk);
- the segment's states h_{t-1} sit in shared memory in the tile's own layout (each thread reads
  back what it wrote), not in a global scratch that goes through L2 (2 KB a step a program);
- with softplus in the kernels (SOFTPLUS) on the default tile, which holds each channel's value
  on its 4 state lanes, dt, softplus(dt + dt_bias), its sigmoid and ddt live one channel a lane
  (`_lane_layout`, COMPACT) and cross to the tile's slice through shared memory: softplus runs
  once a channel, not 4-fold (training/bench/NOTES.md, "softplus once a channel");
- every row is fetched with its start's alignment (ROW_ALIGN, `scan_triton._row_align`), so the
  Bm and Cm rows load as vectors.

The tile [BM, BE] is BlockedLayout([4, BE/8], [4, 8], [1, 1], [0, 1]) for M = 16 (`tile_layout`):
a thread holds 4 states of BE/8 consecutive channels, so the [BE] loads are vectors. One warp a
program. Gluon has no CPU interpreter: the kernels' parity tests (against the float64 loops)
run on a GPU only; here, tests/test_kernel_ir.py compiles them for sm_90a, and the shared
helpers run under TRITON_INTERPRET=1 inside the Triton kernels.
"""

from __future__ import annotations

from triton.experimental import gluon
from triton.experimental.gluon import language as gl

from .scan_triton import (_adjoint_step, _ck_tile, _delta_of, _fetch, _fwd_output, _fwd_outputs, _fwd_step, _merge_rows,
                          _origin, _program_inputs, _recur, _sigmoid, _sum_e)


@gluon.jit
def _recompute_rows(u_p, d_p, B_p, t, s_ul, s_dl, s_Bl, e_ok, d_ok, m_ok, DEPTH: gl.constexpr,
                    ALIGN: gl.constexpr):
    """What the backward's recomputation (2a) reads of step t: u, dt [BE] and Bm [BM] (`_fetch`;
    dt in its pointers' layout, `_lane_layout`)."""
    return (_fetch(u_p, t, s_ul, e_ok, DEPTH, ALIGN), _fetch(d_p, t, s_dl, d_ok, DEPTH, ALIGN),
            _fetch(B_p, t, s_Bl, m_ok, DEPTH, ALIGN))


@gluon.jit
def _forward_rows(u_p, d_p, B_p, C_p, t, s_ul, s_dl, s_Bl, s_Cl, e_ok, d_ok, m_ok, DEPTH: gl.constexpr,
                  ALIGN: gl.constexpr):
    """What the forward reads of step t: u, dt [BE] and Bm, Cm [BM] (`_fetch`)."""
    u, dt, Bt = _recompute_rows(u_p, d_p, B_p, t, s_ul, s_dl, s_Bl, e_ok, d_ok, m_ok, DEPTH, ALIGN)
    return u, dt, Bt, _fetch(C_p, t, s_Cl, m_ok, DEPTH, ALIGN)


@gluon.jit
def _walk_rows(u_p, g_p, d_p, B_p, C_p, t, s_ul, s_gl, s_dl, s_Bl, s_Cl, e_ok, d_ok, m_ok, DEPTH: gl.constexpr,
               ALIGN: gl.constexpr):
    """What the backward's walk (2b) reads of step t: u, dy, dt [BE] and Bm, Cm [BM] (`_fetch`)."""
    u, dt, Bt, Ct = _forward_rows(u_p, d_p, B_p, C_p, t, s_ul, s_dl, s_Bl, s_Cl, e_ok, d_ok, m_ok, DEPTH, ALIGN)
    return u, _fetch(g_p, t, s_gl, e_ok, DEPTH, ALIGN), dt, Bt, Ct


@gluon.jit
def _recompute_step(seg, k, h, rows1, rows2, u_p, d_p, B_p, t_next, s_ul, s_dl, s_Bl, e_ok, d_ok, m_ok, A2, bias,
                    VE: gl.constexpr, SOFTPLUS: gl.constexpr, COMPACT: gl.constexpr, DEPTH: gl.constexpr,
                    ALIGN: gl.constexpr):
    """Step k of a segment's recomputation (2a): parks h (the state before it) in slot k of
    `seg`, advances h with the step's rows (rows1: u, dt, Bm), and fetches the rows of step
    t_next (`_recompute_rows`; with DEPTH 2 rows2 moves up and t_next is two steps on).
    Returns (h, rows1, rows2)."""
    u1, d1, B1 = rows1
    u, Bt = u1.to(gl.float32), B1.to(gl.float32)
    dt, _ = _delta_in(d1, d_ok, bias, VE, SOFTPLUS, COMPACT)
    if DEPTH == 2:
        rows1 = rows2
        rows2 = _recompute_rows(u_p, d_p, B_p, t_next, s_ul, s_dl, s_Bl, e_ok, d_ok, m_ok, DEPTH, ALIGN)
    else:
        rows1 = _recompute_rows(u_p, d_p, B_p, t_next, s_ul, s_dl, s_Bl, e_ok, d_ok, m_ok, DEPTH, ALIGN)
    seg.index(k).store(h)  # h_{t-1}
    return _recur(h, A2, u, dt, Bt), rows1, rows2  # [BM, BE]


@gluon.jit
def _lane_layout(x, SPT_D: gl.constexpr, COMPACT: gl.constexpr):
    """x [BE] (dt's or the gate's row pointers, dt_bias, a mask, a row) one channel a lane with
    COMPACT (softplus or the gate in the kernels, on a tile that repeats each channel over its 4
    state lanes), so that softplus, sigmoid and SiLU run once a channel, their results crossing
    to and from the tile's slice through shared memory (`gl.convert_layout`: a store, a barrier
    of the one warp, a load); else as given."""
    if COMPACT:
        x = gl.convert_layout(x, gl.BlockedLayout([SPT_D], [32], [1], [0]))
    return x


@gluon.jit
def _delta_in(x, d_ok, bias, VE: gl.constexpr, SOFTPLUS: gl.constexpr, COMPACT: gl.constexpr):
    """(delta in the tile's slice VE, pre = dt + bias in dt's layout) of a fetched dt row
    (`_delta_of` where dt lives, `_lane_layout`)."""
    delta, pre = _delta_of(x, d_ok, bias, SOFTPLUS)
    if COMPACT:
        delta = gl.convert_layout(delta, VE)
    return delta, pre


@gluon.jit
def _lane_swap(x, MASK: gl.constexpr):
    """x of the lane whose index differs from this one's in the bits of MASK (a butterfly
    shuffle; every tensor dimension of 32 must be the lanes)."""
    return gl.inline_asm_elementwise(f"shfl.sync.bfly.b32 $0, $1, {MASK}, 0x1f, 0xffffffff;", "=r,r", [x],
                                     dtype=gl.float32, is_pure=True, pack=1)


@gluon.jit
def _sum_e_scatter(x):
    """Σ over the channels of a [BM, 32] tile whose states sit in each thread and channels on
    the 32 lanes (tile_layout's states-in-thread layout): a reduce-scatter, [32] with lane l
    holding row l // (32 / BM) (each row on 32 / BM lanes). Each halving keeps the half of the
    rows this lane's bit selects and adds the partner lane's sums of them (BM/2 + BM/4 + …
    shuffles), then butterflies finish the rows' sums over the lanes left."""
    R: gl.constexpr = x.shape[0]
    for lvl in gl.static_range(0, 5):  # lanes 16, 8, 4, 2, 1 apart
        if (R >> lvl) > 1:
            y = gl.permute(gl.reshape(x, [2, (R >> lvl) // 2, 32]), (1, 2, 0))
            lo, hi = gl.split(y)  # rows of this level's lower and upper half
            lane = gl.arange(0, 32, layout=gl.SliceLayout(0, lo.type.layout))
            up = ((lane // (16 >> lvl)) % 2)[None, :] == 1
            x = gl.where(up, hi, lo) + _lane_swap(gl.where(up, lo, hi), 16 >> lvl)
        else:
            x = x + _lane_swap(x, 16 >> lvl)
    return gl.reshape(x, [32])


@gluon.jit
def _store_e_sum(p, m, m_ok, v, M, BLOCK_M: gl.constexpr, IN_THREAD: gl.constexpr):
    """Stores a sum over the channels: v [BM] at p + m (tile across lanes), or `_sum_e_scatter`'s
    [32] (states in thread) at p + its row, from the first lane of each row."""
    if IN_THREAD:
        lane = gl.arange(0, 32, layout=v.type.layout)
        row = lane // (32 // BLOCK_M)
        gl.store(p + row, v, mask=(lane % (32 // BLOCK_M) == 0) & (row < M))
    else:
        gl.store(p + m, v, mask=m_ok)


@gluon.jit
def _tile(E, M, d0, BLOCK_E: gl.constexpr, BLOCK_M: gl.constexpr, VE: gl.constexpr, VM: gl.constexpr):
    """This program's sequence, channel block and direction (program axis 2, plus d0), its
    channels e [BE] and states m [BM] in the tile's slices VE and VM, and their masks."""
    pid_b = gl.program_id(0).to(gl.int64)
    pid_e = gl.program_id(1)
    d = gl.program_id(2) + d0
    e = pid_e * BLOCK_E + gl.arange(0, BLOCK_E, layout=VE)  # [BE]
    m = gl.arange(0, BLOCK_M, layout=VM)  # [BM]
    e_ok = e < E
    m_ok = m < M
    return pid_b, pid_e, d, e, m, e_ok, m_ok, m_ok[:, None] & e_ok[None, :]


@gluon.jit
def _scan_fwd_gluon_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, y_ptr, ck_ptr, z_ptr, o_ptr,
    L, E, M, NSEG, BATCH, d0,
    s_ae, s_am, s_dd, s_bias, x_bias,
    s_ub, s_ul, s_ue,
    s_db, s_dl, s_de,
    s_Bb, s_Bl, s_Bm,
    s_Cb, s_Cl, s_Cm,
    s_yb, s_yl, s_ye,
    s_zb, s_zl, s_ze,
    s_ob, s_ol, s_oe,
    x_u, x_d, x_B, x_C, x_y, x_A, x_D,
    T: gl.constexpr, BLOCK_E: gl.constexpr, BLOCK_M: gl.constexpr, KEEP_CK: gl.constexpr,
    SOFTPLUS: gl.constexpr, MERGE: gl.constexpr,
    SPT_M: gl.constexpr, SPT_E: gl.constexpr, TPW_M: gl.constexpr, TPW_E: gl.constexpr, DEPTH: gl.constexpr,
    ROW_ALIGN: gl.constexpr, SPT_D: gl.constexpr,
):
    """y for one sequence, one direction and BLOCK_E channels: `scan_triton._scan_fwd_kernel`
    (arguments, MERGE modes, checkpoints every T steps when KEEP_CK) with every vector in the
    state tile's slices, as `_scan_bwd_gluon_kernel`. Each step's inputs are loaded DEPTH steps
    ahead (1 or 2, `_fetch`); softplus and the gate one channel a lane where the tile repeats
    channels (`_lane_layout`)."""
    TILE: gl.constexpr = gl.BlockedLayout([SPT_M, SPT_E], [TPW_M, TPW_E], [1, 1], [0, 1])  # [BM, BE]
    VE: gl.constexpr = gl.SliceLayout(0, TILE)  # [BE]
    VM: gl.constexpr = gl.SliceLayout(1, TILE)  # [BM]

    pid_b, pid_e, d, e, m, e_ok, m_ok, tile_ok = _tile(E, M, d0, BLOCK_E, BLOCK_M, VE, VM)
    A2, Dv, bias, u_p, s_ul, d_p, s_dl, B_p, s_Bl, C_p, s_Cl = _program_inputs(
        u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, d, pid_b, e, m, e_ok, m_ok, L,
        s_ae, s_am, s_dd, s_bias, x_bias, s_ub, s_ul, s_ue, s_db, s_dl, s_de, s_Bb, s_Bl, s_Bm,
        s_Cb, s_Cl, s_Cm, x_u, x_d, x_B, x_C, x_A, x_D, SOFTPLUS)
    # softplus once a channel where the tile repeats each channel over its state lanes
    COMPACT: gl.constexpr = SOFTPLUS and TPW_M > 1
    d_p, d_ok = _lane_layout(d_p, SPT_D, COMPACT), _lane_layout(e_ok, SPT_D, COMPACT)  # where softplus runs
    bias = _lane_layout(bias, SPT_D, COMPACT)
    y_p, s_yl, z_p, s_zl, o_p, s_ol = _fwd_outputs(y_ptr, z_ptr, o_ptr, d, pid_b, e, L, x_y, s_yb, s_yl, s_ye,
                                                   s_zb, s_zl, s_ze, s_ob, s_ol, s_oe, MERGE)
    # the merging launch's gate one channel a lane (the tile repeats each channel over its state lanes)
    GATE_COMPACT: gl.constexpr = MERGE == 2 and TPW_M > 1
    y_p, z_p = _lane_layout(y_p, SPT_D, GATE_COMPACT), _lane_layout(z_p, SPT_D, GATE_COMPACT)
    o_p, o_ok = _lane_layout(o_p, SPT_D, GATE_COMPACT), _lane_layout(e_ok, SPT_D, GATE_COMPACT)
    ck_p, ck_mask = _ck_tile(ck_ptr, d, pid_b, BATCH, NSEG, M, E, m, e)  # [BM, BE]

    h = gl.zeros([BLOCK_M, BLOCK_E], gl.float32, TILE)  # [BM, BE]
    # rows of the next step (1) and, with DEPTH 2, the one after (2); the last steps fetch the
    # last row again (unused)
    u1, d1, B1, C1 = _forward_rows(u_p, d_p, B_p, C_p, 0, s_ul, s_dl, s_Bl, s_Cl, e_ok, d_ok, m_ok, DEPTH, ROW_ALIGN)
    u2, d2, B2, C2 = _forward_rows(u_p, d_p, B_p, C_p, gl.minimum(1, L - 1), s_ul, s_dl, s_Bl, s_Cl, e_ok, d_ok, m_ok,
                                   DEPTH, ROW_ALIGN)
    if MERGE == 2:
        y0_n, z_n = _merge_rows(y_p, s_yl, z_p, s_zl, 0, o_ok)  # [BE] step 0, one channel a lane
    for t in range(0, L):
        u, Bt, Ct = u1.to(gl.float32), B1.to(gl.float32), C1.to(gl.float32)
        dt, _ = _delta_in(d1, d_ok, bias, VE, SOFTPLUS, COMPACT)
        if DEPTH == 2:
            u1, d1, B1, C1 = u2, d2, B2, C2
            u2, d2, B2, C2 = _forward_rows(u_p, d_p, B_p, C_p, gl.minimum(t + 2, L - 1), s_ul, s_dl, s_Bl, s_Cl,
                                           e_ok, d_ok, m_ok, DEPTH, ROW_ALIGN)
        else:
            u1, d1, B1, C1 = _forward_rows(u_p, d_p, B_p, C_p, gl.minimum(t + 1, L - 1), s_ul, s_dl, s_Bl, s_Cl,
                                           e_ok, d_ok, m_ok, DEPTH, ROW_ALIGN)
        if MERGE == 2:  # y_0 and z a step ahead (`_merge_rows`), issued before the step's work
            y0, zt = y0_n, z_n
            y0_n, z_n = _merge_rows(y_p, s_yl, z_p, s_zl, gl.minimum(t + 1, L - 1), o_ok)
        h, y = _fwd_step(h, t, A2, u, dt, Bt, Ct, Dv, ck_p, ck_mask, E, M, T, KEEP_CK)  # [BM, BE], [BE]
        y = _lane_layout(y, SPT_D, GATE_COMPACT)
        if MERGE != 2:
            y0, zt = y, y  # unused
        _fwd_output(y, t, y_p, s_yl, o_p, s_ol, o_ok, y0, zt, MERGE)


@gluon.jit
def _scan_bwd_gluon_kernel(
    u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, dy_ptr, ck_ptr,
    du_ptr, ddelta_ptr, dB_part_ptr, dC_part_ptr, dA_part_ptr, dD_part_ptr, db_part_ptr,
    L, E, M, NSEG, BATCH,
    s_ae, s_am, s_dd, s_bias, x_bias,
    s_ub, s_ul, s_ue,
    s_db, s_dl, s_de,
    s_Bb, s_Bl, s_Bm,
    s_Cb, s_Cl, s_Cm,
    s_gb, s_gl, s_ge,
    x_u, x_d, x_B, x_C, x_g, x_A, x_D,
    T: gl.constexpr, BLOCK_E: gl.constexpr, BLOCK_M: gl.constexpr, SOFTPLUS: gl.constexpr,
    SPT_M: gl.constexpr, SPT_E: gl.constexpr, TPW_M: gl.constexpr, TPW_E: gl.constexpr, DEPTH: gl.constexpr,
    ROW_ALIGN: gl.constexpr, SPT_D: gl.constexpr, UNROLL: gl.constexpr = False,
):
    """All gradients for one sequence, one direction and BLOCK_E channels (arguments and outputs
    as `scan_triton._scan_bwd_kernel` with HAVE_CK and M_INNER; T is a constexpr here, as it
    sizes the shared-memory segment). UNROLL: the recomputation (2a) runs all T steps of a
    segment as straight code, its rows clamped to the segment (the last segment's extra steps
    park states in slots the walk never reads), so the rows fetched ahead land where they are
    used instead of being copied into loop-carried registers, a copy that waits for the load
    (training/bench/NOTES.md, the eighth session). The tile's layout (`tile_layout`): SPT_M ×
    SPT_E values a thread, TPW_M × TPW_E lanes. Loads run DEPTH steps ahead (`_fetch`); with DEPTH 2 the walk's
    first row is also fetched before the segment's recomputation, so it arrives meanwhile."""
    TILE: gl.constexpr = gl.BlockedLayout([SPT_M, SPT_E], [TPW_M, TPW_E], [1, 1], [0, 1])  # [BM, BE]
    VE: gl.constexpr = gl.SliceLayout(0, TILE)  # [BE], as the tile's columns
    VM: gl.constexpr = gl.SliceLayout(1, TILE)  # [BM], as the tile's rows
    SEG: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0, 1])  # slots [BM, BE], m fastest
    IN_THREAD: gl.constexpr = TPW_M == 1  # a channel's states in one thread: sums over E scatter

    pid_b, pid_e, d, e, m, e_ok, m_ok, tile_ok = _tile(E, M, 0, BLOCK_E, BLOCK_M, VE, VM)
    n_eblk = gl.num_programs(1)
    A2, Dv, bias, u_p, s_ul, d_p, s_dl, B_p, s_Bl, C_p, s_Cl = _program_inputs(
        u_ptr, delta_ptr, A_ptr, B_ptr, C_ptr, D_ptr, bias_ptr, d, pid_b, e, m, e_ok, m_ok, L,
        s_ae, s_am, s_dd, s_bias, x_bias, s_ub, s_ul, s_ue, s_db, s_dl, s_de, s_Bb, s_Bl, s_Bm,
        s_Cb, s_Cl, s_Cm, x_u, x_d, x_B, x_C, x_A, x_D, SOFTPLUS)
    o, s_gl = _origin(d, x_g, pid_b, s_gb, s_gl, L)
    g_p = dy_ptr + o + e * s_ge
    o_off, s_o = _origin(d, BATCH * L * E, pid_b, L * E, E, L)
    du_p = du_ptr + o_off + e  # [BE]
    dd_p = ddelta_ptr + o_off + e
    # softplus once a channel where the tile repeats each channel over its state lanes
    COMPACT: gl.constexpr = SOFTPLUS and TPW_M > 1
    d_p, d_ok = _lane_layout(d_p, SPT_D, COMPACT), _lane_layout(e_ok, SPT_D, COMPACT)  # where softplus runs
    bias = _lane_layout(bias, SPT_D, COMPACT)
    dd_p = _lane_layout(dd_p, SPT_D, COMPACT)
    part_off, s_pm = _origin(d, n_eblk * BATCH * L * M, pid_e * BATCH + pid_b, L * M, M, L)
    dB_p = dB_part_ptr + part_off  # this program's partial rows (`_store_e_sum` adds the state)
    dC_p = dC_part_ptr + part_off
    ck_p = _ck_tile(ck_ptr, d, pid_b, BATCH, NSEG, M, E, m, e)[0]  # [BM, BE]

    seg = gl.allocate_shared_memory(gl.float32, [T, BLOCK_M, BLOCK_E], SEG)  # h_{t0+k-1} in slot k

    g_next = gl.zeros([BLOCK_M, BLOCK_E], gl.float32, TILE)  # exp(delta_{t+1}·A)·g_{t+1}
    dA_acc = gl.zeros([BLOCK_M, BLOCK_E], gl.float32, TILE)
    dD_acc = gl.zeros([BLOCK_E], gl.float32, VE)
    db_acc = _lane_layout(gl.zeros([BLOCK_E], gl.float32, VE), SPT_D, COMPACT)  # where ddt lives (SOFTPLUS)
    for i in range(0, NSEG):
        s = NSEG - 1 - i
        t0 = s * T
        n = gl.minimum(t0 + T, L) - t0
        last = t0 + n - 1
        if DEPTH == 2:  # the walk's first row, in flight during 2a
            wu, wg, wd, wB, wC = _walk_rows(u_p, g_p, d_p, B_p, C_p, last, s_ul, s_gl, s_dl, s_Bl, s_Cl, e_ok, d_ok,
                                            m_ok, DEPTH, ROW_ALIGN)
        # 2a: recompute the segment's states from its checkpoint.
        h = gl.load(ck_p + s * E * M, mask=tile_ok, other=0.0).to(gl.float32)  # [BM, BE] state before step t0
        rows1 = _recompute_rows(u_p, d_p, B_p, t0, s_ul, s_dl, s_Bl, e_ok, d_ok, m_ok, DEPTH, ROW_ALIGN)
        rows2 = _recompute_rows(u_p, d_p, B_p, gl.minimum(t0 + 1, last), s_ul, s_dl, s_Bl, e_ok, d_ok, m_ok, DEPTH,
                                ROW_ALIGN)
        if UNROLL:  # all T steps in straight code (the rows clamped to the segment; slots ≥ n unread)
            for kk in gl.static_range(0, T):  # (not k: the walk's k is a tensor)
                h, rows1, rows2 = _recompute_step(seg, kk, h, rows1, rows2, u_p, d_p, B_p,
                                                  gl.minimum(t0 + kk + DEPTH, last), s_ul, s_dl, s_Bl, e_ok, d_ok,
                                                  m_ok, A2, bias, VE, SOFTPLUS, COMPACT, DEPTH, ROW_ALIGN)
        else:
            for k in range(0, n):
                h, rows1, rows2 = _recompute_step(seg, k, h, rows1, rows2, u_p, d_p, B_p,
                                                  gl.minimum(t0 + k + DEPTH, last), s_ul, s_dl, s_Bl, e_ok, d_ok,
                                                  m_ok, A2, bias, VE, SOFTPLUS, COMPACT, DEPTH, ROW_ALIGN)
        # 2b: walk the segment backwards.
        if DEPTH == 1:
            wu, wg, wd, wB, wC = _walk_rows(u_p, g_p, d_p, B_p, C_p, last, s_ul, s_gl, s_dl, s_Bl, s_Cl, e_ok, d_ok,
                                            m_ok, DEPTH, ROW_ALIGN)
        hp_n = seg.index(n - 1).load(TILE)  # [BM, BE]
        for j in range(0, n):
            k = n - 1 - j
            t = t0 + k
            h_prev = hp_n
            u, dy, Bt, Ct = wu.to(gl.float32), wg.to(gl.float32), wB.to(gl.float32), wC.to(gl.float32)
            dt, pre = _delta_in(wd, d_ok, bias, VE, SOFTPLUS, COMPACT)  # [BE]; pre: dt + bias (SOFTPLUS)
            kp = gl.maximum(k - 1, 0)  # the segment's first step fetches itself (unused)
            hp_n = seg.index(kp).load(TILE)
            wu, wg, wd, wB, wC = _walk_rows(u_p, g_p, d_p, B_p, C_p, t0 + kp, s_ul, s_gl, s_dl, s_Bl, s_Cl, e_ok, d_ok,
                                            m_ok, DEPTH, ROW_ALIGN)
            if IN_THREAD:
                g_next, dC, dB, du, ddt, dA_term = _adjoint_step(h_prev, g_next, A2, u, dt, dy, Bt, Ct, Dv,
                                                                 _sum_e_scatter)
            else:
                g_next, dC, dB, du, ddt, dA_term = _adjoint_step(h_prev, g_next, A2, u, dt, dy, Bt, Ct, Dv, _sum_e)
            dA_acc += dA_term
            dD_acc += dy * u
            gl.store(du_p + t * s_o, du, mask=e_ok)
            if SOFTPLUS:  # d/d dt of softplus(dt + bias), where pre lives
                ddt = _lane_layout(ddt, SPT_D, COMPACT) * _sigmoid(pre)
                db_acc += ddt
            gl.store(dd_p + t * s_o, ddt, mask=d_ok)
            _store_e_sum(dB_p + t * s_pm, m, m_ok, dB, M, BLOCK_M, IN_THREAD)
            _store_e_sum(dC_p + t * s_pm, m, m_ok, dC, M, BLOCK_M, IN_THREAD)

    row = d * BATCH + pid_b
    gl.store(dA_part_ptr + row * M * E + m[:, None] * E + e[None, :], dA_acc, mask=tile_ok)
    gl.store(dD_part_ptr + row * E + e, dD_acc, mask=e_ok)
    if SOFTPLUS:
        gl.store(_lane_layout(db_part_ptr + row * E + e, SPT_D, COMPACT), db_acc, mask=d_ok)


def tile_layout(block_e: int, block_m: int, in_thread: int = 0) -> dict:
    """The state tile's layout for the Gluon kernels (one warp). 0: up to 4 lanes along the
    states, the rest along the channels, each thread 4 (or BM/4) states of BE/lanes consecutive
    channels; BLOCK_E must be at least the lanes along the channels (8 for M ≥ 4). 1: a
    channel's BM states in one thread, the 32 lanes along BLOCK_E = 32 channels (no [BE] value
    held twice; sums over the states stay in the thread, sums over the channels are
    `_sum_e_scatter`'s)."""
    spt_d = max(block_e // 32, 1)   # `_lane_layout`'s one channel a lane
    if in_thread:
        if block_e != 32:
            raise ValueError(f"the states-in-thread tile needs BLOCK_E = 32, got {block_e}")
        return {"SPT_M": block_m, "SPT_E": 1, "TPW_M": 1, "TPW_E": 32, "SPT_D": spt_d}
    tpw_m = min(block_m, 4)
    tpw_e = 32 // tpw_m
    if block_e < tpw_e:
        raise ValueError(f"the Gluon backward needs BLOCK_E ≥ {tpw_e} for BLOCK_M = {block_m}, got {block_e}")
    return {"SPT_M": block_m // tpw_m, "SPT_E": block_e // tpw_e, "TPW_M": tpw_m, "TPW_E": tpw_e, "SPT_D": spt_d}
