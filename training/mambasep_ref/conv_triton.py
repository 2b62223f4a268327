"""Both directions' depthwise convolution + SiLU of BiMamba's fused path: one Triton kernel a pass.

Glossary (docs/MODEL.md's): B sequences (B·S or B·K inside the dual-path model), L steps, E
channels (Mamba's inner width), W the convolution's width; d direction; BT, BE the steps and
channels of one program's tile; P the backward's programs along B·L.

For x [B, L, E] (zero outside steps 0..L−1), weights w [2, E, W] and biases bias [2, E]:

    p_0,t  = bias_0 + Σ_k w_0[k] · x_{t−(W−1)+k}     direction 0: causal
    p_1,t  = bias_1 + Σ_k w_1[k] · x_{t+(W−1)−k}     direction 1: the causal convolution of the
                                                      time-reversed sequence, reversed back
    xc_d,t = SiLU(p_d,t)                              xc [2, B, L, E] in x's dtype

which is `BiMamba._bidirectional_conv` followed by SiLU (the torch operations that are the
definition; the tests compare against them and against a float64 loop). The backward, for
g = ∂loss/∂xc [2, B, L, E] and q_d,t = g_d,t · SiLU'(p_d,t) (zero outside 0..L−1):

    dx_t    = Σ_k w_0[k] · q_0,t+(W−1)−k + Σ_k w_1[k] · q_1,t−(W−1)+k
    dw_0[k] = Σ_{b,t} q_0,t · x_{t−(W−1)+k}          dw_1[k] = Σ_{b,t} q_1,t · x_{t+(W−1)−k}
    dbias_d = Σ_{b,t} q_d,t

Why a kernel: under torch.compile these W shifted multiply-adds, their SiLU and their backward
became six Inductor kernels that read and wrote [2, B, L, E] float32 intermediates (≈ 22–25 ms
of a 138 ms XS training step; training/bench/NOTES.md, v7's profile). Here the forward reads
each row of x once and writes xc; the backward reads x and g once and writes dx and
per-program partial sums of dw and dbias. Both walk the steps keeping the rows they still need
in registers (below), so the backward recomputes p instead of storing it at the cost of two
convolutions and two sigmoids an element (the two q that step forms). Every sum is accumulated
in float32; the weight gradients are finished by a torch `sum` over the P partials
(deterministic, no atomics).

Registered as the custom ops `mambasep::conv2_fwd` / `_bwd` with fake implementations, so
torch.compile keeps them in its graph. Kernels run on CUDA tensors, or on CPU tensors when this
module was imported with TRITON_INTERPRET=1 (slow; for tests).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from .bimamba_triton import _inner
from .scan_triton import _sigmoid

__all__ = ["conv_silu_bidir", "interpreter_enabled"]

_INPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Triton's `jit` reads TRITON_INTERPRET when a kernel is defined, i.e. when this module is imported.
_INTERPRETED = os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")
# A unit: CHUNK steps of BLOCK_E channels, walked by one warp (2 channels a thread: 114 registers
# in the backward for W = 4, 61 in the forward; Triton 3.6, sm_90a, `kernel_ir.py --conv`).
# 32 steps: the fastest forward + backward of five units on an H100 at both XS shapes (1.27 / 1.09
# ms against 1.64 / 1.23 for 64 steps; `bench_bimamba.py --conv`, training/bench/NOTES.md v8).
CHUNK, BLOCK_E = 32, 64
MAX_PROGRAMS = 2048        # the backward's programs along the units (P): its partials' rows


def interpreter_enabled() -> bool:
    """Whether this module's kernels were defined for Triton's CPU interpreter (`TRITON_INTERPRET=1`)."""
    return _INTERPRETED


# MARK: - Kernels
#
# Both kernels walk one unit (a sequence b, its steps c0..c0+TC−1, a block of BE channels) step by
# step, a row x [BE] at a time, keeping a window of the 2W − 1 rows around the step in registers
# (`xs[i]` = x at step s − (W−1) + i for the window's step s): each step loads one new row.


@triton.jit
def _unit(u, n_chunks, TC: tl.constexpr):
    """Unit u of the flattened (sequence, chunk of TC steps) axis: its sequence b and first step c0."""
    return u // n_chunks, (u % n_chunks) * TC


@triton.jit
def _row(ptr, off, t, e, e_ok, L):
    """The row [BE] at element offset `off` (that of step t), in its own dtype (widened where it is
    used, so that a row loaded a step ahead is not waited for), zero outside steps 0..L−1."""
    tv = tl.zeros_like(e) + t                  # [BE]: Triton's interpreter masks with vectors only
    return tl.load(ptr + off + e, mask=e_ok & (tv >= 0) & (tv < L), other=0.0)


@triton.jit
def _x_row(x_ptr, b, t, e, e_ok, L, s_xb, s_xl):
    """x at step t: [BE] in x's dtype, zero outside 0..L−1."""
    return _row(x_ptr, b.to(tl.int64) * s_xb + t * s_xl, t, e, e_ok, L)


