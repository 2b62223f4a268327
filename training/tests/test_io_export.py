"""Weights files: export round trip, strict loading with clear errors, checkpoints."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

import export
from mambasep_ref.config import ModelConfig
from mambasep_ref.io import WeightsError, load_model, read_metadata, save_model
from mambasep_ref.model import DPMamba

SMALL = ["--set", "n_filters=16", "num_blocks=2", "chunk_size=20", "d_state=4", "s4d_state=8"]


def same_weights(a: DPMamba, b: DPMamba) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("mixers", [[], ["--intra-mixer", "s4d", "--inter-mixer", "s4d"],
                                    ["--inter-mixer", "s4d"]])
def test_export_random_round_trip_exact(tmp_path, mixers) -> None:
    out = tmp_path / "m.safetensors"
    assert export.main(["--preset", "xs", "--init", "random", "--seed", "3", "--out", str(out),
                        *mixers, *SMALL]) == 0
    model = load_model(out)
    ref = export.random_model(model.cfg, 3)
    assert same_weights(model, ref)
    meta = read_metadata(out)
    assert ModelConfig.from_json(meta["config"]) == ref.cfg
    assert meta["name"] == "dpmamba-xs" and meta["format"] == "pt"
    x = torch.randn(1, 400)
    with torch.inference_mode():
        assert torch.equal(model(x), ref.eval()(x))


def test_export_xs_preset_file(tmp_path) -> None:
    out = tmp_path / "xs.safetensors"
    assert export.main(["--preset", "xs", "--init", "random", "--seed", "0", "--out", str(out)]) == 0
    model = load_model(out)
    assert sum(p.numel() for p in model.parameters()) == 2_265_857
    assert 9.0e6 < out.stat().st_size < 9.2e6      # F32


def test_export_checkpoint(tmp_path) -> None:
    cfg = ModelConfig.preset("xs", n_filters=16, num_blocks=1, chunk_size=10, d_state=2)
    torch.manual_seed(5)
    model = DPMamba(cfg)
    ckpt = tmp_path / "ckpt.pt"
    # DDP / torch.compile prefixes are stripped.
    torch.save({"model": {"module." + k: v for k, v in model.state_dict().items()},
                "config": cfg.to_json(), "step": 10}, ckpt)
    out = tmp_path / "c.safetensors"
    assert export.main(["--checkpoint", str(ckpt), "--out", str(out), "--name", "dpmamba-test",
                        "--license", "MIT"]) == 0
    assert same_weights(load_model(out), model)
    assert read_metadata(out)["license"] == "MIT"
    torch.save({"model": {}, "config": cfg.to_json()}, ckpt)
    assert export.main(["--checkpoint", str(ckpt), "--out", str(out)]) == 1
    # train.py's own checkpoints: float16 weights plus numpy RNG state (not weights-only).
    import numpy as np
    torch.save({"model": {k: v.half() for k, v in model.state_dict().items()}, "config": cfg.to_json(),
                "rng": {"numpy": np.random.get_state()}}, ckpt)
    assert export.main(["--checkpoint", str(ckpt), "--out", str(out), "--output-gain", "0.5"]) == 0
    back = load_model(out).state_dict()
    for k, v in model.state_dict().items():
        want = v.half().float() * (0.5 if k == "decoder.conv.weight" else 1.0)
        assert torch.equal(back[k], want), k
    assert read_metadata(out)["output_gain"] == "0.5"
    assert export.main(["--checkpoint", str(ckpt), "--out", str(out), "--output-gain", "0.3"]) == 1


def test_export_f16_halves_size_and_loads(tmp_path) -> None:
    out = tmp_path / "h.safetensors"
    assert export.main(["--out", str(out), "--dtype", "f16", *SMALL]) == 0
    m = load_model(out)
    ref = export.random_model(m.cfg, 0)
    for k, v in ref.state_dict().items():
        assert torch.equal(m.state_dict()[k], v.half().float())


def test_export_bad_override_is_an_error(tmp_path, capsys) -> None:
    assert export.main(["--out", str(tmp_path / "x"), "--set", "chunk_size=7"]) == 1
    assert "chunk_size" in capsys.readouterr().err
    assert export.main(["--out", str(tmp_path / "x"), "--set", "chunk_size"]) == 1
    assert "--set expects KEY=VALUE" in capsys.readouterr().err


# MARK: - Strict loading


@pytest.fixture()
def small_file(tmp_path):
    cfg = ModelConfig.preset("xs", n_filters=8, num_blocks=1, chunk_size=6, d_state=2)
    model = DPMamba(cfg)
    path = tmp_path / "s.safetensors"
    save_model(model, path)
    return path, model


def rewrite(path, state, meta):
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata=meta)


def test_load_errors_name_the_tensor(small_file, tmp_path) -> None:
    path, model = small_file
    state = dict(model.state_dict())
    meta = {"config": model.cfg.to_json()}
    bad = tmp_path / "bad.safetensors"

    rewrite(bad, {k: v for k, v in state.items() if k != "masker.prelu.weight"}, meta)
    with pytest.raises(WeightsError, match="missing tensor.*masker.prelu.weight"):
        load_model(bad)
    rewrite(bad, {**state, "masker.extra": torch.zeros(1)}, meta)
    with pytest.raises(WeightsError, match="unknown tensor.*masker.extra"):
        load_model(bad)
    rewrite(bad, {**state, "decoder.conv.weight": torch.zeros(8, 1, 15)}, meta)
    with pytest.raises(WeightsError, match="decoder.conv.weight has shape"):
        load_model(bad)
    rewrite(bad, {**state, "masker.prelu.weight": torch.zeros(1, dtype=torch.int32)}, meta)
    with pytest.raises(WeightsError, match="dtype"):
        load_model(bad)
    rewrite(bad, state, {})
    with pytest.raises(WeightsError, match="no 'config'"):
        load_model(bad)
    cfg = json.loads(model.cfg.to_json())
    rewrite(bad, state, {"config": json.dumps({**cfg, "dropout": 0.1})})
    with pytest.raises(WeightsError, match="dropout"):
        load_model(bad)


def test_load_garbage_and_truncated_files(small_file, tmp_path) -> None:
    path, _ = small_file
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"abc")
    with pytest.raises(WeightsError, match="too short"):
        load_model(junk)
    junk.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(WeightsError, match="header length"):
        load_model(junk)
    data = path.read_bytes()
    junk.write_bytes(data[: len(data) - 100])
    with pytest.raises(WeightsError):
        load_model(junk)
    with pytest.raises(WeightsError, match="cannot read"):
        load_model(tmp_path / "absent.safetensors")


def test_fixture_io_tensors_are_ignored_by_load_model(small_file, tmp_path) -> None:
    path, model = small_file
    state = dict(model.state_dict())
    withio = tmp_path / "fx.safetensors"
    rewrite(withio, {**state, "io.input": torch.zeros(1, 10)}, {"config": model.cfg.to_json()})
    assert same_weights(load_model(withio), model)


def test_export_average_is_the_mean_and_checks_its_inputs(tmp_path) -> None:
    cfg = ModelConfig.preset("xs", n_filters=16, num_blocks=1, chunk_size=10, d_state=2)
    models, ckpts = [], []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        models.append(DPMamba(cfg))
        ckpts.append(tmp_path / f"c{seed}.pt")
        torch.save({"model": models[-1].state_dict(), "config": cfg.to_json()}, ckpts[-1])
    out = tmp_path / "avg.safetensors"
    assert export.main(["--checkpoint", str(ckpts[0]), "--average", str(ckpts[1]), str(ckpts[2]),
                        "--output-gain", "0.5", "--out", str(out)]) == 0
    got = load_model(out).state_dict()
    for k in got:
        want = (sum(m.state_dict()[k].double() for m in models) / 3).float()
        assert torch.equal(got[k], want * (0.5 if k == "decoder.conv.weight" else 1.0)), k
    assert read_metadata(out)["averaged"] == "3" and read_metadata(out)["output_gain"] == "0.5"
    # A model averaged with itself is itself (the .safetensors path, gains equal).
    self_avg = tmp_path / "self.safetensors"
    assert export.main(["--weights", str(out), "--average", str(out), "--out", str(self_avg)]) == 0
    assert same_weights(load_model(self_avg), load_model(out))
    # Different output gains (0.5 vs a checkpoint's 1) or configs are errors; nothing averaged alone.
    bad = tmp_path / "bad.safetensors"
    assert export.main(["--weights", str(out), "--average", str(ckpts[1]), "--out", str(bad)]) == 1
    other = ModelConfig.preset("xs", n_filters=16, num_blocks=2, chunk_size=10, d_state=2)
    torch.save({"model": DPMamba(other).state_dict(), "config": other.to_json()}, tmp_path / "o.pt")
    assert export.main(["--checkpoint", str(ckpts[0]), "--average", str(tmp_path / "o.pt"),
                        "--out", str(bad)]) == 1
    assert export.main(["--preset", "xs", "--average", str(ckpts[1]), "--out", str(bad)]) == 1
    assert not bad.exists()


def test_saved_files_are_renamed_into_place_with_usual_permissions(tmp_path) -> None:
    import os
    out = tmp_path / "m.safetensors"
    assert export.main(["--preset", "xs", "--init", "random", "--out", str(out), *SMALL]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]      # no temporary left
    # A failing write (metadata that is not a string) leaves the old file untouched.
    from mambasep_ref.io import save_tensors
    before = out.read_bytes()
    with pytest.raises(ValueError):
        save_tensors({"x": torch.zeros(2)}, out, {"n": 1})
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
