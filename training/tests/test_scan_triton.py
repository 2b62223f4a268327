"""Tests of the fused Triton selective scan (mambasep_ref/scan_triton.py).

Glossary: B sequences, L steps, E channels, M state size.

Runs on CUDA when a GPU is present; otherwise under Triton's CPU interpreter (TRITON_INTERPRET=1,
set here before the module is imported) on tiny shapes; skipped with the reason when Triton
does not import. The ground truth is a plain loop over time in float64 (`loop_scan`); the
kernel (float32) must agree within 1e-5 relative (max |a − b| / max |b|) on y and on the
gradients of all six inputs, taken with torch.autograd.grad of a random weighted sum of y.
"""

from __future__ import annotations

import pytest
import torch

from support import triton_kernel_modules

(st,) = triton_kernel_modules("scan_triton")
import triton  # noqa: E402 (after the interpreter is set up)
import triton.language as tl  # noqa: E402

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
TOL = 1e-5
GRAD_NAMES = ("u", "delta", "A", "Bm", "Cm", "D")


# MARK: - Helpers


def loop_scan(u, delta, A, Bm, Cm, D):
    """The definition: h_t = exp(delta_t·A)·h_{t-1} + delta_t·Bm_t·u_t, y_t = Cm_t·h_t + D·u_t."""
    Bsz, L, E = u.shape
    h = u.new_zeros(Bsz, E, A.shape[1])  # [B, E, M]
    ys = []
    for t in range(L):
        dA = torch.exp(delta[:, t, :, None] * A)  # [B, E, M]
        h = dA * h + (delta[:, t] * u[:, t])[:, :, None] * Bm[:, t, None, :]  # [B, E, M]
        ys.append((h * Cm[:, t, None, :]).sum(-1) + D * u[:, t])  # [B, E]
    return torch.stack(ys, 1) if ys else u.new_zeros(Bsz, 0, E)  # [B, L, E]


def make_inputs(Bsz, L, E, M, seed, dtype=torch.float64):
    """Inputs like a Mamba layer's: u, Bm, Cm ~ N(0,1), delta = softplus(N(−1, 1)), A = −[1..M]·jitter."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(Bsz, L, E, generator=g, dtype=dtype)  # [B, L, E]
    delta = torch.nn.functional.softplus(torch.randn(Bsz, L, E, generator=g, dtype=dtype) - 1)  # [B, L, E]
    A = -torch.arange(1, M + 1, dtype=dtype).repeat(E, 1) * torch.exp(0.3 * torch.randn(E, M, generator=g, dtype=dtype))
    Bm = torch.randn(Bsz, L, M, generator=g, dtype=dtype)  # [B, L, M]
    Cm = torch.randn(Bsz, L, M, generator=g, dtype=dtype)  # [B, L, M]
    D = torch.randn(E, generator=g, dtype=dtype)  # [E]
    w = torch.randn(Bsz, L, E, generator=g, dtype=dtype)  # [B, L, E] weights of the loss
    return (u, delta, A, Bm, Cm, D), w


def value_and_grads(fn, inputs, w):
    """y = fn(*inputs) and the gradients of Σ w·y with respect to all six inputs."""
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    y = fn(*leaves)
    grads = torch.autograd.grad((y * w).sum(), leaves)
    return y.detach(), grads


def rel_err(a, b):
    """max |a − b| / max |b| (0 when both are all zero)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def assert_agree(got, want, tol=TOL, what=""):
    (y, grads), (y_ref, grads_ref) = got, want
    errs = {"y": rel_err(y, y_ref)}
    errs.update({f"d{n}": rel_err(g, r) for n, g, r in zip(GRAD_NAMES, grads, grads_ref)})
    bad = {k: f"{v:.2e}" for k, v in errs.items() if not v <= tol}
    assert not bad, f"{what}: relative error above {tol}: {bad} (all: {errs})"


def to_device(inputs, dtype=torch.float32):
    return [x.to(device=DEVICE, dtype=dtype) for x in inputs]


# MARK: - Agreement with the definition