@triton.jit
def _bwd_inner(x_ptr, g_ptr, b, s, e, e_ok, L, s_xb, s_xl, s_gd, s_gb, s_gl, W: tl.constexpr):
    """What the backward's step s loads: x and g_0 at s + (W−1), g_1 at s."""
    g_b = b.to(tl.int64) * s_gb
    return (_x_row(x_ptr, b, s + (W - 1), e, e_ok, L, s_xb, s_xl),
            _row(g_ptr, g_b + (s + W - 1) * s_gl, s + W - 1, e, e_ok, L),
            _row(g_ptr + s_gd, g_b + s * s_gl, s, e, e_ok, L))


@triton.jit
def _shift(xs, new, N: tl.constexpr):
    """The window xs (N rows) one step on: drops xs[0], appends new."""
    out = ()
    for i in tl.static_range(1, N):
        out = out + (xs[i],)
    return out + (new,)


@triton.jit
def _push(xs, new, N: tl.constexpr):
    """The newest-first window xs (N rows) one step on: new in front, xs[N−1] dropped."""
    out = (new,)
    for i in tl.static_range(N - 1):
        out = out + (xs[i],)
    return out


@triton.jit
def _accumulate(acc, q, xs, first: tl.constexpr, step: tl.constexpr, W: tl.constexpr):
    """acc (W + 1 rows) plus one step's weight-gradient terms: acc[k] += q · xs[first + step·k]
    (dw[k]) for k < W, acc[W] += q (dbias)."""
    out = ()
    for k in tl.static_range(W):
        out = out + (acc[k] + q * xs[first + step * k],)
    return out + (acc[W] + q,)


@triton.jit
def _taps(xs, ws, first: tl.constexpr, step: tl.constexpr, W: tl.constexpr):
    """Σ_k ws[k] · xs[first + step·k] ([BE] float32): a direction's convolution at one step
    (window layout above: direction 0 first = 0, step 1; direction 1 first = 2(W−1), step −1)."""
    acc = ws[0] * xs[first]
    for k in tl.static_range(1, W):
        acc += ws[k] * xs[first + step * k]
    return acc


@triton.jit
def _weights(w_ptr, bias_ptr, e, e_ok, E, d: tl.constexpr, W: tl.constexpr):
    """Direction d's taps (a tuple of W [BE] float32 rows) and bias [BE]."""
    ws = ()
    for k in tl.static_range(W):
        ws = ws + (tl.load(w_ptr + (d * E + e) * W + k, mask=e_ok, other=0.0).to(tl.float32),)
    return ws, tl.load(bias_ptr + d * E + e, mask=e_ok, other=0.0).to(tl.float32)


@triton.jit
def _window(x_ptr, b, s, e, e_ok, L, s_xb, s_xl, W: tl.constexpr):
    """The window of 2W − 1 rows around step s (x at s − (W−1) .. s + (W−1))."""
    xs = ()
    for i in tl.static_range(2 * W - 1):
        xs = xs + (_x_row(x_ptr, b, s - (W - 1) + i, e, e_ok, L, s_xb, s_xl).to(tl.float32),)
    return xs


