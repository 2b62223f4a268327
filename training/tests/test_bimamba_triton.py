"""Tests of the fused bidirectional scan (mambasep_ref/bimamba_triton.py) and BiMamba's fused path.

Glossary: B sequences, L steps, E channels, M state size, T tile steps.

Runs on CUDA when a GPU is present; otherwise under Triton's CPU interpreter (TRITON_INTERPRET=1,
set before the kernels are defined) on tiny shapes. The ground truth is `bimamba_scan_ref` (the
plain-loop `selective_scan_ref` per direction, with flips) in float64; the float32 kernels must
agree within 1e-5 relative (max |a − b| / max |b|) on the output and on the gradients of all
eight inputs. bfloat16 inputs: within 2e-2 of the float64 definition on the rounded inputs (the
output is rounded to bfloat16, and direction 0's y is parked in it before the merge). The split
variant (TileConfig(kernel="split"): torch glue around scan_triton's kernels) is held to the same.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from support import triton_kernel_modules

# conv_triton too: BiMamba's fused path imports it when tiles +cv ask
st, bt, _ = triton_kernel_modules("scan_triton", "bimamba_triton", "conv_triton")
from mambasep_ref import scan as scan_mod  # noqa: E402
from mambasep_ref.config import ModelConfig  # noqa: E402
from mambasep_ref.losses import pit_loss  # noqa: E402
from mambasep_ref.mamba import BiMamba  # noqa: E402
from mambasep_ref.model import DPMamba  # noqa: E402

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
TOL = 1e-5
NAMES = ("u", "dt", "Bm", "Cm", "z", "A_log", "D", "dt_bias")


@pytest.fixture(autouse=True)
def _restore_config():
    cfg, impl = bt.tile_config(), scan_mod.get_scan_impl()
    yield
    bt.set_tile_config(cfg)
    scan_mod.set_scan_impl(impl)


# MARK: - Helpers


def make_inputs(Bsz, L, E, M, seed, dtype=torch.float64):
    """Inputs like a trained layer's: u, Bm, Cm, z ~ N(0,1); dt ~ N(−1,1) raw; A_log ≈ log(1..M)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    u = rnd(2, Bsz, L, E)  # [2, B, L, E]
    dt = rnd(2, Bsz, L, E) - 1.0  # [2, B, L, E]
    Bm, Cm = rnd(2, Bsz, L, M), rnd(2, Bsz, L, M)  # [2, B, L, M]
    z = rnd(Bsz, L, E)  # [B, L, E]
    A_log = torch.log(torch.arange(1, M + 1, dtype=dtype)).repeat(2, E, 1) + 0.3 * rnd(2, E, M)  # [2, E, M]
    D, dt_bias = rnd(2, E), rnd(2, E) - 2.0  # [2, E]
    w = rnd(Bsz, L, E)  # [B, L, E] weights of the loss
    return [u, dt, Bm, Cm, z, A_log, D, dt_bias], w


def value_and_grads(fn, inputs, w):
    leaves = [x.detach().clone().requires_grad_() for x in inputs]
    y = fn(*leaves)
    grads = torch.autograd.grad((y.to(w.dtype) * w).sum(), leaves)
    return y.detach(), grads


def rel_err(a, b):
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def errors(got, want):
    (y, grads), (y_ref, grads_ref) = got, want
    errs = {"y": rel_err(y, y_ref)}
    for n, g, r in zip(NAMES, grads, grads_ref):
        if r.abs().max() > 0:  # dA_log is exactly 0 when L = 1 (no earlier state)
            errs["d" + n] = rel_err(g, r)
        else:
            errs["d" + n] = g.abs().max().item()
    return errs


def assert_agree(got, want, tol=TOL, what=""):
    errs = errors(got, want)
    bad = {k: f"{v:.2e}" for k, v in errs.items() if not v <= tol}
    assert not bad, f"{what}: relative error above {tol}: {bad} (all: {errs})"


