"""bench_step.py's path grammar (the GPU timing itself runs on the device machine only)."""

from __future__ import annotations

import pytest

import bench_step


@pytest.mark.parametrize("spec, want", [("triton", ("triton", None)), ("triton+compile", ("triton", "default")),
                                        ("fused+graphs", ("fused", "reduce-overhead"))])
def test_paths_parse_and_print_back(spec, want):
    assert bench_step.parse_path(spec) == want
    assert bench_step.path_label(*want) == spec


@pytest.mark.parametrize("spec", ["fused+cudagraphs", "nope+compile", "fused+compile+graphs"])
def test_bad_paths_name_the_grammar(spec):
    with pytest.raises(SystemExit, match="SCAN, SCAN\\+compile or SCAN\\+graphs"):
        bench_step.parse_path(spec)