# (B, L, E, M, block_e): L = 1, E not a multiple of BLOCK_E, M = 4 / 16 / not a power of two.
SMALL_SHAPES = [
    (2, 7, 40, 4, 16),
    (1, 1, 24, 16, None),
    (3, 13, 33, 16, None),
    (2, 6, 20, 3, 16),
    (1, 17, 16, 16, 16),
]
# Training-like shapes, GPU only (the interpreter would take minutes).
GPU_SHAPES = [
    (4, 250, 256, 16, None),
    (64, 33, 256, 16, None),
    (3, 100, 200, 16, 64),
]
each_shape = pytest.mark.parametrize("shape", SMALL_SHAPES + (GPU_SHAPES if CUDA else []),
                                     ids=lambda s: "B{}-L{}-E{}-M{}-be{}".format(*s))


@each_shape
def test_forward_and_gradients_match_float64_loop(shape):
    Bsz, L, E, M, block_e = shape
    inputs, w = make_inputs(Bsz, L, E, M, seed=Bsz * 1000 + L)
    want = value_and_grads(loop_scan, inputs, w)

    def kernel(u, delta, A, Bm, Cm, D):
        if block_e is None:
            return st.selective_scan_triton(u, delta, A, Bm, Cm, D)
        return _FixedBlock.apply(u, delta, A, Bm, Cm, D, block_e)

    got = value_and_grads(kernel, to_device(inputs), w.to(DEVICE, torch.float32))
    assert got[0].dtype == torch.float32 and got[0].shape == (Bsz, L, E)
    assert_agree(got, want, what=f"shape {shape}")


class _FixedBlock(torch.autograd.Function):
    """The kernels with an explicit BLOCK_E (so that E is not a multiple of it)."""

    @staticmethod
    def forward(ctx, u, delta, A, Bm, Cm, D, block_e):
        ctx.save_for_backward(u, delta, A, Bm, Cm, D)
        ctx.block_e = block_e
        return st._scan_forward(u, delta, A, Bm, Cm, D, block_e=block_e)

    @staticmethod
    def backward(ctx, dy):
        u, delta, A, Bm, Cm, D = ctx.saved_tensors
        return (*st._scan_backward(u, delta, A, Bm, Cm, D, dy,
                                   block_e=ctx.block_e), None)


def test_matches_project_reference_selective_scan_ref():
    scan = pytest.importorskip("mambasep_ref.scan", reason="mambasep_ref/scan.py is not there yet")
    inputs, w = make_inputs(2, 11, 24, 16, seed=7, dtype=torch.float32)
    want = value_and_grads(scan.selective_scan_ref, to_device(inputs), w.to(DEVICE))
    got = value_and_grads(st.selective_scan_triton, to_device(inputs), w.to(DEVICE))
    assert_agree(got, want, what="vs selective_scan_ref")


def test_segment_length_of_recomputation_does_not_change_gradients():
    """Checkpoint spacing T = 1, 3, the default (8) and L must all give the same gradients (to rounding)."""
    Bsz, L, E, M = 2, 19, 16, 4
    inputs, w = make_inputs(Bsz, L, E, M, seed=3)
    u, delta, A, Bm, Cm, D = to_device(inputs)
    dy = w.to(DEVICE, torch.float32)  # [B, L, E]
    base = st._scan_backward(u, delta, A, Bm, Cm, D, dy, seg_len=L)
    for T in (1, 3, None):
        other = st._scan_backward(u, delta, A, Bm, Cm, D, dy, seg_len=T)
        for name, a, b in zip(GRAD_NAMES, other, base):
            assert rel_err(a, b) <= 1e-6, f"seg_len={T}: d{name} differs"


# MARK: - Both directions in one launch (selective_scan_bidir)


def bidir_loop(u, delta, A, Bm, Cm, D):
    """The definition of the two-direction scan: direction 0 as `loop_scan`, direction 1 the
    scan of the time-reversed sequence flipped back (as BiMamba's reference path computes it)."""
    y0 = loop_scan(u[0], delta[0], A[0], Bm[0], Cm[0], D[0])
    y1 = loop_scan(u[1].flip(1), delta[1].flip(1), A[1], Bm[1].flip(1), Cm[1].flip(1), D[1]).flip(1)
    return torch.stack([y0, y1])  # [2, B, L, E]