def tiles(T, block_e, bpg=0, ck=1):
    """A TileConfig with window length T for every sequence length (a checkpoint every ck windows)."""
    return bt.TileConfig(T=T, T_short=T, block_e=block_e, bpg=bpg, ck=ck)


def on_device(xs, dtype=torch.float32):
    return [x.to(device=DEVICE, dtype=dtype) for x in xs]


# MARK: - Agreement with the definition

# (B, L, E, M, T, block_e): L = 1, L not a multiple of T, E not a multiple of BLOCK_E, M = 3 / 4 / 16.
SMALL = [
    (2, 7, 5, 3, 4, 16),
    (1, 1, 4, 2, 4, 16),
    (2, 9, 20, 4, 2, 16),
    (1, 12, 16, 16, 4, 16),
]
GPU = [
    (4, 250, 256, 16, 16, 32),
    (64, 33, 256, 16, 8, 32),
    (3, 100, 200, 16, 16, 64),
]


@pytest.mark.parametrize("shape", SMALL + (GPU if CUDA else []),
                         ids=lambda s: "B{}-L{}-E{}-M{}-T{}-be{}".format(*s))
def test_forward_and_all_gradients_match_float64_definition(shape):
    Bsz, L, E, M, T, be = shape
    bt.set_tile_config(tiles(T, be))
    inputs, w = make_inputs(Bsz, L, E, M, seed=Bsz * 100 + L)
    want = value_and_grads(bt.bimamba_scan_ref, inputs, w)
    got = value_and_grads(bt.bimamba_scan, on_device(inputs), w.to(DEVICE, torch.float32))
    assert got[0].shape == (Bsz, L, E) and got[0].dtype == torch.float32
    assert_agree(got, want, what=f"shape {shape}")


@pytest.mark.parametrize("shape", SMALL + (GPU if CUDA else []),
                         ids=lambda s: "B{}-L{}-E{}-M{}-T{}-be{}".format(*s))
# +gl (the backward in Gluon) has no CPU interpreter: GPU only
@pytest.mark.parametrize("flags", ["", "+ck+sp+gm+r168"] + (["+ck", "+ck+sp+gm+gl", "+ck+gl2", "+ck+sp+gm+gl2",
                                                            "+ck+gl+mt", "+ck+sp+gm+gl2+mt", "+ck+gl+ur",
                                                            "+ck+sp+gm+gl2+ur"] if CUDA else []))
def test_split_variant_forward_and_all_gradients_match_float64_definition(shape, flags):
    Bsz, L, E, M, _, be = shape
    be = 32 if "+mt" in flags else be   # the states-in-thread tile is 32 channels wide
    bt.set_tile_config(bt.TileConfig.parse(f"S:{be}:1{flags}"))
    inputs, w = make_inputs(Bsz, L, E, M, seed=Bsz * 100 + L + 1)
    want = value_and_grads(bt.bimamba_scan_ref, inputs, w)
    got = value_and_grads(bt.bimamba_scan, on_device(inputs), w.to(DEVICE, torch.float32))
    assert got[0].shape == (Bsz, L, E) and got[0].dtype == torch.float32
    assert_agree(got, want, what=f"split{flags} {shape}")


def test_gated_merge_in_the_kernels_takes_a_strided_z_and_keeps_its_dtype():
    """z as BiMamba passes it (a column slice of the in_proj output, not contiguous) and in
    bfloat16: out has z's dtype and agrees with the torch gate and merge."""
    Bsz, L, E, M, _, be = SMALL[2]
    inputs, w = make_inputs(Bsz, L, E, M, seed=11)
    u, dt, Bm, Cm, z, A_log, D, dt_bias = on_device(inputs)
    wide = torch.cat([torch.zeros_like(z), z], dim=-1).to(torch.bfloat16)  # [B, L, 2E]
    zs = wide[..., E:]                                               # strided, like xz.chunk(2)[1]
    assert not zs.is_contiguous()
    outs = []
    for flags in ("", "+gm"):
        bt.set_tile_config(bt.TileConfig.parse(f"S:{be}:1{flags}"))
        outs.append(bt.bimamba_scan(u, dt, Bm, Cm, zs, A_log, D, dt_bias))
    assert outs[1].dtype == torch.bfloat16 and outs[1].shape == (Bsz, L, E)
    assert (outs[1].float() - outs[0].float()).abs().max() <= 1e-2 * outs[0].float().abs().max()


