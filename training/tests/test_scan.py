"""Selective scan: the reference against a closed form, the fast CPU path against the reference."""

from __future__ import annotations

import pytest
import torch

from mambasep_ref import scan
from mambasep_ref.scan import selective_scan_fast, selective_scan_ref


def inputs(b: int, l: int, e: int, m: int, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(b, l, e, generator=g, dtype=dtype)
    delta = torch.rand(b, l, e, generator=g, dtype=dtype) * 0.8 + 0.01
    A = -torch.rand(e, m, generator=g, dtype=dtype) * 4 - 0.1
    Bm = torch.randn(b, l, m, generator=g, dtype=dtype)
    Cm = torch.randn(b, l, m, generator=g, dtype=dtype)
    D = torch.randn(e, generator=g, dtype=dtype)
    return u, delta, A, Bm, Cm, D


def closed_form(u, delta, A, Bm, Cm, D):
    """y[t] = Σ_{τ≤t} Σ_m C[t,m]·exp(A[e,m]·Σ_{τ<s≤t} delta[s,e])·delta[τ,e]·B[τ,m]·u[τ,e] + D·u."""
    b, l, e = u.shape
    y = torch.zeros(b, l, e, dtype=torch.float64)
    cum = torch.cumsum(delta.double(), 1)                                   # [B, L, E]
    for t in range(l):
        for tau in range(t + 1):
            decay = torch.exp(A.double() * (cum[:, t] - cum[:, tau])[..., None])   # [B, E, M]
            term = decay * (delta[:, tau] * u[:, tau]).double()[..., None] * Bm[:, tau, None, :].double()
            y[:, t] += (term * Cm[:, t, None, :].double()).sum(-1)
    return y + u.double() * D.double()


def test_reference_equals_closed_form() -> None:
    args = inputs(2, 9, 5, 3)
    assert torch.allclose(selective_scan_ref(*args).double(), closed_form(*args), atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 37, 8, 4), (1, 1, 4, 2), (2, 64, 16, 16), (5, 3, 7, 1)])
@pytest.mark.parametrize("chunk_elems", [50, 1 << 20])
def test_fast_equals_reference(shape, chunk_elems, monkeypatch) -> None:
    monkeypatch.setattr(scan, "_CHUNK_ELEMS", chunk_elems)
    args = inputs(*shape, seed=sum(shape))
    ref = selective_scan_ref(*args)
    fast = selective_scan_fast(*args)
    assert fast.shape == ref.shape
    assert (fast - ref).abs().max() <= 1e-5 * max(1.0, ref.abs().max().item())


def test_fast_accepts_non_contiguous_inputs() -> None:
    u, delta, A, Bm, Cm, D = inputs(2, 20, 6, 3)
    u_nc = u.transpose(1, 2).contiguous().transpose(1, 2)
    assert not u_nc.is_contiguous()
    assert torch.allclose(selective_scan_fast(u_nc, delta, A, Bm, Cm, D),
                          selective_scan_ref(u, delta, A, Bm, Cm, D), atol=1e-5)


def test_empty_sequence() -> None:
    args = inputs(2, 0, 4, 2)
    assert selective_scan_ref(*args).shape == (2, 0, 4)
    assert selective_scan_fast(*args).shape == (2, 0, 4)


def test_fast_with_grad_falls_back_to_differentiable_reference() -> None:
    args = [t.requires_grad_() for t in inputs(2, 6, 4, 3)]
    y = selective_scan_fast(*args)
    y.sum().backward()
    assert all(t.grad is not None for t in args)


def test_shape_errors_name_the_tensor() -> None:
    u, delta, A, Bm, Cm, D = inputs(2, 5, 4, 3)
    with pytest.raises(ValueError, match="Cm"):
        selective_scan_ref(u, delta, A, Bm, Cm[:, :4], D)
    with pytest.raises(ValueError, match="A must"):
        selective_scan_fast(u, delta, A.t(), Bm, Cm, D)


def test_dispatch() -> None:
    args = inputs(1, 8, 4, 2)
    prev = scan.get_scan_impl()
    try:
        with pytest.raises(ValueError):
            scan.set_scan_impl("cuda-magic")
        for name in ("ref", "fast", "auto"):
            scan.set_scan_impl(name)
            assert torch.allclose(scan.selective_scan(*args), selective_scan_ref(*args), atol=1e-6)
    finally:
        scan.set_scan_impl(prev)
