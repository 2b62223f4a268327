"""S4D: FFT convolution = direct convolution = recurrence; kernel = the formula; no wrap-around."""

from __future__ import annotations

import math

import pytest
import torch

from mambasep_ref.config import ModelConfig
from mambasep_ref.s4d import (BiS4D, legs_init, s4d_direct_conv, s4d_fft_conv,
                              s4d_kernel, s4d_recurrence)


def layer(init: str, n: int = 6, state: int = 8, seed: int = 0) -> BiS4D:
    torch.manual_seed(seed)
    return BiS4D(ModelConfig.preset("xs", n_filters=n, s4d_state=state, s4d_init=init))


@pytest.mark.parametrize("init", ["lin", "legs"])
@pytest.mark.parametrize("L", [1, 2, 37, 64])
def test_fft_equals_direct_equals_recurrence(init: str, L: int) -> None:
    m = layer(init)
    with torch.no_grad():
        m.log_dt.uniform_(math.log(1e-2), math.log(0.5))  # larger steps: kernels not ≈ constant
    h = torch.randn(3, L, 6)
    k_f, k_b = m.kernels(L)
    fft = s4d_fft_conv(h, k_f)
    direct = s4d_direct_conv(h, k_f)
    rec = s4d_recurrence(h, m.log_dt, m.log_A_real, m.A_imag, m.C)
    scale = max(1.0, direct.abs().max().item())
    assert (fft - direct).abs().max() <= 2e-6 * scale * math.sqrt(L)
    assert (rec - direct).abs().max() <= 2e-6 * scale * math.sqrt(L)
    # Both directions in one FFT = the flip formulation of docs/MODEL.md.
    both = s4d_fft_conv(h, k_f, k_b)
    flip = direct + s4d_direct_conv(h.flip(1), k_b).flip(1)
    assert (both - flip).abs().max() <= 4e-6 * scale * math.sqrt(L)


def test_kernel_matches_formula() -> None:
    m = layer("lin", n=3, state=4)
    L = 10
    k = m.kernels(L)[0]
    for n in range(3):
        dt = math.exp(m.log_dt[n].item())
        for l in range(L):
            total = 0j
            for p in range(2):
                a = complex(-math.exp(m.log_A_real[n, p].item()), m.A_imag[n, p].item())
                c = complex(m.C[n, p, 0].item(), m.C[n, p, 1].item())
                total += c * (complex(math.e) ** (dt * a) - 1) / a * complex(math.e) ** (dt * a * l)
            assert abs(k[n, l].item() - 2 * total.real) <= 1e-5 * max(1, abs(total.real))


def test_fft_conv_does_not_wrap() -> None:
    L = 16
    h = torch.zeros(1, L, 1)
    h[0, L - 1, 0] = 1.0                      # impulse at the last step
    k = torch.ones(1, L)
    y = s4d_fft_conv(h, k)                    # causal: only the last output sees it
    assert torch.allclose(y[0, :L - 1, 0], torch.zeros(L - 1), atol=1e-6)
    y_b = s4d_fft_conv(torch.flip(h, [1]), torch.zeros(1, L), k)  # anticausal, impulse at t=0
    assert torch.allclose(y_b[0, 1:, 0], torch.zeros(L - 1), atol=1e-6)


def test_lin_init_values() -> None:
    m = layer("lin", n=4, state=8)
    assert torch.allclose(m.log_A_real, torch.full((4, 4), math.log(0.5)))
    assert torch.allclose(m.A_imag_b[1], math.pi * torch.arange(4.0))
    dt = m.log_dt.exp()
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001


def test_legs_eigenvalues() -> None:
    """The normal part of HiPPO-LegS has eigenvalues -½ ± iω; we keep ω > 0, sorted."""
    imag, b = legs_init(8)
    assert imag.shape == (4,) and torch.all(imag > 0) and torch.all(imag[1:] >= imag[:-1])
    assert b.shape == (4,) and torch.isfinite(b.abs()).all()


def test_bis4d_forward_shape_and_grad() -> None:
    m = layer("lin")
    h = torch.randn(2, 11, 6, requires_grad=True)
    y = m(h)
    assert y.shape == (2, 11, 6)
    y.sum().backward()
    assert m.C_b.grad is not None and torch.isfinite(m.log_dt.grad).all()