def test_split_with_its_own_backward_launch_matches_the_definition():
    """The backward's own BLOCK_E, warps and checkpoint spacing, checkpoints kept by the forward
    (+ck, tiled differently from the backward's), softplus in the kernels (+sp, the gradient
    reaching dt and dt_bias through them) and the gate and merge in the kernels (+gm, z's
    gradient through the op) change nothing."""
    Bsz, L, E, M, _, be = SMALL[0]
    inputs, w = make_inputs(Bsz, L, E, M, seed=7)
    want = value_and_grads(bt.bimamba_scan_ref, inputs, w)
    for spec in (f"S:{be}:1:{2 * be}:2:3", f"S:{2 * be}:1:{be}:1:1", f"S:{be}:1:{be}:1:3+ck",
                 f"S:{2 * be}:1:{be}:1+ck+sp", f"S:{be}:1+sp", f"S:{be}:1+gm", f"S:{be}:1:{2 * be}:1:2+ck+sp+gm"):
        bt.set_tile_config(bt.TileConfig.parse(spec))
        got = value_and_grads(bt.bimamba_scan, on_device(inputs), w.to(DEVICE, torch.float32))
        assert_agree(got, want, what=spec)


def test_tiles_specs():
    cfg = bt.TileConfig.parse("S:32:1:16:2:4")
    assert (cfg.block_e, cfg.num_warps, cfg.bwd_block_e, cfg.bwd_num_warps, cfg.seg) == (32, 1, 16, 2, 4)
    assert bt.TileConfig.parse("S:32:1:32:1").spec() == "S:32:1"
    c = bt.TileConfig.parse("S:32:1+sp+ck")
    assert (c.keep_ck, c.softplus, c.seg, c.spec()) == (True, True, 0, "S:32:1+ck+sp")
    assert bt.TileConfig.parse("split+sp").softplus and not bt.TileConfig.parse("split").softplus
    assert bt.TileConfig.parse("S:32:1+gm+sp").spec() == "S:32:1+sp+gm"
    c = bt.TileConfig.parse("S:32:1+r168+ck")
    assert (c.bwd_maxnreg, c.keep_ck, c.spec()) == (168, True, "S:32:1+ck+r168")
    assert bt.TileConfig.parse("split").bwd_maxnreg == 0
    c = bt.TileConfig.parse("S:32:1+gl+ck")
    assert (c.gluon, c.keep_ck, c.spec()) == (True, True, "S:32:1+ck+gl")
    assert not bt.TileConfig.parse("S:32:1+ck").gluon
    c = bt.TileConfig.parse("S:32:1+gl2+ck")
    assert (c.gluon, c.spec()) == (2, "S:32:1+ck+gl2")
    c = bt.TileConfig.parse("S:32:1+mt+sp+ck+gl")
    assert (c.gluon, c.gluon_layout, c.spec()) == (1, 1, "S:32:1+ck+sp+mt+gl")
    c = bt.TileConfig.parse("S:32:1+cv+gl+ck")
    assert (c.conv, c.gluon, c.spec()) == (True, 1, "S:32:1+ck+cv+gl")
    assert not bt.TileConfig.parse("S:32:1+ck+gl").conv and bt.TileConfig.parse("split+cv").conv
    c = bt.TileConfig.parse("S:32:1+cb+ck+gl")
    assert (c.ck_low, c.spec()) == (True, "S:32:1+ck+cb+gl")
    c = bt.TileConfig.parse("S:32:1+gl+ur+ck+cv")
    assert (c.unroll, c.spec()) == (True, "S:32:1+ck+cv+ur+gl")
    assert not bt.TileConfig.parse("S:32:1+ck+gl").unroll
    for spec, kernel, be, T, ck in (("4:64:1", "v4", 64, 4, 1), ("2:32:1:4", "v4", 32, 2, 4),
                                    ("split", "split", 32, None, None), ("S:64:2", "split", 64, None, None),
                                    ("S:32:1:64:2", "split", 32, None, None),
                                    ("S:32:1:16:1:4", "split", 32, None, None),
                                    ("S:32:1:16:1:8+ck", "split", 32, None, None),
                                    ("S:32:1+sp", "split", 32, None, None),
                                    ("S:32:1:32:1:4+ck+r128", "split", 32, None, None)):
        cfg = bt.TileConfig.parse(spec)
        assert (cfg.kernel, cfg.block_e) == (kernel, be), spec
        if kernel == "v4":
            assert (cfg.T, cfg.T_short, cfg.ck) == (T, T, ck)
        assert bt.TileConfig.parse(cfg.spec()).spec() == cfg.spec()
    for bad in ("", "4:64", "S:64", "4:x:1", "splat", "3:64:1", "S:32:1:16", "S:32:1:24:1", "S:32:1:16:1:-1",
                "S:32:1:16:1:8:1", "S:32:1+xx", "S:32:1+ck+ck", "4:64:1+ck", "S:32:1+r", "S:32:1+r7",
                "S:32:1+r256", "S:32:1+r100", "S:32:1+r128+r168", "4:64:1+r128", "S:32:1+gl", "4:64:1+gl",
                "S:32:1+ck+gl3", "S:32:1+ck+gl+gl2", "S:32:1+cv+cv", "4:64:1+cv", "S:32:1+cb", "S:32:1+ck+mt", "S:16:1+ck+gl+mt", "S:32:1:16:1+ck+gl+mt",
                "S:32:1+ck+ur", "S:32:1+ck+gl+ur+ur"):
        with pytest.raises(ValueError):
            bt.TileConfig.parse(bad)