def make_bidir_inputs(Bsz, L, E, M, seed, dtype=torch.float64):
    (a, w0), (b, w1) = make_inputs(Bsz, L, E, M, seed, dtype), make_inputs(Bsz, L, E, M, seed + 1, dtype)
    return [torch.stack([x, y]) for x, y in zip(a, b)], torch.stack([w0, w1])


BACKWARDS = [pytest.param({}, id="triton"), pytest.param({"keep_ck": True}, id="triton+ck"),
             pytest.param({"keep_ck": True, "ck_low": True}, id="triton+ck+cb")]   # float32: checkpoints stay float32
if CUDA:   # Gluon has no CPU interpreter
    BACKWARDS += [pytest.param({"keep_ck": True, "gluon": 1}, id="gluon"),
                  pytest.param({"keep_ck": True, "gluon": 2}, id="gluon2"),
                  pytest.param({"keep_ck": True, "gluon": 1, "gluon_layout": 1}, id="gluon+mt"),
                  pytest.param({"keep_ck": True, "gluon": 1, "unroll": True}, id="gluon+ur"),
                  pytest.param({"keep_ck": True, "gluon": 2, "unroll": True}, id="gluon2+ur")]


@each_shape
@pytest.mark.parametrize("opts", BACKWARDS)
def test_bidir_forward_and_gradients_match_float64_loops(shape, opts):
    """Output and the gradients of all six stacked inputs (both directions) within 1e-5, with
    the backward recomputing every state, reading the forward's checkpoints, or in Gluon."""
    Bsz, L, E, M, block_e = shape
    inputs, w = make_bidir_inputs(Bsz, L, E, M, seed=Bsz * 1000 + L)
    want = value_and_grads(bidir_loop, inputs, w)
    block_e = 32 if opts.get("gluon_layout") else block_e   # the states-in-thread tile is 32 channels wide
    got = value_and_grads(lambda *a: st.selective_scan_bidir(*a, block_e=block_e or 32, **opts), to_device(inputs),
                          w.to(DEVICE, torch.float32))
    assert got[0].dtype == torch.float32 and got[0].shape == (2, Bsz, L, E)
    assert_agree(got, want, what=f"bidir {shape}")


def test_bidir_direction_one_runs_backwards_in_time_and_direction_zero_matches_single_scan():
    inputs, _ = make_bidir_inputs(1, 9, 16, 4, seed=21, dtype=torch.float32)
    inputs = to_device(inputs)
    y = st.selective_scan_bidir(*inputs)
    # two compiled kernels: on a GPU their float32 rounding may differ in the last bits
    assert rel_err(y[0], st.selective_scan_triton(*(x[0] for x in inputs))) <= 1e-6
    u2 = inputs[0].clone()
    u2[1, :, 5] += 1.0
    y2 = st.selective_scan_bidir(u2, *inputs[1:])
    assert torch.equal(y[0], y2[0]) and torch.equal(y[1, :, 6:], y2[1, :, 6:])
    assert not torch.equal(y[1, :, :6], y2[1, :, :6])


def test_bidir_strided_views_and_bfloat16_inputs():
    """Bm/Cm slices of one projection output (as BiMamba passes them) and bf16 u, Bm, Cm."""
    inputs, w = make_bidir_inputs(2, 6, 16, 4, seed=13, dtype=torch.float32)
    u, delta, A, Bm, Cm, D = to_device(inputs)
    w = w.to(DEVICE)
    dbc = torch.cat([torch.randn_like(Bm[..., :3]), Bm, Cm], dim=-1)  # [2, B, L, 3+2M]
    views = [u, delta, A, dbc[..., 3:7], dbc[..., 7:], D]
    assert not views[3].is_contiguous()
    assert_agree(value_and_grads(st.selective_scan_bidir, views, w),
                 value_and_grads(st.selective_scan_bidir, [u, delta, A, Bm, Cm, D], w), tol=1e-6, what="strided")
    low = [x.to(torch.bfloat16) if i in (0, 3, 4) else x for i, x in enumerate([u, delta, A, Bm, Cm, D])]
    leaves = [x.detach().requires_grad_() for x in low]
    grads = torch.autograd.grad((st.selective_scan_bidir(*leaves) * w).sum(), leaves)
    assert all(g.dtype == x.dtype and g.shape == x.shape for g, x in zip(grads, leaves))


