"""Tests of both directions' depthwise convolution + SiLU in Triton (mambasep_ref/conv_triton.py).

Glossary: B sequences, L steps, E channels, W convolution width.

Runs on CUDA when a GPU is present; otherwise under Triton's CPU interpreter (TRITON_INTERPRET=1,
set before the kernels are defined) on tiny shapes, with the walk's chunk, channel block and
programs shrunk so that several units, chunks and programs' partial sums are exercised. The
ground truth is a plain loop over steps and taps in float64 (`loop_conv`); the float32 kernels
must agree within 1e-5 relative (max |a − b| / max |b|) on xc and on the gradients of x, w and
bias. BiMamba's torch operations (`_bidirectional_conv` + SiLU, the fused path's default) are held
to the same loop, and the whole layer with the kernels to the reference path.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from support import triton_kernel_modules

(ct,) = triton_kernel_modules("scan_triton", "bimamba_triton", "conv_triton")[2:]
from mambasep_ref.config import ModelConfig  # noqa: E402
from mambasep_ref.mamba import BiMamba  # noqa: E402

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
TOL = 1e-5


@pytest.fixture
def small_units(monkeypatch):
    """Chunks of 4 steps, blocks of 16 channels, at most 3 backward programs (several units each)."""
    monkeypatch.setattr(ct, "CHUNK", 4)
    monkeypatch.setattr(ct, "BLOCK_E", 16)
    monkeypatch.setattr(ct, "MAX_PROGRAMS", 3)


def loop_conv(x, w, bias):
    """The definition in float64: p_0,t = bias_0 + Σ_k w_0[k]·x_{t−(W−1)+k}, p_1,t = bias_1 +
    Σ_k w_1[k]·x_{t+(W−1)−k} (x zero outside 0..L−1), xc = SiLU(p) [2, B, L, E]."""
    Bsz, L, E = x.shape
    W = w.shape[2]
    x, w, bias = x.double(), w.double(), bias.double()
    rows = []
    for d in range(2):
        for t in range(L):
            p = bias[d].expand(Bsz, E)                                            # [B, E]
            for k in range(W):
                tau = t - (W - 1) + k if d == 0 else t + (W - 1) - k
                if 0 <= tau < L:
                    p = p + w[d, :, k] * x[:, tau]
            rows.append(p)
    return F.silu(torch.stack(rows, 1).view(Bsz, 2, L, E).transpose(0, 1)) if L else x.new_zeros(2, Bsz, 0, E)


def make_inputs(Bsz, L, E, W, seed):
    """xz [B, L, 2E] (the kernels read x = xz[..., :E], a strided view like in_proj's output
    chunked), w [2, E, W], bias [2, E]; float64."""
    g = torch.Generator().manual_seed(seed)
    xz = torch.randn(Bsz, L, 2 * E, generator=g, dtype=torch.float64)
    w = torch.randn(2, E, W, generator=g, dtype=torch.float64) / W ** 0.5
    bias = 0.5 * torch.randn(2, E, generator=g, dtype=torch.float64)
    return xz, w, bias


def on_x(fn):
    """fn(x, w, bias) as a function of xz, w, bias."""
    return lambda xz, w, bias: fn(xz[..., :w.shape[1]], w, bias)


def value_and_grads(fn, inputs, gout):
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    y = fn(*leaves)
    return y.detach(), torch.autograd.grad((y.to(gout.dtype) * gout).sum(), leaves)


def rel_err(a, b):
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def assert_agree(got, want, tol):
    (y, grads), (y_ref, grads_ref) = got, want
    errs = {"xc": rel_err(y, y_ref)}
    errs.update({"d" + n: rel_err(g, r) for n, g, r in zip(("xz", "w", "bias"), grads, grads_ref)})
    assert max(errs.values()) <= tol, {k: f"{v:.1e}" for k, v in errs.items()}


# (B, L, E, W): L = 1, L shorter than the taps, L not a multiple of the chunk, E not a multiple of
# the block, W = 1, 3, 4.
SMALL = [(2, 7, 5, 4), (1, 1, 3, 4), (2, 3, 20, 4), (3, 13, 16, 3), (1, 6, 4, 1), (2, 9, 33, 4)]
GPU = [(16, 250, 256, 4), (64, 33, 256, 4), (3, 100, 200, 4)]


def _check_against_loop(shape, tol=TOL):
    Bsz, L, E, _ = shape
    xz, w, bias = make_inputs(*shape, seed=sum(shape))
    gout = torch.randn(2, Bsz, L, E, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    want = value_and_grads(on_x(loop_conv), (xz, w, bias), gout)
    got = value_and_grads(on_x(ct.conv_silu_bidir), [t.to(DEVICE, torch.float32) for t in (xz, w, bias)],
                          gout.to(DEVICE, torch.float32))
    assert_agree(got, want, tol)


@pytest.mark.parametrize("shape", SMALL, ids=lambda s: "B{}-L{}-E{}-W{}".format(*s))
def test_forward_and_gradients_match_float64_loop(shape, small_units):
    _check_against_loop(shape)


@pytest.mark.parametrize("shape", [(2, 70, 70, 4)] + (GPU if CUDA else []), ids=lambda s: "B{}-L{}-E{}-W{}".format(*s))
def test_module_defaults_match_float64_loop(shape):
    """The launch training uses (module defaults: a chunk of 64 steps, 64 channels a block)."""
    _check_against_loop(shape)


def test_bimamba_torch_path_matches_float64_loop():
    """The fused path's torch operations (the default) compute the same definition."""
    cfg = ModelConfig.preset("xs", n_filters=8, d_state=4)
    layer = BiMamba(cfg).double()
    E = layer.d_inner
    x = make_inputs(2, 11, E, cfg.d_conv, seed=5)[0][..., :E]
    w = torch.stack([layer.conv1d.weight[:, 0], layer.conv1d_b.weight[:, 0]])
    bias = torch.stack([layer.conv1d.bias, layer.conv1d_b.bias])
    assert rel_err(F.silu(layer._bidirectional_conv(x)), loop_conv(x, w, bias)) <= 1e-12