def test_tile_length_and_sequences_per_program_do_not_change_results():
    """T = 2, 4, 8, 1 or 2 sequences per backward program (with a padding sequence), and a
    checkpoint every 1, 2 or 3 windows (11 steps: a last group shorter than the others) agree."""
    inputs, w = make_inputs(3, 11, 16, 4, seed=5, dtype=torch.float32)
    inputs, w = on_device(inputs), w.to(DEVICE)
    bt.set_tile_config(tiles(8, 16, 1))
    base = value_and_grads(bt.bimamba_scan, inputs, w)
    for T, bpg, ck in ((2, 2, 1), (4, 1, 1), (8, 2, 1), (2, 1, 3), (2, 2, 2), (4, 1, 2)):
        bt.set_tile_config(tiles(T, 16, bpg, ck))
        assert_agree(value_and_grads(bt.bimamba_scan, inputs, w), base, tol=1e-6,
                     what=f"T={T} bpg={bpg} ck={ck}")


def test_checkpoints_every_ck_windows():
    """ck = 3 keeps ⌈⌈9/2⌉/3⌉ = 2 checkpoints per direction, sequence and channel block."""
    bt.set_tile_config(tiles(2, 16, ck=3))
    inputs, _ = make_inputs(2, 9, 20, 4, seed=1, dtype=torch.float32)
    _, ws = bt._fwd_op(*on_device(inputs), True)
    assert ws.numel() == 2 * 2 * 2 * 2 * 4 * 16  # d, B, E/16 blocks, checkpoints, M, BLOCK_E
    with pytest.raises(ValueError, match="ck"):
        bt.TileConfig(ck=0)


