"""--init-weights FILE --init-partial (train.py, checkpoint.partial_init_state): a model started
from the tensors of another config that fit it, e.g. DPMamba-XS → the hybrid (--inter s4d)."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
import torch

import checkpoint
import train
from mambasep_ref.config import ModelConfig
from mambasep_ref.io import load_state, load_weights, save_model
from mambasep_ref.model import DPMamba
from support import write_cache

SMALL = dict(n_filters=8, num_blocks=2, d_state=2, s4d_state=4, chunk_size=20)
TINY = ["--override", "n_filters=8", "--override", "num_blocks=2", "--override", "d_state=2",
        "--override", "s4d_state=4", "--override", "chunk_size=20", "--seconds", "0.25",
        "--batch", "2", "--scan", "fast", "--threads", "1", "--total-steps", "20", "--synth-val", "0",
        "--val-every", "100", "--log-every", "1"]


def xs_file(path: Path, seed: int = 5, **over) -> Path:
    """A small DPMamba-XS export in float16, like the bundled file (weights not the seed-0 init)."""
    torch.manual_seed(seed)
    save_model(DPMamba(ModelConfig.preset("xs", **{**SMALL, **over})), path, {"name": "x"},
               dtype=torch.float16)
    return path


def fresh(seed: int = 0, **over) -> dict:
    """What train.py builds before loading anything: the seeded initialisation."""
    torch.manual_seed(seed)
    return DPMamba(ModelConfig.preset("xs", **{**SMALL, **over})).state_dict()


@pytest.fixture()
def cache(tmp_path):
    write_cache(tmp_path / "cache")
    return ["--data", str(tmp_path / "cache"), *TINY]


# MARK: - What is loaded


def test_xs_into_the_hybrid_loads_all_but_the_inter_mixers(tmp_path):
    f = xs_file(tmp_path / "xs.safetensors")
    cfg = ModelConfig.preset("xs", **SMALL, inter_mixer="s4d")
    target = DPMamba(cfg).state_dict()
    r = checkpoint.partial_init_state(str(f), cfg, target)
    _, src, _ = load_state(f)
    assert r.fresh == [k for k in target if ".inter.mixer." in k]          # 12 tensors a block
    assert r.loaded == [k for k in target if ".inter.mixer." not in k]
    assert sorted(r.unused) == sorted(k for k in src if ".inter.mixer." in k) == sorted(r.other_mixer)
    assert (len(r.loaded), len(r.fresh), len(r.unused)) == (61, 24, 32)        # 16 unused a block
    for k in r.loaded:
        assert torch.equal(r.state[k], src[k]), k
    # The BiMamba tensors that share a name with BiS4D's (D, D_b, out_proj.weight) are not taken.
    assert "masker.blocks.0.inter.mixer.D" in r.fresh and "masker.blocks.0.inter.mixer.D" in r.unused


def test_partial_init_loads_matching_tensors_exactly_and_leaves_the_rest_fresh(tmp_path, cache, capsys):
    f = xs_file(tmp_path / "xs.safetensors")
    argv = ["--run-dir", str(tmp_path / "run"), "--inter", "s4d", "--init-weights", str(f),
            "--init-partial", *cache]
    tr = train.setup(argv)
    train.resume(tr)
    sd = tr.model.state_dict()
    _, src, _ = load_state(f)
    init = fresh(inter_mixer="s4d")
    n_loaded = 0
    for k, v in sd.items():
        if ".inter.mixer." in k:
            assert torch.equal(v, init[k]), k                   # its fresh initialisation
        else:
            assert torch.equal(v, src[k]), k                    # bit for bit (f16 widened)
            n_loaded += 1
    assert n_loaded == 61 and tr.st["loaded"] == [k for k in sd if ".inter.mixer." not in k]
    out = capsys.readouterr().out
    assert "61 tensors loaded, 24 fresh, 32 of the file's unused" in out
    assert "masker.blocks.[0-1].inter.mixer.C_b" in out and "masker.blocks.[0-1].intra.mixer.A_log" in out
    ev = tr.st["log"][0]
    assert ev["event"] == "init" and ev["partial"] and ev["file"] == str(f)
    assert (len(ev["loaded"]), len(ev["fresh"]), len(ev["unused"])) == (61, 24, 32)
    assert "masker.blocks.1.inter.mixer.out_proj.bias" in ev["fresh"]
    assert "masker.blocks.1.inter.mixer.in_proj.weight" in ev["unused"]


def test_partial_init_from_a_checkpoint_and_with_more_blocks(tmp_path, cache):
    assert train.main(["--run-dir", str(tmp_path / "a"), "--max-steps", "1", *cache]) == 0
    ck = torch.load(tmp_path / "a" / "last16.pt", weights_only=False)["model"]
    argv = ["--run-dir", str(tmp_path / "b"), "--init-weights", str(tmp_path / "a" / "last16.pt"),
            "--init-partial", *cache, "--override", "num_blocks=3"]
    tr = train.setup(argv)
    train.resume(tr)
    init = fresh(num_blocks=3)
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, ck[k].float() if k in ck else init[k]), k
    assert tr.st["log"][0]["unused"] == [] and len(tr.st["log"][0]["fresh"]) == 40   # block 2


def test_identity_fresh_blocks_grow_a_model_that_starts_as_the_file_s(tmp_path, cache):
    f = xs_file(tmp_path / "xs.safetensors")
    argv = ["--run-dir", str(tmp_path / "g"), "--init-weights", str(f), "--init-partial",
            "--identity-fresh-blocks", *cache, "--override", "num_blocks=4"]
    tr = train.setup(argv)
    train.resume(tr)
    assert tr.st["log"][0]["identity_blocks"] == [2, 3]
    for i in (2, 3):
        for gn in ("intra_norm", "inter_norm"):
            for p in ("weight", "bias"):
                assert not tr.model.state_dict()[f"masker.blocks.{i}.{gn}.{p}"].any()
    src, _ = load_weights(f)
    tr.model.eval()
    torch.manual_seed(3)
    mix = torch.randn(2, 2000) * 0.1
    with torch.no_grad():
        assert torch.allclose(tr.model(mix), src(mix), rtol=0, atol=1e-6)
    # the new blocks learn from the first step (their GroupNorm parameters have gradients)
    loss = tr.model(mix).pow(2).mean()
    loss.backward()
    assert tr.model.masker.blocks[3].inter_norm.weight.grad.abs().sum() > 0


def test_identity_fresh_blocks_leave_partly_loaded_blocks_alone_and_need_init_partial(tmp_path, cache):
    f = xs_file(tmp_path / "xs.safetensors")
    tr = train.setup(["--run-dir", str(tmp_path / "h"), "--init-weights", str(f), "--init-partial",
                      "--identity-fresh-blocks", "--inter", "s4d", *cache])
    train.resume(tr)                    # the hybrid: every block took its intra path from the file
    assert tr.st["log"][0]["identity_blocks"] == []
    with pytest.raises(SystemExit):
        train.parse_args(["--run-dir", "x", *cache, "--identity-fresh-blocks"])
    g = xs_file(tmp_path / "noskip.safetensors", skip_around_intra=False)
    with pytest.raises(SystemExit, match="needs skip_around_intra"):
        train.main(["--run-dir", str(tmp_path / "n"), "--init-weights", str(g), "--init-partial",
                    "--identity-fresh-blocks", *cache, "--override", "num_blocks=3",
                    "--override", "skip_around_intra=false", "--max-steps", "1"])


# MARK: - Refusals


def test_a_shape_clash_names_the_tensor(tmp_path, cache):
    f = xs_file(tmp_path / "xs.safetensors", d_state=4)
    with pytest.raises(SystemExit, match=r"tensor masker\.blocks\.0\.intra\.mixer\.A_log has shape "
                                         r"\(16, 4\) there and \(16, 2\).*d_state 4 → 2"):
        train.main(["--run-dir", str(tmp_path / "r"), "--init-weights", str(f), "--init-partial",
                    "--inter", "s4d", "--max-steps", "1", *cache])
    assert not (tmp_path / "r" / "last.pt").exists()


def test_nothing_to_load_is_an_error(tmp_path, monkeypatch):
    other = types.SimpleNamespace(cfg=ModelConfig.preset("xs", **SMALL),
                                  state_dict=lambda: {"something.else": torch.zeros(3)})
    import mambasep_ref.io as io
    monkeypatch.setattr(io, "load_weights", lambda path: (other, {}))
    cfg = ModelConfig.preset("xs", **SMALL)
    with pytest.raises(SystemExit, match="no tensor of the file matches this model"):
        checkpoint.partial_init_state("f.safetensors", cfg, DPMamba(cfg).state_dict())


def test_strict_init_is_unchanged_and_the_new_flags_need_init_partial(tmp_path, cache):
    f = xs_file(tmp_path / "xs.safetensors")
    with pytest.raises(SystemExit, match="has config"):       # another config, no --init-partial
        train.main(["--run-dir", str(tmp_path / "a"), "--init-weights", str(f), "--inter", "s4d",
                    "--max-steps", "1", *cache])
    tr = train.setup(["--run-dir", str(tmp_path / "b"), "--init-weights", str(f), *cache])
    train.resume(tr)
    _, src, _ = load_state(f)
    assert all(torch.equal(v, src[k]) for k, v in tr.model.state_dict().items())
    assert len(tr.opt.param_groups) == 1 and tr.st["loaded"] == [] and tr.st["log"] == []
    for flags in (["--freeze-loaded-steps", "5"], ["--loaded-lr-scale", "0.5"]):
        with pytest.raises(SystemExit):
            train.parse_args(["--run-dir", "x", *cache, *flags])
    with pytest.raises(SystemExit, match="--init-partial needs --init-weights"):
        train.main(["--run-dir", str(tmp_path / "c"), "--init-partial", "--max-steps", "1", *cache])


# MARK: - Training the loaded part slower, or not at first


def test_group_lr_freezes_ramps_and_scales():
    a = types.SimpleNamespace(freeze_loaded_steps=10, warmup=4, loaded_lr_scale=0.5)
    assert train.group_lr(a, "fresh", 0, 1e-3) == 1e-3 and train.group_lr(a, None, 3, 1e-3) == 1e-3
    assert [train.group_lr(a, "loaded", s, 1.0) for s in (0, 9, 10, 11, 13, 50)] == \
        [0.0, 0.0, 0.125, 0.25, 0.5, 0.5]
    a.freeze_loaded_steps = 0
    assert train.group_lr(a, "loaded", 0, 1.0) == 0.5


def test_frozen_part_stands_still_then_trains_and_a_resume_keeps_the_groups(tmp_path, cache):
    f = xs_file(tmp_path / "xs.safetensors")
    run = tmp_path / "run"
    flags = ["--run-dir", str(run), "--inter", "s4d", "--init-weights", str(f), "--init-partial",
             "--freeze-loaded-steps", "2", "--loaded-lr-scale", "0.5", "--warmup", "2", *cache]
    assert train.main([*flags, "--max-steps", "2"]) == 0
    ck = torch.load(run / "last.pt", weights_only=False)
    _, src, _ = load_state(f)
    init = fresh(inter_mixer="s4d")
    for k, v in ck["model"].items():
        if ".inter.mixer." in k:
            assert not torch.equal(v, init[k]), k                # the fresh part trained
        else:
            assert torch.equal(v, src[k]), k                     # the loaded part stood still
    assert len(ck["loaded"]) == 61
    groups = torch.load(run / "last.optim2.pt", weights_only=False)["param_groups"]
    assert [(g["group"], len(g["params"])) for g in groups] == [("loaded", 61), ("fresh", 24)]
    # Resumed: the same two groups (the exact optimiser state loads into them), now all training.
    assert train.main([*flags, "--max-steps", "4", "--resume", "auto"]) == 0
    ck = torch.load(run / "last.pt", weights_only=False)
    assert ck["step"] == 4 and len(ck["loaded"]) == 61
    assert not torch.equal(ck["model"]["encoder.conv.weight"], src["encoder.conv.weight"])
    log = [json.loads(l) for l in open(run / "log.jsonl")]
    assert log[0]["event"] == "init"
    tr = {r["step"]: r for r in log if r["event"] == "train"}
    assert tr[1]["lr_loaded"] == tr[2]["lr_loaded"] == 0.0
    assert tr[3]["lr_loaded"] == pytest.approx(tr[3]["lr"] * 0.5 * 0.5)      # ramp 1/2, scale 0.5
    assert tr[4]["lr_loaded"] == pytest.approx(tr[4]["lr"] * 0.5)


def test_compact_keys_folds_block_numbers():
    keys = ["enc.w", "m.blocks.0.x", "m.blocks.1.x", "m.blocks.3.x", "m.blocks.2.y", "m.blocks.5.x"]
    assert checkpoint.compact_keys(keys) == ["enc.w", "m.blocks.[0-1,3,5].x", "m.blocks.2.y"]


def test_no_compile_after_compile_turns_it_off():
    base = ["--data", "d", "--run-dir", "r", "--total-steps", "1"]
    assert train.parse_args([*base, "--compile"]).compile
    assert not train.parse_args([*base, "--compile", "--no-compile"]).compile   # one model's args win
    assert not train.parse_args(base).compile
