"""Config validation, parameter counts, state-dict keys, forward shapes and bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from mambasep_ref.config import ModelConfig
from mambasep_ref.model import DPMamba, chunk, overlap_add, padded_length

TINY = dict(n_filters=8, num_blocks=1, chunk_size=6, d_state=2, s4d_state=4)


def n_params(cfg: ModelConfig) -> int:
    return sum(p.numel() for p in DPMamba(cfg).parameters())


# MARK: - Parameter counts


@pytest.mark.parametrize("preset,expected", [("xs", 2_265_857), ("s", 8_136_193),
                                             ("m", 15_869_441)])
def test_parameter_counts_match_published(preset: str, expected: int) -> None:
    n = n_params(ModelConfig.preset(preset))
    print(f"\n{preset}: {n:,} parameters")
    assert n == expected


def test_parameter_count_s4d_xs() -> None:
    n = n_params(ModelConfig.preset("xs", intra_mixer="s4d", inter_mixer="s4d"))
    print(f"\nxs with BiS4D on both paths: {n:,} parameters")
    # Per path: 2 directions × N·(2 + 4P) + out_proj (2N·N + 2N) + 2 RMSNorm + GroupNorm.
    N, P = 128, 32
    path = 2 * N * (2 + 4 * P) + 2 * N * N + 2 * N + 2 * N + 2 * N
    assert n == 16 * path + 103_169  # 103,169 = encoder + masker head + decoder
    assert n == 1_172_225


# MARK: - Config


def test_config_json_round_trip_and_key_order() -> None:
    cfg = ModelConfig.preset("s", intra_mixer="s4d", skip_around_intra=False)
    back = ModelConfig.from_json(cfg.to_json())
    assert back == cfg
    keys = list(__import__("json").loads(cfg.to_json()))
    assert keys[:4] == ["architecture", "version", "sample_rate", "num_speakers"]
    assert keys[-2:] == ["rms_eps", "gn_eps"] and len(keys) == 21


def test_preset_derives_dt_rank_and_hop() -> None:
    cfg = ModelConfig.preset("xs", n_filters=40, chunk_size=100)
    assert cfg.dt_rank == math.ceil(40 / 16) == 3 and cfg.hop_size == 50
    assert ModelConfig.preset("s").dt_rank == 16


@pytest.mark.parametrize("bad", [
    dict(hop_size=100), dict(chunk_size=21), dict(intra_mixer="lstm"), dict(s4d_state=7), dict(n_filters=0),
    dict(stride=20), dict(rms_eps=0.0), dict(s4d_init="hippo"), dict(d_state=2.5),
    dict(skip_around_intra=1), dict(num_speakers=True)])
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError):
        ModelConfig.preset("xs", **bad)


def test_config_json_strict() -> None:
    d = ModelConfig.preset("xs").to_dict()
    with pytest.raises(ValueError, match="unknown config key"):
        ModelConfig.from_dict({**d, "dropout": 0.1})
    d.pop("gn_eps")
    with pytest.raises(ValueError, match="missing config key"):
        ModelConfig.from_dict(d)
    with pytest.raises(ValueError, match="not valid JSON"):
        ModelConfig.from_json("{nope")
    with pytest.raises(ValueError):
        ModelConfig.preset("xl")


# MARK: - State-dict contract (docs/MODEL.md)


def expected_keys(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    N, C, k = cfg.n_filters, cfg.num_speakers, cfg.kernel_size
    E, R, M, W, P = cfg.d_inner, cfg.dt_rank, cfg.d_state, cfg.d_conv, cfg.s4d_state // 2
    keys = {"encoder.conv.weight": (N, 1, k), "masker.norm.weight": (N,), "masker.norm.bias": (N,),
            "masker.conv_in.weight": (N, N, 1), "masker.prelu.weight": (1,),
            "masker.conv_out.weight": (C * N, N, 1), "masker.conv_out.bias": (C * N,),
            "masker.output.weight": (N, N, 1), "masker.output.bias": (N,),
            "masker.output_gate.weight": (N, N, 1), "masker.output_gate.bias": (N,),
            "masker.end_conv.weight": (N, N, 1), "decoder.conv.weight": (N, 1, k)}
    for i in range(cfg.num_blocks):
        for path, mixer in (("intra", cfg.intra_mixer), ("inter", cfg.inter_mixer)):
            p = f"masker.blocks.{i}.{path}."
            keys[p + "norm_in.weight"] = (N,)
            keys[p + "norm_out.weight"] = (N,)
            keys[f"masker.blocks.{i}.{path}_norm.weight"] = (N,)
            keys[f"masker.blocks.{i}.{path}_norm.bias"] = (N,)
            m = p + "mixer."
            if mixer == "mamba":
                keys[m + "in_proj.weight"] = (2 * E, N)
                keys[m + "out_proj.weight"] = (N, E)
                for s in ("", "_b"):
                    keys[m + f"conv1d{s}.weight"] = (E, 1, W)
                    keys[m + f"conv1d{s}.bias"] = (E,)
                    keys[m + f"x_proj{s}.weight"] = (R + 2 * M, E)
                    keys[m + f"dt_proj{s}.weight"] = (E, R)
                    keys[m + f"dt_proj{s}.bias"] = (E,)
                    keys[m + ("A_log" if s == "" else "A_b_log")] = (E, M)
                    keys[m + f"D{s}"] = (E,)
            else:
                keys[m + "out_proj.weight"] = (2 * N, N)
                keys[m + "out_proj.bias"] = (2 * N,)
                for s in ("", "_b"):
                    keys[m + f"log_dt{s}"] = (N,)
                    keys[m + f"log_A_real{s}"] = (N, P)
                    keys[m + f"A_imag{s}"] = (N, P)
                    keys[m + f"C{s}"] = (N, P, 2)
                    keys[m + f"D{s}"] = (N,)
    return keys


@pytest.mark.parametrize("mixers", [("mamba", "mamba"), ("s4d", "mamba"), ("mamba", "s4d")])
def test_state_dict_keys_and_shapes_match_contract(mixers: tuple[str, str]) -> None:
    cfg = ModelConfig.preset("xs", **{**TINY, "num_blocks": 2}, num_speakers=3,
                             intra_mixer=mixers[0], inter_mixer=mixers[1])
    got = {k: tuple(v.shape) for k, v in DPMamba(cfg).state_dict().items()}
    assert got == expected_keys(cfg)


def test_mamba_init() -> None:
    cfg = ModelConfig.preset("xs", **{**TINY, "n_filters": 64})
    torch.manual_seed(0)
    mix = DPMamba(cfg).masker.blocks[0].intra.mixer
    dt = torch.nn.functional.softplus(mix.dt_proj.bias)
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 1e-1 * 1.001
    assert torch.allclose(mix.A_b_log, torch.log(torch.arange(1.0, cfg.d_state + 1)).expand(cfg.d_inner, -1))
    assert torch.all(mix.D == 1) and torch.all(mix.D_b == 1)
    bound = cfg.dt_rank ** -0.5
    assert mix.dt_proj_b.weight.abs().max() <= bound


# MARK: - Chunking


@pytest.mark.parametrize("K", [2, 4, 6, 20])
def test_chunk_then_overlap_add_divided_by_coverage_is_identity(K: int) -> None:
    torch.manual_seed(0)
    for L in list(range(1, 3 * K + 2)) + [5 * K, 5 * K + K // 2]:
        x = torch.randn(2, 3, L)
        ch = chunk(x, K)                                                    # [2, 3, K, S]
        S = ch.shape[-1]
        H = K // 2
        gap = K - (H + L % K) % K
        assert S == 2 * (L + gap + H) // K
        # Chunk j is frames [j·H, j·H + K) of [H zeros | x | gap + H zeros].
        xp = torch.nn.functional.pad(x, (H, gap + H))
        for j in range(S):
            assert torch.equal(ch[..., j], xp[..., j * H:j * H + K])
        cover = overlap_add(chunk(torch.ones(1, 1, L), K), L)
        back = overlap_add(ch, L) / cover
        assert torch.allclose(back, x, atol=1e-6), (K, L)
        assert torch.all(cover == 2)


def test_padded_length() -> None:
    assert padded_length(1, 16, 8) == 16
    assert padded_length(16, 16, 8) == 16
    assert padded_length(17, 16, 8) == 24
    assert padded_length(3001, 16, 8) == 3008


# MARK: - Forward


@pytest.mark.parametrize("T", [1, 15, 16, 17, 203])
def test_forward_shapes_any_length(T: int) -> None:
    cfg = ModelConfig.preset("xs", **TINY, num_speakers=3, inter_mixer="s4d")
    model = DPMamba(cfg).eval()
    with torch.inference_mode():
        y = model(torch.randn(2, T))
        io = model.forward_intermediates(torch.randn(1, T))
    assert y.shape == (2, 3, T) and torch.isfinite(y).all()
    L = (padded_length(T, 16, 8) - 16) // 8 + 1
    assert io["io.encoder"].shape == (1, 8, L)
    assert io["io.masks"].shape == (1, 3, 8, L)
    assert list(io) == ["io.input", "io.encoder", "io.chunked", "io.block0", "io.masks", "io.output"]


def test_batch_items_are_independent() -> None:
    cfg = ModelConfig.preset("xs", **TINY)
    model = DPMamba(cfg).eval()
    x = torch.randn(3, 300)
    with torch.inference_mode():
        y = model(x)
        y1 = model(x[1:2])
    assert torch.allclose(y[1:2], y1, atol=1e-5)


def test_forward_rejects_bad_input() -> None:
    model = DPMamba(ModelConfig.preset("xs", **TINY))
    for bad in (torch.randn(100), torch.randn(1, 1, 100), torch.zeros(1, 100, dtype=torch.int32),
                torch.zeros(1, 0)):
        with pytest.raises(ValueError):
            model(bad)


def test_training_backward_runs_on_cpu() -> None:
    cfg = ModelConfig.preset("xs", **TINY, intra_mixer="s4d")
    model = DPMamba(cfg)
    y = model(torch.randn(2, 120))
    y.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.bfloat16, 1e-2)])
def test_per_direction_linear_matches_the_batched_product(dtype, tol) -> None:
    """BiMamba's fused path: each direction's weight gradient from its own product, the same
    values and dtypes as torch.bmm's autograd; x a column slice, as dt's input is."""
    from mambasep_ref.mamba import _PerDirectionLinear
    g = torch.Generator().manual_seed(3)
    xs = torch.randn(2, 37, 11, generator=g, dtype=torch.float64)[..., 2:9].to(dtype)  # [2, P, K] strided
    w = torch.randn(2, 5, 7, generator=g, dtype=torch.float64).to(dtype)            # [2, O, K]
    up = torch.randn(2, 37, 5, generator=g, dtype=torch.float64).to(dtype)          # [2, P, O]
    res = []
    for f in (lambda a, b: torch.bmm(a, b.transpose(1, 2)), _PerDirectionLinear.apply):
        a, b = xs.clone().requires_grad_(), w.clone().requires_grad_()
        y = f(a, b)
        (y * up).sum().backward()
        assert (y.dtype, a.grad.dtype, b.grad.dtype) == (dtype,) * 3
        res.append([t.double() for t in (y, a.grad, b.grad)])
    for got, want in zip(res[1], res[0]):
        assert (got - want).abs().max() <= tol * want.abs().max()
    a = xs.clone().requires_grad_()
    _PerDirectionLinear.apply(a, w).sum().backward()          # no weight gradient asked for
    assert a.grad is not None


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize("compiled", [False, True])
def test_per_direction_linear_tee_adds_the_other_consumers_gradient_in_the_product(dtype, tol, compiled) -> None:
    """tee: x's gradient is g · w plus the gradient through the returned view (the scan's du in
    BiMamba), as autograd's sum over x's two uses gives it; the view holds x's values; and
    without a gradient through the view it is g · w alone. Also traced by torch.compile."""
    from mambasep_ref.mamba import _PerDirectionLinear
    g = torch.Generator().manual_seed(4)
    xs = torch.randn(2, 37, 7, generator=g, dtype=torch.float64).to(dtype)     # [2, P, K]
    w = torch.randn(2, 5, 7, generator=g, dtype=torch.float64).to(dtype)       # [2, O, K]
    up = torch.randn(2, 37, 5, generator=g, dtype=torch.float64).to(dtype)     # [2, P, O]
    other = torch.randn(2, 37, 7, generator=g, dtype=torch.float64).to(dtype)  # the other consumer's weights

    def tee(a, b):
        return _PerDirectionLinear.apply(a, b, True)

    def plain(a, b):
        return torch.bmm(a, b.transpose(1, 2)), a

    f_tee = torch.compile(tee, backend="aot_eager", fullgraph=True) if compiled else tee
    res = []
    for f in (plain, f_tee):
        a, b = xs.clone().requires_grad_(), w.clone().requires_grad_()
        y, a2 = f(a, b)
        assert torch.equal(a2, xs)
        ((y * up).sum() + (a2.square() * other).sum()).backward()
        res.append([t.double() for t in (y, a.grad, b.grad)])
    for got, want in zip(res[1], res[0]):
        assert (got - want).abs().max() <= tol * want.abs().max()
    a = xs.clone().requires_grad_()
    y, _ = _PerDirectionLinear.apply(a, w, True)
    (y * up).sum().backward()                                 # nothing through the view
    want = torch.bmm(up.double(), w.double())
    assert (a.grad.double() - want).abs().max() <= tol * want.abs().max()