@pytest.mark.parametrize("opts", [pytest.param({}, id="triton")]
                         + ([pytest.param({"gluon": 1}, id="gluon")] if CUDA else []))
def test_bidir_checkpoints_in_the_inputs_dtype_halve_them_and_stay_close(opts):
    """ck_low: bf16 u gets bf16 checkpoints (half the bytes); the gradients, recomputed from
    states rounded to bf16, stay within bf16 rounding of those from float32 checkpoints."""
    inputs, w = make_bidir_inputs(2, 21, 16, 4, seed=17, dtype=torch.float32)
    u, delta, A, Bm, Cm, D = to_device(inputs)
    low = [u.to(torch.bfloat16), delta, A, Bm.to(torch.bfloat16), Cm.to(torch.bfloat16), D]
    cks = [st._scan2_fwd_op(*low, D.new_empty(0), u.new_empty(0), 16, 1, 16, 1, 8, True, ck_low, 0,
                            opts.get("gluon", 0), 0, False)[2] for ck_low in (False, True)]
    assert cks[0].dtype == torch.float32 and cks[1].dtype == torch.bfloat16 and cks[0].shape == cks[1].shape
    assert rel_err(cks[1], cks[0]) <= 2.0**-7
    res = [value_and_grads(lambda *a: st.selective_scan_bidir(*a, block_e=16, keep_ck=True, ck_low=ck_low, **opts),
                           low, w.to(DEVICE)) for ck_low in (False, True)]
    assert torch.equal(res[0][0], res[1][0])          # the forward does not read them
    for name, g_low, g in zip(GRAD_NAMES, res[1][1], res[0][1]):
        assert rel_err(g_low, g) <= 2e-2, name


def test_row_alignment_the_gluon_kernels_are_promised():
    """`_row_align`: the bytes every fetched row start is a multiple of, from the data pointers,
    the strides and a channel block's offset: 16 for BiMamba's XS tensors (Bm, Cm column slices
    of a [.., R + 2M = 40] bf16 projection), less where a pointer or stride says so."""
    u = torch.zeros(2, 3, 5, 64, dtype=torch.bfloat16)                  # [2, B, L, E]
    dbc = torch.zeros(2, 3, 5, 40, dtype=torch.bfloat16)                # [2, B, L, R+2M], R = 8, M = 16
    Bm, Cm = dbc[..., 8:24], dbc[..., 24:]
    assert st._row_align(32, (u, u.float()), (Bm, Cm)) == 16
    assert st._row_align(32, (u, u[:1].expand(2, -1, -1, -1)), (Bm, Cm)) == 16   # direction stride 0
    assert st._row_align(32, (u,), (dbc[..., 4:20],)) == 8               # R = 4: 8 bytes in
    rows72 = torch.zeros(2, 3, 5, 36, dtype=torch.bfloat16)            # rows of 72 bytes
    assert st._row_align(32, (u,), (rows72[..., 4:20],)) == 8
    assert st._row_align(32, (u[..., 1:33],), ()) == 2                   # a row one element in
    assert st._row_align(4, (u,), ()) == 8                               # blocks of 4 channels: 8 bytes apart
    assert st._row_align(32, (u[..., ::2],), ()) == 4                    # every other channel: 4 bytes apart