@triton.jit
def _conv_fwd_kernel(x_ptr, w_ptr, bias_ptr, xc_ptr, L, E, n_chunks, s_xb, s_xl, s_cd, s_cb, s_cl,
                     W: tl.constexpr, TC: tl.constexpr, BE: tl.constexpr):
    """Both directions' xc = SiLU(p) over one unit; grid (B · n_chunks, ⌈E/BE⌉)."""
    b, c0 = _unit(tl.program_id(0), n_chunks, TC)
    e = tl.program_id(1) * BE + tl.arange(0, BE)                                  # [BE]
    e_ok = e < E
    w0, b0 = _weights(w_ptr, bias_ptr, e, e_ok, E, 0, W)
    w1, b1 = _weights(w_ptr, bias_ptr, e, e_ok, E, 1, W)
    xs = _window(x_ptr, b, c0 - 1, e, e_ok, L, s_xb, s_xl, W)                     # around c0 − 1
    base = xc_ptr + b.to(tl.int64) * s_cb + e
    x_next = _x_row(x_ptr, b, c0 + (W - 1), e, e_ok, L, s_xb, s_xl)
    for t in range(c0, tl.minimum(c0 + TC, L)):
        x_new = x_next
        x_next = _x_row(x_ptr, b, t + W, e, e_ok, L, s_xb, s_xl)                # a step ahead
        xs = _shift(xs, x_new.to(tl.float32), 2 * W - 1)                         # around t
        p0 = b0 + _taps(xs, w0, 0, 1, W)                                          # [BE]
        p1 = b1 + _taps(xs, w1, 2 * (W - 1), -1, W)                               # [BE]
        row = base + t * s_cl
        tl.store(row, (p0 * _sigmoid(p0)).to(xc_ptr.dtype.element_ty), mask=e_ok)
        tl.store(row + s_cd, (p1 * _sigmoid(p1)).to(xc_ptr.dtype.element_ty), mask=e_ok)


@triton.jit
def _q(p, g):
    """g · SiLU'(p)."""
    s = _sigmoid(p)
    return g * s * (1.0 + p * (1.0 - s))


