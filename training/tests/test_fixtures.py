"""The committed parity fixtures are consistent with the current reference code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import fixtures
from mambasep_ref import scan
from mambasep_ref.io import load_model, load_state

PARITY = Path(fixtures.DEFAULT_OUT)
FILES = sorted(PARITY.glob("*.safetensors"))


def test_fixture_set_complete_and_small() -> None:
    names = {p.stem for p in FILES}
    assert names == {fx.name for fx in fixtures.FIXTURES}
    total = sum(p.stat().st_size for p in FILES)
    assert total < 8_000_000, f"fixtures take {total / 1e6:.2f} MB"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_reference_reproduces_fixture(path: Path) -> None:
    cfg, tensors, meta = load_state(path)
    model = load_model(path)
    prev = scan.get_scan_impl()
    scan.set_scan_impl("fast")
    try:
        with torch.inference_mode():
            io = model.forward_intermediates(tensors["io.input"])
    finally:
        scan.set_scan_impl(prev)
    present = [k for k in tensors if k.startswith("io.")]
    assert {"io.input", "io.encoder", "io.chunked", "io.masks", "io.output"} <= set(present)
    for k in present:
        ref = tensors[k]
        assert io[k].shape == ref.shape, k
        err = (io[k] - ref).abs().max().item()
        assert err <= 1e-4 * max(1.0, ref.abs().max().item()), f"{k}: max error {err}"
        assert ref.std() > 1e-3, f"{k} carries no signal"


def test_small_fixture_is_rebuilt_identically() -> None:
    """Weights bit for bit; io tensors to float32 rounding (GEMM results vary with threads)."""
    fx = next(f for f in fixtures.FIXTURES if f.name == "small_s4d")
    tensors, meta, _ = fixtures.build(fx)
    _, stored, stored_meta = load_state(PARITY / "small_s4d.safetensors")
    assert meta == stored_meta
    assert set(tensors) == set(stored)
    for k, v in tensors.items():
        if k.startswith("io."):
            assert torch.allclose(v.float(), stored[k], rtol=1e-5, atol=1e-6), k
        else:
            assert torch.equal(v.float(), stored[k]), k
