"""kernel_ir.sass_loops: the innermost loops of an nvdisasm listing and their opcode counts."""

import os

import pytest
import torch

if not torch.cuda.is_available():   # kernel_ir imports the kernels: define them as the other tests do
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")

import kernel_ir  # noqa: E402

# nvdisasm's layout: labels on their own line, /*address*/ then an optional predicate, the
# opcode with its modifiers and the operands; a branch names its label in `(...)`.
LISTING = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
.L_x_0:
        /*0010*/                   LDG.E R4, desc[UR4][R2.64] ;
.L_x_1:
        /*0020*/                   MUFU.EX2 R5, R4 ;
        /*0030*/                   SHFL.BFLY PT, R6, R5, 0x1, 0x1f ;
        /*0040*/                   FFMA R7, R5, R6, R7 ;
        /*0050*/               @P0 BRA `(.L_x_1) ;
        /*0060*/                   STG.E desc[UR4][R2.64], R7 ;
        /*0070*/              @!P1 BRA `(.L_x_0) ;
.L_x_2:
        /*0080*/                   FADD R8, R7, R7 ;
        /*0090*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;
        /*00a0*/               @P2 BRA `(.L_x_2) ;
        /*00b0*/                   EXIT ;
.L_x_3:
        /*00c0*/                   BRA `(.L_x_3);