def test_direction_one_scans_backwards_in_time():
    """Changing step 5 of direction 0's input moves only steps ≥ 5; of direction 1's, only ≤ 5."""
    bt.set_tile_config(tiles(4, 16))
    inputs, _ = make_inputs(1, 9, 16, 4, seed=9, dtype=torch.float32)
    inputs = on_device(inputs)
    y = bt.bimamba_scan(*inputs)
    for d, same, moved in ((0, slice(0, 5), slice(5, 9)), (1, slice(6, 9), slice(0, 6))):
        u2 = inputs[0].clone()
        u2[d, :, 5] += 1.0
        y2 = bt.bimamba_scan(u2, *inputs[1:])
        assert torch.equal(y[:, same], y2[:, same]), f"direction {d}: steps outside its past moved"
        assert not torch.equal(y[:, moved], y2[:, moved])


def test_strided_views_give_the_same_result():
    """Bm/Cm slices of one projection output and z a slice of [x | z], as BiMamba passes them."""
    bt.set_tile_config(tiles(4, 16))
    inputs, w = make_inputs(2, 6, 16, 4, seed=11, dtype=torch.float32)
    u, dt, Bm, Cm, z, A_log, D, bias = on_device(inputs)
    w = w.to(DEVICE)
    dbc = torch.cat([torch.randn_like(Bm[..., :3]), Bm, Cm], dim=-1)  # [2, B, L, 3+2M]
    xz = torch.cat([torch.randn_like(z), z], dim=-1)  # [B, L, 2E]
    views = [u, dt, dbc[..., 3:7], dbc[..., 7:], xz[..., 16:], A_log, D, bias]
    assert not views[2].is_contiguous() and not views[4].is_contiguous()
    got = value_and_grads(bt.bimamba_scan, views, w)
    want = value_and_grads(bt.bimamba_scan, [u, dt, Bm, Cm, z, A_log, D, bias], w)
    assert_agree(got, want, tol=1e-6, what="strided")


def test_bfloat16_inputs_stay_close_and_gradients_keep_dtypes():
    bt.set_tile_config(tiles(4, 16))
    inputs, w = make_inputs(2, 10, 16, 4, seed=3)
    low = [x.to(torch.bfloat16) if i < 5 else x.float() for i, x in enumerate(inputs)]
    want = value_and_grads(bt.bimamba_scan_ref, [x.double() for x in low], w)
    got = value_and_grads(bt.bimamba_scan, [x.to(DEVICE) for x in low], w.to(DEVICE, torch.float32))
    assert got[0].dtype == torch.bfloat16
    for x, g in zip(low, got[1]):
        assert g.dtype == x.dtype and g.shape == x.shape
    errs = errors(got, want)
    assert max(errs.values()) <= 2e-2, errs


def test_no_gradients_no_checkpoints():
    """A forward without autograd writes no checkpoints; with autograd, 2·B·n_eblk·n_windows slots."""
    bt.set_tile_config(tiles(4, 16))
    inputs, _ = make_inputs(2, 9, 20, 4, seed=1, dtype=torch.float32)
    inputs = on_device(inputs)
    out, ws = bt._fwd_op(*inputs, False)
    assert ws.numel() == 0
    out2, ws2 = bt._fwd_op(*inputs, True)
    assert torch.equal(out, out2)
    assert ws2.numel() == 2 * 2 * 2 * 3 * 4 * 16  # d, B, E/16 blocks, ⌈9/4⌉ windows, M, BLOCK_E


def test_empty_batch_or_length_gives_empty_output():
    for Bsz, L in ((0, 5), (2, 0)):
        inputs, _ = make_inputs(Bsz, L, 8, 4, seed=1, dtype=torch.float32)
        leaves = [x.to(DEVICE).requires_grad_() for x in inputs]
        y = bt.bimamba_scan(*leaves)
        assert y.shape == (Bsz, L, 8)
        grads = torch.autograd.grad(y.sum(), leaves, allow_unused=True)
        assert all(g is None or not g.any() for g in grads)