def test_backward_stores_gradients_in_the_inputs_dtypes_as_rounded_float32():
    """own_dtypes: du and ddelta written in u's and delta's dtype by the kernel are the float32
    results rounded: on a GPU as `.to()` rounds them (to nearest even, bit for bit), under the
    interpreter (whose conversion truncates) within one bfloat16 step. With dt_bias too: the
    kernel sums dt_bias's gradient in float32 before rounding ddt, so it equals the sum of the
    float32 ddt the kernel gives without own_dtypes."""
    inputs, w = make_bidir_inputs(2, 9, 16, 4, seed=5, dtype=torch.float32)
    u, delta, A, Bm, Cm, D = to_device(inputs)
    u, delta = u.to(torch.bfloat16), delta.to(torch.bfloat16)
    dy = w.to(DEVICE, torch.float32)
    wide = st._launch_backward(u, delta, A, Bm, Cm, D, dy)
    own = st._launch_backward(u, delta, A, Bm, Cm, D, dy, own_dtypes=True)
    assert own[0].dtype == own[1].dtype == torch.bfloat16
    for got, want in zip(own[:2], wide[:2]):
        if CUDA:
            assert torch.equal(got, want.to(torch.bfloat16))
        else:
            assert ((got.float() - want).abs() <= want.abs() * 2.0**-7).all()
    bias = torch.randn(2, 16, generator=torch.Generator().manual_seed(6)).to(u.device) * 0.5
    wide = st._launch_backward(u, delta, A, Bm, Cm, D, dy, dt_bias=bias)
    own = st._launch_backward(u, delta, A, Bm, Cm, D, dy, dt_bias=bias, own_dtypes=True)
    assert own[1].dtype == torch.bfloat16 and wide[1].dtype == own[6].dtype == torch.float32
    assert ((own[1].float() - wide[1]).abs() <= wide[1].abs() * 2.0**-7).all()
    torch.testing.assert_close(own[6], wide[1].double().sum((1, 2)).float(), rtol=1e-5, atol=1e-6)
    assert st._launch_backward(u, delta, A, Bm, Cm, D, dy)[6] is None


def test_bidir_custom_op_registration_passes_opcheck():
    inputs, _ = make_bidir_inputs(2, 5, 16, 4, seed=2, dtype=torch.float32)
    inputs = [x.requires_grad_() for x in to_device(inputs)]
    u, delta, A, Bm, Cm, D = inputs
    bias = (torch.randn(2, 16, device=u.device) * 0.5).requires_grad_()
    z = torch.randn(2, 5, 16, device=u.device).requires_grad_()
    for keep in (False, True):
        for b in (D.new_empty(0), bias):                  # delta as given, or softplus(dt + bias)
            for zz in (u.new_empty(0), z):                # y of both directions, or the gated merge
                torch.library.opcheck(st._scan2_fwd_op, (*inputs, b, zz, 16, 1, 8, 1, 3, keep, keep, 168 if keep else 0,
                                                                 int(keep and CUDA), 0, keep and CUDA),
                                      test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


def test_bidir_bad_inputs_raise_clear_errors():
    inputs, _ = make_bidir_inputs(2, 3, 8, 4, seed=2, dtype=torch.float32)
    u, delta, A, Bm, Cm, D = to_device(inputs)
    with pytest.raises(ValueError, match=r"u must be \[2, B, L, E\]"):
        st.selective_scan_bidir(u[0], delta, A, Bm, Cm, D)
    with pytest.raises(ValueError, match="Bm must have a leading direction axis"):
        st.selective_scan_bidir(u, delta, A, Bm[:1], Cm, D)
    with pytest.raises(ValueError, match="D must have shape"):
        st.selective_scan_bidir(u, delta, A, Bm, Cm, D[:, :5])
    with pytest.raises(ValueError, match="gluon reads the forward's checkpoints"):
        st.selective_scan_bidir(u, delta, A, Bm, Cm, D, gluon=1)
    with pytest.raises(ValueError, match="gluon must be 0"):
        st.selective_scan_bidir(u, delta, A, Bm, Cm, D, keep_ck=True, gluon=3)
    with pytest.raises(ValueError, match="unroll is the Gluon backward's"):
        st.selective_scan_bidir(u, delta, A, Bm, Cm, D, keep_ck=True, unroll=True)
    with pytest.raises(ValueError, match="gluon_layout must be 0, or 1 with gluon"):
        st.selective_scan_bidir(u, delta, A, Bm, Cm, D, keep_ck=True, gluon_layout=1)
    with pytest.raises(ValueError, match="ck_low is the dtype of the forward's checkpoints"):
        st.selective_scan_bidir(u, delta, A, Bm, Cm, D, ck_low=True)
    if not CUDA:
        with pytest.raises(RuntimeError, match="Gluon kernels need CUDA tensors"):
            st.selective_scan_bidir(u, delta, A, Bm, Cm, D, keep_ck=True, gluon=1)


# MARK: - Properties


@triton.jit
def _elementwise_kernel(x_ptr, y_ptr, n, SIGMOID: tl.constexpr, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + i, mask=i < n, other=0.0)
    y = st._sigmoid(x) if SIGMOID else st._softplus(x)
    tl.store(y_ptr + i, y, mask=i < n)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")   # the interpreter's numpy at e^(1e38): inf, as meant
@pytest.mark.parametrize("fn", ["softplus", "sigmoid"])
def test_softplus_and_sigmoid_helpers_are_float32_accurate(fn):
    """The kernels' softplus (a polynomial for log1p) and sigmoid (exp2 and an approximate
    division) against float64 over −40..40, ±0 and the ends of float32: within 1e-6 + 1e-7·|x|
    relative. e^−|x| as exp2 of the float32 product |x|·log2(e) carries that product's rounding,
    ≈ 6e-8·|x| relative (under the interpreter the rest is ≈ 1e-7; on a GPU exp2 and the
    division add a few ulp)."""
    x = torch.cat([torch.linspace(-40, 40, 20001, dtype=torch.float64),
                   torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e38, -1e38], dtype=torch.float64)])
    xf = x.to(DEVICE, torch.float32)
    y = torch.empty_like(xf)
    _elementwise_kernel[(triton.cdiv(x.numel(), 1024),)](xf, y, x.numel(), SIGMOID=fn == "sigmoid", BLOCK=1024)
    ref = torch.sigmoid(xf.double().cpu()) if fn == "sigmoid" else torch.nn.functional.softplus(xf.double().cpu())
    excess = (y.double().cpu() - ref).abs() / ref.abs().clamp_min(1e-300) - (1e-6 + 1e-7 * x.abs().clamp_max(1e3))
    assert torch.isfinite(y).all() and excess.max().item() <= 0, x[excess.argmax()].item()