"""


def test_innermost_loops_with_their_opcode_counts():
    loops = kernel_ir.sass_loops(LISTING)
    # the outer loop 0x10..0x70 holds the inner 0x20..0x50, so it is left out; the trap's
    # branch to itself is no loop
    assert loops == [
        {"from": "0x20", "to": "0x50", "instructions": 4, "SHFL": 1, "MUFU": 1, "FFMA": 1},
        {"from": "0x80", "to": "0xa0", "instructions": 3, "BAR": 1, "FADD": 1},
    ]


def test_a_listing_without_loops_has_none():
    assert kernel_ir.sass_loops("        /*0000*/                   EXIT ;\n") == []
    assert kernel_ir.sass_loops("") == []


def offline(*args: str) -> dict:
    """`kernel_ir.py --offline ARGS` in a process without the interpreter (which would stand in
    for the kernels' shared @triton.jit helpers): its JSON, or a skip where this Triton has no
    ptxas/nvdisasm."""
    import json  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    here = Path(kernel_ir.__file__).resolve().parent
    r = subprocess.run([sys.executable, str(here / "kernel_ir.py"), "--offline", *args],
                       cwd=here, env=env, capture_output=True, text=True, timeout=300)
    if r.returncode and ("ptxas" in r.stderr or "nvdisasm" in r.stderr):
        pytest.skip(f"no ptxas/nvdisasm with this Triton: {r.stderr[-200:]}")
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


# (loads ahead, tile layout, softplus in the kernels) and the barriers of the forward's loop and
# the backward's two loops: with softplus on the default tile, dt crosses to and from its one
# channel a lane through shared memory (`scan_gluon._lane_layout`), one barrier each crossing
# (in the recompute loop one barrier serves both the crossing and the segment's slot since the
# backward sums dt_bias's gradient in the kernel: Triton's barrier placement, 3.6 and 3.9 alike)
@pytest.mark.parametrize("depth, layout, softplus, bars", [(1, 0, False, ([0], [1, 0])), (2, 0, False, ([0], [1, 0])),
                                                           (1, 1, False, ([0], [1, 0])), (1, 0, True, ([1], [1, 2])),
                                                           (1, 1, True, ([0], [1, 0]))])
def test_gluon_kernels_compile_for_hopper_with_their_barriers(depth, layout, softplus, bars):
    """The Gluon kernels cannot run without a GPU, but they compile here for sm_90a (in a
    process without the interpreter, which would stand in for the shared @triton.jit helpers):
    no spill inside a loop (with softplus the backward keeps two set-up values in local memory
    from before its loops to after them: 8 bytes, stored and loaded once a program), and no
    barrier in the forward's loop or the backward's walk (the point of their explicit layouts;
    the recompute loop keeps the one guarding its shared-memory slots) but those of softplus's
    crossings."""
    out = offline("--split", "--kernels", "fb", "--keep-ck", "--gluon", str(depth), "--gluon-layout", str(layout),
                  "--block-e", "32", *(["--softplus"] if softplus else []))
    fwd, bwd = out["fwd"], out["bwd"]
    assert fwd["spill_store_bytes"] == 0 and bwd["spill_store_bytes"] <= (8 if softplus else 0)
    # every load is issued a step ahead: nothing in a step waits on a load issued in that step
    # but the copies into the loop-carried registers near the body's end (the closest: +mt's
    # forward, 58 instructions with Triton 3.9, 76 with 3.6)
    assert all(loop.get("LDG_gap", 10**6) >= 48 for loop in fwd["loops"] + bwd["loops"]), (fwd["loops"], bwd["loops"])
    assert not any(loop.get("STL") or loop.get("LDL") for loop in fwd["loops"] + bwd["loops"])
    assert [loop.get("BAR", 0) for loop in fwd["loops"]] == bars[0]
    assert [loop.get("BAR", 0) for loop in bwd["loops"]] == bars[1]   # recompute, walk


def test_conv_kernels_compile_for_hopper_one_row_load_a_step():
    """conv_triton's kernels for sm_90a (tiles +cv; in a process without the interpreter): no
    spills, one loop each with no barrier or shuffle, and a step loads one row of x (forward),
    or x and two rows of g (backward): the window of rows stays in registers."""
    out = offline("--conv")
    for name, loads in (("fwd", 1), ("bwd", 3)):
        k = out[name]
        assert k["spill_store_bytes"] == 0, name
        got = [(loop.get("LDG", 0), loop.get("BAR", 0), loop.get("SHFL", 0)) for loop in k["loops"]]
        assert got == [(loads, 0, 0)], (name, k["loops"])


def test_load_gaps_count_instructions_to_the_first_read_of_a_loaded_register():
    """A 64-bit load fills two registers (a read of either counts); a store reads all its
    operands; a register written again before any read is no longer the load's."""
    body = [("LDG", ".E.64", "R4, desc[UR4][R2.64]"),     # R4, R5
            ("FADD", "", "R8, R9, R9"),
            ("FMUL", "", "R10, R5, R9"),                   # reads R5: gap 2
            ("LDG", ".E", "R12, desc[UR4][R2.64]"),
            ("MOV", "", "R12, R9"),                        # R12 overwritten: never read as loaded
            ("STG", ".E", "desc[UR4][R2.64], R12"),
            ("LDG", ".E.U16", "R14, desc[UR4][R2.64]"),
            ("NOP", "", ""),
            ("STG", ".E.U16", "desc[UR4][R6.64], R14")]    # a store reads it: gap 2
    assert kernel_ir._load_gaps(body) == [2, None, 2]
    assert kernel_ir._regs("desc[UR4][R6.64]") == {6, 7} and kernel_ir._regs("R13") == {13}


@pytest.mark.parametrize("softplus", [False, True])
def test_gluon_merging_forward_fetches_y0_and_z_a_step_ahead(softplus):
    """The merging launch (+gm) reads y_0 and z besides the scan's inputs; loaded where they
    are used, every step waited for them (v8's +gm lost in every round). Compiled for sm_90a:
    no spill, and every load at least 48 instructions before the first read of its value (as
    the other Gluon loops; before, y_0's was read 14 instructions after it was issued)."""
    fwd = offline("--split", "--kernels", "f", "--keep-ck", "--gluon", "1", "--block-e", "32", "--gate-merge",
                  *(["--softplus"] if softplus else []))["fwd"]
    assert fwd["spill_store_bytes"] == 0 and len(fwd["loops"]) == 1
    loop = fwd["loops"][0]
    assert loop["LDG"] == 6 and loop.get("LDG_gap", 10**6) >= 48, loop


@pytest.mark.parametrize("softplus", [False, True])
def test_gluon_backward_unrolled_recomputation_is_straight_code(softplus):
    """+ur: the recomputation's T steps compile as straight code, so the backward keeps one loop,
    the walk (with its barriers as without +ur), with no spill; without softplus it fits the
    168 registers of the looped form (12 one-warp programs an SM)."""
    bwd = offline("--split", "--kernels", "b", "--keep-ck", "--gluon", "1", "--block-e", "32", "--ck-low", "--unroll",
                  *(["--softplus"] if softplus else []))["bwd"]
    assert bwd["spill_store_bytes"] == 0 and len(bwd["loops"]) == 1, bwd["loops"]
    assert bwd["loops"][0].get("BAR", 0) == (2 if softplus else 0)
    if not softplus:
        assert bwd["regs"] <= 168