@triton.jit
def _conv_bwd_kernel(x_ptr, w_ptr, bias_ptr, g_ptr, dx_ptr, part_ptr, L, E, n_chunks, n_units, units_per_prog,
                     s_xb, s_xl, s_gd, s_gb, s_gl, s_dxb, s_dxl,
                     W: tl.constexpr, TC: tl.constexpr, BE: tl.constexpr):
    """dx over units_per_prog consecutive units, and this program's partial sums of dw and
    dbias over them: part[program, d, k, e] (k < W: dw_d[k]; k = W: dbias_d); grid (P, ⌈E/BE⌉).

    The walk's step s (from c0 − (W−1): W − 1 steps of warm-up) forms q_0 at s + (W−1) and q_1
    at s, the two that no earlier step formed, and keeps the last W of each (`q0s[j]` = q_0 at
    s + j, `q1s[j]` = q_1 at s − j); from step c0 on they give dx_s and the weight sums at s."""
    prog = tl.program_id(0)
    e = tl.program_id(1) * BE + tl.arange(0, BE)                                  # [BE]
    e_ok = e < E
    w0, b0 = _weights(w_ptr, bias_ptr, e, e_ok, E, 0, W)
    w1, b1 = _weights(w_ptr, bias_ptr, e, e_ok, E, 1, W)
    zero = tl.zeros([BE], dtype=tl.float32)
    acc0, acc1 = (), ()                       # dw_d[0..W−1], then dbias_d: [BE] each
    for k in tl.static_range(W + 1):
        acc0, acc1 = acc0 + (zero,), acc1 + (zero,)
    for u in range(prog * units_per_prog, tl.minimum((prog + 1) * units_per_prog, n_units)):
        b, c0 = _unit(u, n_chunks, TC)
        xs = _window(x_ptr, b, c0 - W, e, e_ok, L, s_xb, s_xl, W)                 # around c0 − W
        q0s, q1s = (), ()
        for j in tl.static_range(W):
            q0s, q1s = q0s + (zero,), q1s + (zero,)
        nxt = _bwd_inner(x_ptr, g_ptr, b, c0 - (W - 1), e, e_ok, L, s_xb, s_xl, s_gd, s_gb, s_gl, W)
        for s in range(c0 - (W - 1), tl.minimum(c0 + TC, L)):
            x_new, g0, g1 = nxt
            nxt = _bwd_inner(x_ptr, g_ptr, b, s + 1, e, e_ok, L, s_xb, s_xl, s_gd, s_gb, s_gl, W)   # a step ahead
            xs = _shift(xs, x_new.to(tl.float32), 2 * W - 1)                     # around s
            q0s = _shift(q0s, _q(b0 + _taps(xs, w0, W - 1, 1, W), g0.to(tl.float32)), W)        # q_0 at s + (W−1)
            q1s = _push(q1s, _q(b1 + _taps(xs, w1, 2 * (W - 1), -1, W), g1.to(tl.float32)), W)  # q_1 at s
            if s >= c0:
                dx = w0[W - 1] * q0s[0] + w1[W - 1] * q1s[0]
                for j in tl.static_range(1, W):
                    dx += w0[W - 1 - j] * q0s[j] + w1[W - 1 - j] * q1s[j]
                tl.store(dx_ptr + b.to(tl.int64) * s_dxb + s * s_dxl + e,
                         dx.to(dx_ptr.dtype.element_ty), mask=e_ok)
                acc0 = _accumulate(acc0, q0s[0], xs, 0, 1, W)
                acc1 = _accumulate(acc1, q1s[0], xs, 2 * (W - 1), -1, W)
    for k in tl.static_range(W + 1):
        row = part_ptr + ((prog.to(tl.int64) * 2) * (W + 1) + k) * E + e
        tl.store(row, acc0[k], mask=e_ok)
        tl.store(row + (W + 1) * E, acc1[k], mask=e_ok)


# MARK: - Launchers


