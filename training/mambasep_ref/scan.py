"""Selective scan (the Mamba S6 recurrence): the reference definition and a fast CPU path.

Glossary: B batch (sequences), L steps, E channels, M state size.
Layout is channels-last: u, delta [B, L, E]; A [E, M]; Bm, Cm [B, L, M]; D [E]; y [B, L, E].

Per sequence, channel e, state m, step t (h before step 0 is zero):
    h[e, m] = exp(delta[t, e] · A[e, m]) · h[e, m] + delta[t, e] · Bm[t, m] · u[t, e]
    y[t, e] = Σ_m Cm[t, m] · h[e, m] + D[e] · u[t, e]
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["selective_scan_ref", "selective_scan_fast", "selective_scan", "set_scan_impl",
           "get_scan_impl", "fused_active", "SCAN_IMPLS"]

SCAN_IMPLS = ("ref", "fast", "triton", "fused", "auto")
_impl = "auto"
_triton_fn: Callable | None = None
_triton_error: str | None = None


# MARK: - Checks


def _check(u: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor, D: Tensor) -> None:
    if u.dim() != 3:
        raise ValueError(f"selective_scan: u must be [B, L, E], got shape {tuple(u.shape)}")
    b, l, e = u.shape
    m = A.shape[-1] if A.dim() == 2 else -1
    expect = {"delta": (delta, (b, l, e)), "A": (A, (e, m)), "Bm": (Bm, (b, l, m)),
              "Cm": (Cm, (b, l, m)), "D": (D, (e,))}
    for name, (t, shape) in expect.items():
        if tuple(t.shape) != shape:
            raise ValueError(f"selective_scan: {name} must have shape {shape}, got {tuple(t.shape)}")


# MARK: - Reference


def selective_scan_ref(u: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor,
                       D: Tensor) -> Tensor:
    """The definition: a plain sequential loop over L in float32; differentiable.

    Float64 inputs are computed in float64 (for error studies); other dtypes in float32, with
    the result cast back to u's dtype.
    L = 0 gives an empty [B, 0, E] result.
    """
    _check(u, delta, A, Bm, Cm, D)
    dtype = u.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32
    u, delta, A, Bm, Cm, D = (t.to(work) for t in (u, delta, A, Bm, Cm, D))
    b, l, e = u.shape
    m = A.shape[1]
    h = u.new_zeros(b, e, m)                                        # [B, E, M]
    ys = []
    for t in range(l):
        dA = torch.exp(delta[:, t, :, None] * A)                    # [B, E, M]
        dBu = (delta[:, t] * u[:, t])[:, :, None] * Bm[:, t, None, :]  # [B, E, M]
        h = dA * h + dBu
        ys.append(torch.einsum("bem,bm->be", h, Cm[:, t]))          # [B, E]
    y = torch.stack(ys, dim=1) if ys else u.new_zeros(b, 0, e)      # [B, L, E]
    return (y + u * D).to(dtype)


# MARK: - Fast path (vectorised over B, E, M; inference only)

# Elements of each [Lc, B, M, E] working tensor per chunk of steps (4 MB in float32).
_CHUNK_ELEMS = 1 << 20


def selective_scan_fast(u: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor,
                        D: Tensor) -> Tensor:
    """Same result as `selective_scan_ref`, computed chunk by chunk of steps.

    The state is kept as [B, M, E] (E innermost, so every broadcast and the sum over M run
    along contiguous memory). For each chunk of Lc steps the decays exp(delta·A) and inputs
    delta·Bm·u are whole-tensor ops, the recurrence is one in-place multiply-add per step over
    [B, M, E], and the output is one multiply and sum over M. When gradients are required it
    falls back to the reference (the in-place loop does not support autograd).
    """
    _check(u, delta, A, Bm, Cm, D)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (u, delta, A, Bm, Cm, D)):
        return selective_scan_ref(u, delta, A, Bm, Cm, D)
    dtype = u.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32
    u, delta, A, Bm, Cm, D = (t.to(work) for t in (u, delta, A, Bm, Cm, D))
    b, l, e = u.shape
    m = A.shape[1]
    y = u.new_empty(l, b, e)                                        # [L, B, E]
    if l == 0 or b == 0:
        return y.transpose(0, 1).to(dtype)
    lc = max(1, min(l, _CHUNK_ELEMS // max(1, b * e * m)))
    delta_t = delta.transpose(0, 1).contiguous()                    # [L, B, E]
    du_t = (delta * u).transpose(0, 1).contiguous()                 # [L, B, E]
    b_t = Bm.transpose(0, 1).contiguous()                           # [L, B, M]
    c_t = Cm.transpose(0, 1).contiguous()                           # [L, B, M]
    a_t = A.t().contiguous()                                        # [M, E]
    dA = u.new_empty(lc, b, m, e)                                   # [Lc, B, M, E]
    hs = u.new_empty(lc, b, m, e)                                   # [Lc, B, M, E]
    h_prev = u.new_zeros(b, m, e)                                   # [B, M, E]
    for s in range(0, l, lc):
        n = min(lc, l - s)
        dA_c, hs_c = dA[:n], hs[:n]
        torch.mul(delta_t[s:s + n, :, None, :], a_t, out=dA_c)
        dA_c.exp_()
        torch.mul(du_t[s:s + n, :, None, :], b_t[s:s + n, :, :, None], out=hs_c)
        hs_c[0].addcmul_(dA_c[0], h_prev)
        for t in range(1, n):
            hs_c[t].addcmul_(dA_c[t], hs_c[t - 1])
        h_prev.copy_(hs_c[n - 1])
        # y[t, b, e] = Σ_m hs[t, b, m, e] · Cm[t, b, m]
        torch.sum(hs_c.mul_(c_t[s:s + n, :, :, None]), dim=2, out=y[s:s + n])
    y = y.transpose(0, 1)                                           # [B, L, E]
    return (y + u * D).to(dtype)


# MARK: - Dispatch


def set_scan_impl(name: str) -> None:
    """Choose the scan: "ref", "fast", "triton", "fused" or "auto".

    "ref", "fast" and "triton" are implementations of `selective_scan`, one direction at a
    time. "fused" makes BiMamba run both directions, the gate and the merge as one op
    (`mambasep_ref.bimamba_triton`; GPU, or CPU under TRITON_INTERPRET=1): the faster training
    step (training/bench/NOTES.md). "auto", per tensor: for CUDA tensors when Triton imports,
    BiMamba takes the fused path and a direction scanned alone the "triton" kernel; otherwise
    (CPU tensors, no Triton) "fast".
    """
    global _impl
    if name not in SCAN_IMPLS:
        raise ValueError(f"unknown scan implementation {name!r}; choose one of {SCAN_IMPLS}")
    if name in ("triton", "fused") and _load_triton() is None:
        raise RuntimeError(f"scan implementation {name!r} is unavailable: {_triton_error}")
    _impl = name


def get_scan_impl() -> str:
    return _impl


def fused_active(x: Tensor) -> bool:
    """Whether BiMamba takes the fused path for its input x: always under "fused"; under "auto"
    when x is a CUDA tensor and Triton imports (the fused path's training step is the faster one);
    never under "ref", "fast" or "triton"."""
    if _impl == "fused":
        return True
    return _impl == "auto" and x.is_cuda and _load_triton() is not None


def _load_triton() -> Callable | None:
    global _triton_fn, _triton_error
    if _triton_fn is None and _triton_error is None:
        try:
            from .scan_triton import selective_scan_triton  # noqa: PLC0415 (lazy on purpose)
            from . import bimamba_triton  # noqa: F401, PLC0415 (the fused path needs it too)
            _triton_fn = selective_scan_triton
        except Exception as e:  # ImportError, or triton failing to initialise
            _triton_error = f"{type(e).__name__}: {e}"
    return _triton_fn


def selective_scan(u: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor,
                   D: Tensor) -> Tensor:
    """The selective scan through the implementation chosen by `set_scan_impl`.

    Under `torch.compile` it runs eagerly (see `scan_outside_compiler`): the Triton kernel is
    already fused and the loop forms would unroll over time.
    """
    if _eager_scan is not None:
        return _eager_scan(u, delta, A, Bm, Cm, D)
    return _dispatch(u, delta, A, Bm, Cm, D)


_eager_scan = None


def scan_outside_compiler() -> None:
    """Keep the scan out of `torch.compile` graphs (call before compiling a model).

    Done on request, not at import: `torch.compiler.disable` imports TorchDynamo (and with it
    Triton), which must not happen before a test selects Triton's interpreter.
    """
    global _eager_scan
    if _eager_scan is None:
        _eager_scan = torch.compiler.disable(_dispatch)
    if torch.cuda.is_available():
        _load_triton()  # "auto" asks `fused_active` inside the graph: Triton loads here, not mid-trace


def _dispatch(u: Tensor, delta: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor, D: Tensor) -> Tensor:
    impl = _impl
    if impl in ("auto", "fused"):  # a direction scanned alone (BiMamba's fused path bypasses this)
        impl = "triton" if (u.is_cuda and _load_triton() is not None) else "fast"
    if impl == "ref":
        return selective_scan_ref(u, delta, A, Bm, Cm, D)
    if impl == "fast":
        return selective_scan_fast(u, delta, A, Bm, Cm, D)
    fn = _load_triton()
    if fn is None:
        raise RuntimeError(f"scan implementation 'triton' is unavailable: {_triton_error}")
    return fn(u, delta, A, Bm, Cm, D)