def test_strided_inputs_give_the_same_result():
    """Non-contiguous views: u a slice of a wider tensor, delta L-major, A transposed, D strided."""
    Bsz, L, E, M = 2, 5, 24, 4
    inputs, w = make_inputs(Bsz, L, E, M, seed=11, dtype=torch.float32)
    u, delta, A, Bm, Cm, D = to_device(inputs)
    wide = torch.cat([u, torch.randn_like(u)], dim=-1)  # [B, L, 2E]
    u_view = wide[..., :E]  # [B, L, E] with stride 2E along L
    delta_view = delta.transpose(0, 1).contiguous().transpose(0, 1)  # [B, L, E], L-major storage
    dbc = torch.cat([Bm, Cm], dim=-1)  # [B, L, 2M]
    Bm_view, Cm_view = dbc[..., :M], dbc[..., M:]
    A_view = A.t().contiguous().t()  # [E, M] with E the fast axis
    D_view = torch.stack([D, D], dim=1)[:, 0]  # [E] with stride 2
    assert not u_view.is_contiguous() and not delta_view.is_contiguous()
    assert not A_view.is_contiguous() and not D_view.is_contiguous()
    w = w.to(DEVICE)
    got = value_and_grads(st.selective_scan_triton, [u_view, delta_view, A_view, Bm_view, Cm_view, D_view], w)
    want = value_and_grads(st.selective_scan_triton, [u, delta, A, Bm, Cm, D], w)
    assert_agree(got, want, tol=1e-6, what="strided")