def _check(x: Tensor, w: Tensor, bias: Tensor) -> None:
    for name, t in (("x", x), ("w", w), ("bias", bias)):
        if not isinstance(t, Tensor):
            raise TypeError(f"conv_silu_bidir: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _INPUT_DTYPES:
            raise TypeError(f"conv_silu_bidir: {name} must be float32/float16/bfloat16, got {t.dtype}")
    if x.dim() != 3:
        raise ValueError(f"conv_silu_bidir: x must be [B, L, E], got shape {list(x.shape)}")
    E = x.shape[2]
    if w.dim() != 3 or tuple(w.shape[:2]) != (2, E) or w.shape[2] < 1:
        raise ValueError(f"conv_silu_bidir: w must be [2, E, W] with E={E} and W ≥ 1, got shape {list(w.shape)}")
    if tuple(bias.shape) != (2, E):
        raise ValueError(f"conv_silu_bidir: bias must be [2, E] = [2, {E}], got shape {list(bias.shape)}")
    devices = {t.device for t in (x, w, bias)}
    if len(devices) != 1:
        raise ValueError(f"conv_silu_bidir: all inputs must be on one device, got {sorted(map(str, devices))}")
    if x.device.type != "cuda" and not _INTERPRETED:
        raise RuntimeError(f"conv_silu_bidir needs CUDA tensors (got {x.device}); on CPU set "
                           "TRITON_INTERPRET=1 before importing this module, or use BiMamba's torch path")


def _launch_forward(x: Tensor, w: Tensor, bias: Tensor) -> Tensor:
    """xc [2, B, L, E] (x's dtype) for x [B, L, E] (last dimension contiguous), w [2, E, W] and bias [2, E]
    (contiguous)."""
    Bsz, L, E = x.shape
    xc = torch.empty(2, Bsz, L, E, device=x.device, dtype=x.dtype)                   # [2, B, L, E]
    if xc.numel() == 0:
        return xc
    n_chunks = triton.cdiv(L, CHUNK)
    _conv_fwd_kernel[(Bsz * n_chunks, triton.cdiv(E, BLOCK_E))](
        x, w, bias, xc, L, E, n_chunks, x.stride(0), x.stride(1), *xc.stride()[:3],
        W=w.shape[2], TC=CHUNK, BE=BLOCK_E, num_warps=1)
    return xc


def _launch_backward(x: Tensor, w: Tensor, bias: Tensor, g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(dx [B, L, E] in x's dtype, dw [2, E, W] and dbias [2, E] float32) for g [2, B, L, E]
    (last dimension contiguous)."""
    Bsz, L, E = x.shape
    W = w.shape[2]
    dx = torch.empty_like(x, memory_format=torch.contiguous_format)                  # [B, L, E]
    if dx.numel() == 0:
        return dx, w.new_zeros(w.shape, dtype=torch.float32), bias.new_zeros(bias.shape, dtype=torch.float32)
    n_chunks = triton.cdiv(L, CHUNK)
    n_units = Bsz * n_chunks
    per = triton.cdiv(n_units, MAX_PROGRAMS)
    P = triton.cdiv(n_units, per)
    part = torch.empty(P, 2, W + 1, E, device=x.device, dtype=torch.float32)         # [P, 2, W+1, E]
    _conv_bwd_kernel[(P, triton.cdiv(E, BLOCK_E))](
        x, w, bias, g, dx, part, L, E, n_chunks, n_units, per, x.stride(0), x.stride(1),
        *g.stride()[:3], dx.stride(0), dx.stride(1), W=W, TC=CHUNK, BE=BLOCK_E, num_warps=1)
    sums = part.sum(0)                                                               # [2, W+1, E]
    return dx, sums[:, :W].transpose(1, 2).contiguous(), sums[:, W].contiguous()


# MARK: - Custom ops


@torch.library.custom_op("mambasep::conv2_fwd", mutates_args=())
def _conv2_fwd_op(x: Tensor, w: Tensor, bias: Tensor) -> Tensor:
    return _launch_forward(_inner(x), w.contiguous(), bias.contiguous())


@_conv2_fwd_op.register_fake
def _(x, w, bias):
    return x.new_empty(2, *x.shape)


@torch.library.custom_op("mambasep::conv2_bwd", mutates_args=())
def _conv2_bwd_op(x: Tensor, w: Tensor, bias: Tensor, g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    dx, dw, dbias = _launch_backward(_inner(x), w.contiguous(), bias.contiguous(), _inner(g))
    return dx, dw.to(w.dtype), dbias.to(bias.dtype)


@_conv2_bwd_op.register_fake
def _(x, w, bias, g):
    return x.new_empty(x.shape), w.new_empty(w.shape), bias.new_empty(bias.shape)


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _backward(ctx, g):
    return _conv2_bwd_op(*ctx.saved_tensors, g)


_conv2_fwd_op.register_autograd(_backward, setup_context=_setup_context)


def conv_silu_bidir(x: Tensor, w: Tensor, bias: Tensor) -> Tensor:
    """Both directions' SiLU(depthwise convolution) of x [B, L, E]: xc [2, B, L, E] in x's dtype
    (module docstring), with w [2, E, W] (conv1d.weight[:, 0] of each direction) and bias [2, E].

    Differentiable in all three inputs. x may be a strided view (its last dimension contiguous,
    as `in_proj`'s output chunked is). Bad shapes, dtypes or mixed devices raise ValueError or
    TypeError naming the input; CPU tensors without the interpreter raise RuntimeError. B = 0 or
    L = 0 give an empty xc.
    """
    _check(x, w, bias)
    return _conv2_fwd_op(x, w, bias)