def test_custom_op_registration_passes_opcheck():
    """Schema, fake (meta) implementation and autograd registration, as torch.compile needs them."""
    bt.set_tile_config(tiles(4, 16))
    inputs, _ = make_inputs(2, 5, 16, 4, seed=2, dtype=torch.float32)
    inputs = [x.requires_grad_() for x in on_device(inputs)]
    torch.library.opcheck(bt._fwd_op, (*inputs, True),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


@pytest.mark.skipif(not CUDA, reason="torch.compile of the op around Triton kernels: GPU only")
def test_compiles_without_graph_breaks():
    inputs, w = make_inputs(4, 40, 64, 16, seed=4, dtype=torch.float32)
    inputs, w = on_device(inputs), w.to(DEVICE)
    fn = torch.compile(lambda *a: bt.bimamba_scan(*a) * 2.0, fullgraph=True)
    assert_agree(value_and_grads(fn, inputs, w),
                 value_and_grads(lambda *a: bt.bimamba_scan(*a) * 2.0, inputs, w), tol=1e-6, what="compiled")


# MARK: - BiMamba and the whole model


def _perturbed(module, seed):
    """Move every parameter off its initial value (D = 1, conv bias, … would hide mistakes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g).to(p))
    return module


def _grads(module, fn):
    module.zero_grad(set_to_none=True)
    out = fn()
    out.backward()
    return out.detach(), {n: p.grad.clone() for n, p in module.named_parameters()}


@pytest.mark.parametrize("kernel", ["v4", "split", "split+cv"])
def test_bimamba_fused_path_matches_reference_path(kernel):
    """Output, input gradient and all 16 parameter gradients of one BiMamba layer (conv weights and
    dt biases of both directions among them), float32; +cv: the convolutions in conv_triton."""
    bt.set_tile_config(tiles(4, 16) if kernel == "v4" else bt.TileConfig.parse(kernel.replace("split", "S:16:1")))
    cfg = ModelConfig.preset("xs", n_filters=8, d_state=4)
    torch.manual_seed(0)
    layer = _perturbed(BiMamba(cfg), 1).to(DEVICE)
    h = torch.randn(3, 10, 8, device=DEVICE)
    w = torch.randn(3, 10, 8, device=DEVICE)
    res = {}
    for impl in ("ref", "fused"):
        scan_mod.set_scan_impl(impl)
        hh = h.clone().requires_grad_()
        y, g = _grads(layer, lambda: (layer(hh) * w).sum())
        res[impl] = (hh.grad, g)
    errs = {"h": rel_err(res["fused"][0], res["ref"][0])}
    errs.update({n: rel_err(res["fused"][1][n], res["ref"][1][n]) for n in res["ref"][1]})
    assert len(errs) == 17 and max(errs.values()) <= TOL, errs


@pytest.mark.parametrize("kernel", ["v4", "split", "split+ck+sp+gm+r128", "split+cv"]
                         + (["split+ck+gl", "split+ck+gl2", "split+ck+gl+cv", "split+ck+cv+cb+gl"] if CUDA else []))
def test_bimamba_layer_traces_as_one_graph(kernel):
    """torch.compile(fullgraph=True) through BiMamba's fused path: the custom ops' fake
    implementations and autograd registrations trace without graph breaks (aot_eager: the same
    forward and backward graphs Inductor gets, run eagerly), with the eager path's numbers."""
    bt.set_tile_config(tiles(4, 16) if kernel == "v4" else bt.TileConfig.parse(kernel.replace("split", "S:16:1")))
    cfg = ModelConfig.preset("xs", n_filters=8, d_state=4)
    torch.manual_seed(2)
    layer = _perturbed(BiMamba(cfg), 5).to(DEVICE)
    scan_mod.set_scan_impl("fused")
    h = torch.randn(2, 9, 8, device=DEVICE)
    torch._dynamo.reset()
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    got = {}
    for name, fn in (("compiled", compiled), ("eager", layer)):
        hh = h.clone().requires_grad_()
        y, g = _grads(layer, lambda: fn(hh).square().sum())
        got[name] = (y, hh.grad)
    torch._dynamo.reset()
    assert rel_err(got["compiled"][0], got["eager"][0]) <= 1e-6
    assert rel_err(got["compiled"][1], got["eager"][1]) <= 1e-6


def test_bimamba_split_and_v4_paths_agree():
    """The whole layer through both variants of the fused path: output, input and parameter gradients."""
    cfg = ModelConfig.preset("xs", n_filters=8, d_state=4)
    torch.manual_seed(1)
    layer = _perturbed(BiMamba(cfg), 4).to(DEVICE)
    h = torch.randn(2, 11, 8, device=DEVICE)
    w = torch.randn(2, 11, 8, device=DEVICE)
    scan_mod.set_scan_impl("fused")
    res = {}
    for name, cfg_t in (("v4", tiles(4, 16)), ("split", bt.TileConfig(kernel="split", block_e=16))):
        bt.set_tile_config(cfg_t)
        hh = h.clone().requires_grad_()
        y, g = _grads(layer, lambda: (layer(hh) * w).sum())
        res[name] = (y, hh.grad, g)
    errs = {"y": rel_err(res["split"][0], res["v4"][0]), "h": rel_err(res["split"][1], res["v4"][1])}
    errs.update({n: rel_err(res["split"][2][n], res["v4"][2][n]) for n in res["v4"][2]})
    assert max(errs.values()) <= TOL, errs


@pytest.mark.skipif(CUDA, reason="the CPU's stand-in for the Gluon kernels")
def test_gluon_tiles_run_scan_triton_kernels_on_the_cpu():
    """Gluon has no interpreter: on the CPU, tiles with +gl and the Gluon kernels' own settings
    (+mt, +ur) run scan_triton's kernels with the same result as tiles without them."""
    cfg = ModelConfig.preset("xs", n_filters=8, d_state=4)
    torch.manual_seed(3)
    layer = _perturbed(BiMamba(cfg), 6)
    h = torch.randn(2, 11, 8)
    scan_mod.set_scan_impl("fused")
    res = {}
    for spec in ("S:32:1+ck", "S:32:1+ck+gl+ur", "S:32:1+ck+sp+mt+ur+gl2"):
        bt.set_tile_config(bt.TileConfig.parse(spec))
        hh = h.clone().requires_grad_()
        y, g = _grads(layer, lambda: layer(hh).square().sum())
        res[spec] = (y, hh.grad, g)
    for spec in ("S:32:1+ck+gl+ur", "S:32:1+ck+sp+mt+ur+gl2"):
        assert rel_err(res[spec][0], res["S:32:1+ck"][0]) <= TOL
        assert rel_err(res[spec][1], res["S:32:1+ck"][1]) <= TOL
        assert max(rel_err(res[spec][2][n], res["S:32:1+ck"][2][n]) for n in res[spec][2]) <= TOL


@pytest.mark.parametrize("kernel", ["v4", "split", "split+cv"] + (["split+ck+gl", "split+ck+gl2", "S:32:1+ck+sp+gm+gl+mt",
                                                                   "split+ck+gl+cv", "split+ck+cv+cb+gl"] if CUDA else []))
def test_whole_model_loss_and_parameter_gradients_match_reference_path(kernel):
    """A small DPMamba (1 block, 8 filters) on one batch: −PIT SI-SNR and every gradient (the
    Gluon kernels, the training default, on a GPU only)."""
    bt.set_tile_config(tiles(4, 16) if kernel == "v4" else bt.TileConfig.parse(kernel.replace("split", "S:16:1")))
    cfg = ModelConfig.preset("xs", n_filters=8, d_state=4, num_blocks=1, chunk_size=8)
    torch.manual_seed(0)
    model = _perturbed(DPMamba(cfg), 2).to(DEVICE)
    src = 0.1 * torch.randn(2, 2, 120, device=DEVICE)  # [B, C, T]
    mix = src.sum(1)
    res = {}
    for impl in ("ref", "fused"):
        scan_mod.set_scan_impl(impl)
        res[impl] = _grads(model, lambda: pit_loss(model(mix), src))
    assert rel_err(res["fused"][0], res["ref"][0]) <= 1e-6
    errs = {n: rel_err(res["fused"][1][n], res["ref"][1][n]) for n in res["ref"][1]}
    assert max(errs.values()) <= TOL, {k: f"{v:.1e}" for k, v in errs.items() if v > TOL}


# MARK: - Bad inputs


@pytest.mark.parametrize("case, exc, words", [
    ("u_3d", ValueError, "u must be [2, B, L, E]"),
    ("A_log_wrong_E", ValueError, "A_log must be [2, E, M]"),
    ("Bm_wrong_M", ValueError, "Bm must have shape"),
    ("z_wrong", ValueError, "z must have shape"),
    ("int_u", TypeError, "u must be floating point"),
    ("float64_dt", TypeError, "dt must be float32/float16/bfloat16"),
])
def test_bad_inputs_raise_clear_errors(case, exc, words):
    inputs, _ = make_inputs(2, 3, 8, 4, seed=2, dtype=torch.float32)
    u, dt, Bm, Cm, z, A_log, D, bias = on_device(inputs)
    if case == "u_3d":
        u = u[0]
    elif case == "A_log_wrong_E":
        A_log = A_log[:, :5]
    elif case == "Bm_wrong_M":
        Bm = Bm[..., :3]
    elif case == "z_wrong":
        z = z[:1]
    elif case == "int_u":
        u = u.to(torch.int32)
    elif case == "float64_dt":
        dt = dt.double()
    with pytest.raises(exc) as info:
        bt.bimamba_scan(u, dt, Bm, Cm, z, A_log, D, bias)
    assert words in str(info.value)


# MARK: - Choosing the path


def test_auto_takes_the_fused_path_for_cuda_tensors_only():
    """"auto" decides per tensor: CUDA (when Triton imports) → fused; CPU → today's maths."""
    cuda_like = types.SimpleNamespace(is_cuda=True)
    cpu = torch.zeros(1)
    expect = {"auto": (True, False), "fused": (True, True), "triton": (False, False),
              "fast": (False, False), "ref": (False, False)}
    for impl, (on_cuda, on_cpu) in expect.items():
        scan_mod.set_scan_impl(impl)
        assert (scan_mod.fused_active(cuda_like), scan_mod.fused_active(cpu)) == (on_cuda, on_cpu), impl
    assert (bt.TileConfig().T, bt.TileConfig().block_e) == (4, 64)


def test_the_default_tiles_are_the_split_variant_in_a_fresh_interpreter():
    """The module's starting config (not whatever an earlier test left set) is the split variant
    with checkpoints kept and the Gluon kernels, S:32:1+ck+gl."""
    code = "from mambasep_ref import bimamba_triton as bt; print(bt.tile_config().spec())"
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "S:32:1+ck+gl"


def test_auto_on_cpu_tensors_keeps_the_reference_maths():
    """A BiMamba layer on CPU under "auto" gives exactly what "fast" gives (no gradients) and
    what "ref" gives (with gradients: the fast path falls back to the reference)."""
    cfg = ModelConfig.preset("xs", n_filters=8, d_state=4)
    torch.manual_seed(0)
    layer = _perturbed(BiMamba(cfg), 3)
    h = torch.randn(2, 7, 8)
    outs = {}
    for impl in ("auto", "fast", "ref"):
        scan_mod.set_scan_impl(impl)
        with torch.no_grad():
            y_nograd = layer(h)
        hh = h.clone().requires_grad_()
        y, g = _grads(layer, lambda: layer(hh).square().sum())
        outs[impl] = (y_nograd, y, hh.grad, g)
    assert torch.equal(outs["auto"][0], outs["fast"][0])
    assert torch.equal(outs["auto"][1], outs["ref"][1]) and torch.equal(outs["auto"][2], outs["ref"][2])
    assert all(torch.equal(outs["auto"][3][n], outs["ref"][3][n]) for n in outs["ref"][3])