def test_half_precision_inputs_are_widened_and_grads_keep_dtype():
    Bsz, L, E, M = 2, 6, 32, 4
    inputs, w = make_inputs(Bsz, L, E, M, seed=5, dtype=torch.float32)
    u, delta, A, Bm, Cm, D = to_device(inputs)
    low = [x.to(torch.bfloat16) for x in (u, delta, Bm, Cm)]
    leaves = [low[0], low[1], A, low[2], low[3], D]
    leaves = [x.detach().requires_grad_() for x in leaves]
    y = st.selective_scan_triton(*leaves)
    assert y.dtype == torch.float32
    grads = torch.autograd.grad((y * w.to(DEVICE)).sum(), leaves)
    for x, g in zip(leaves, grads):
        assert g.dtype == x.dtype and g.shape == x.shape
    # Same numbers as the float32 kernel on the widened values.
    widened = [low[0].float(), low[1].float(), A, low[2].float(), low[3].float(), D]
    y32 = st.selective_scan_triton(*widened)
    assert rel_err(y, y32) <= 1e-6


def test_zero_delta_gives_skip_only_and_outputs_depend_only_on_the_past():
    Bsz, L, E, M = 1, 8, 16, 4
    inputs, _ = make_inputs(Bsz, L, E, M, seed=9, dtype=torch.float32)
    u, delta, A, Bm, Cm, D = to_device(inputs)
    y0 = st.selective_scan_triton(u, torch.zeros_like(delta), A, Bm, Cm, D)
    assert rel_err(y0, u * D) <= 1e-7
    # Causality: changing step 5 leaves steps 0..4 untouched.
    u2 = u.clone()
    u2[:, 5] += 1.0
    y, y2 = st.selective_scan_triton(u, delta, A, Bm, Cm, D), st.selective_scan_triton(u2, delta, A, Bm, Cm, D)
    assert torch.equal(y[:, :5], y2[:, :5]) and not torch.equal(y[:, 5:], y2[:, 5:])


def test_broadcast_upstream_gradient_from_plain_sum():
    """y.sum() hands the backward a stride-0 dy; the result must equal an explicit ones weighting."""
    inputs, _ = make_inputs(2, 9, 24, 4, seed=4, dtype=torch.float32)
    inputs = to_device(inputs)
    leaves = [x.clone().requires_grad_() for x in inputs]
    grads = torch.autograd.grad(st.selective_scan_triton(*leaves).sum(), leaves)
    _, want = value_and_grads(st.selective_scan_triton, inputs, torch.ones(2, 9, 24, device=DEVICE))
    for name, g, r in zip(GRAD_NAMES, grads, want):
        assert rel_err(g, r) <= 1e-7, f"d{name}"


def test_empty_length_gives_empty_output_and_zero_gradients():
    inputs, _ = make_inputs(2, 0, 8, 4, seed=1, dtype=torch.float32)
    leaves = [x.to(DEVICE).requires_grad_() for x in inputs]
    y = st.selective_scan_triton(*leaves)
    assert y.shape == (2, 0, 8)
    grads = torch.autograd.grad(y.sum(), leaves, allow_unused=True)
    assert all(g is None or not g.any() for g in grads)


# MARK: - Bad inputs


@pytest.mark.parametrize("case, exc, words", [
    ("u_2d", ValueError, "u must be [B, L, E]"),
    ("A_wrong_E", ValueError, "A must be [E, M]"),
    ("Bm_wrong_M", ValueError, "Bm must have shape"),
    ("D_wrong", ValueError, "D must have shape"),
    ("int_u", TypeError, "u must be floating point"),
    ("float64_delta", TypeError, "delta must be float32/float16/bfloat16"),
])
def test_bad_inputs_raise_clear_errors(case, exc, words):
    inputs, _ = make_inputs(2, 3, 8, 4, seed=2, dtype=torch.float32)
    u, delta, A, Bm, Cm, D = to_device(inputs)
    if case == "u_2d":
        u = u[0]
    elif case == "A_wrong_E":
        A = A[:5]
    elif case == "Bm_wrong_M":
        Bm = Bm[..., :3]
    elif case == "D_wrong":
        D = D[:7]
    elif case == "int_u":
        u = u.to(torch.int32)
    elif case == "float64_delta":
        delta = delta.double()
    with pytest.raises(exc) as info:
        st.selective_scan_triton(u, delta, A, Bm, Cm, D)
    assert words in str(info.value)