def test_bfloat16_input_keeps_dtypes_and_stays_close(small_units):
    xz, w, bias = make_inputs(2, 9, 20, 4, seed=7)
    xb = xz.to(DEVICE, torch.bfloat16)
    gout = torch.randn(2, 2, 9, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    got = value_and_grads(on_x(ct.conv_silu_bidir), [xb, w.to(DEVICE, torch.float32), bias.to(DEVICE, torch.float32)],
                          gout.to(DEVICE, torch.bfloat16))
    want = value_and_grads(on_x(loop_conv), (xb.double().cpu(), w, bias), gout.to(torch.bfloat16).double())
    assert got[0].dtype == torch.bfloat16 and got[1][0].dtype == torch.bfloat16
    assert got[1][1].dtype == torch.float32 and got[1][2].dtype == torch.float32
    assert_agree(got, want, 1e-2)   # xc and dx rounded to bfloat16 (2⁻⁸ relative)


def test_custom_op_registration_passes_opcheck():
    """Schema, fake (meta) implementation and autograd registration, as torch.compile needs them."""
    xz, w, bias = (t.to(DEVICE, torch.float32) for t in make_inputs(2, 5, 8, 4, seed=2))
    torch.library.opcheck(ct._conv2_fwd_op, (xz[..., :8].contiguous().requires_grad_(), w.requires_grad_(),
                                             bias.requires_grad_()),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


@pytest.mark.parametrize("shape", [(0, 5, 8), (2, 0, 8)])
def test_empty_batch_or_length_gives_empty_output_and_zero_weight_gradients(shape):
    x = torch.randn(*shape, device=DEVICE, requires_grad=True)
    w = torch.randn(2, 8, 4, device=DEVICE, requires_grad=True)
    bias = torch.randn(2, 8, device=DEVICE, requires_grad=True)
    y = ct.conv_silu_bidir(x, w, bias)
    assert y.shape == (2, *shape)
    y.sum().backward()
    assert x.grad.shape == x.shape and not w.grad.any() and not bias.grad.any()


@pytest.mark.parametrize("case, exc, words", [
    ("x_2d", ValueError, "x must be [B, L, E]"),
    ("w_wrong_E", ValueError, "w must be [2, E, W]"),
    ("bias_wrong", ValueError, "bias must be [2, E]"),
    ("int_x", TypeError, "x must be float32/float16/bfloat16"),
    ("float64_w", TypeError, "w must be float32/float16/bfloat16"),
])
def test_bad_inputs_raise_clear_errors(case, exc, words):
    xz, w, bias = (t.to(DEVICE, torch.float32) for t in make_inputs(2, 5, 8, 4, seed=2))
    x = xz[..., :8]
    if case == "x_2d":
        x = x[0]
    elif case == "w_wrong_E":
        w = w[:, :5]
    elif case == "bias_wrong":
        bias = bias[0]
    elif case == "int_x":
        x = x.long()
    elif case == "float64_w":
        w = w.double()
    with pytest.raises(exc, match=words.replace("[", r"\[").replace("]", r"\]")):
        ct.conv_silu_bidir(x, w, bias)
