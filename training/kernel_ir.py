#!/usr/bin/env python3
"""Compile the fused scan's kernels; report registers, spills, layouts, instruction mix and times.

    OUT=/tmp/ir python3 training/kernel_ir.py                 # on the GPU: also times each kernel
    python3 training/kernel_ir.py --offline --T 8 --block-e 32  # no GPU: compile for sm_90a here
    python3 training/kernel_ir.py --offline --split --block-e 32  # the split variant's kernels
    python3 training/kernel_ir.py --offline --split --block-e 32 --keep-ck --kernels b --maxnreg 168
    python3 training/kernel_ir.py --offline --conv            # conv_triton's kernels (tiles +cv)

On the GPU, shapes are the intra path of DPMamba-XS at batch 16 (B' = 528, L' = 250, E = 256,
M = 16), bf16 inputs; the forward kernel is compiled for T = 16, 8 and 32 (BLOCK_E 32, one warp),
the backward for T = 16, and each is timed.

`--offline` needs no GPU: it compiles both kernels for sm_90a (Hopper) with the installed Triton,
with the argument specialisations of the training call (16-byte aligned pointers, strides of the
[.., E] tensors divisible by 16; with `--split`, scan_triton's kernels as the split variant
launches them for the intra call, every integer specialised as Triton's launcher would: 1 →
constexpr, multiples of 16 marked divisible), assembles the PTX with Triton's ptxas for the register and spill
counts, and disassembles it with nvdisasm for a static count of SASS instructions by opcode
(SHFL: cross-lane traffic; FSEL: selects; LDG: global loads; MUFU: exp2/log2). Layout choices
differ between Triton versions: install the device's Triton (see training/bench/NOTES.md) into a
separate folder and put it first on PYTHONPATH, e.g.
`python3 -m pip install --no-deps --target /tmp/t36 triton==3.6.0` then
`PYTHONPATH=/tmp/t36 python3 training/kernel_ir.py --offline`.

The `#blocked` layouts of the Triton GPU IR say how a [T, BLOCK_E] tile is spread over a warp: the
chunked scans want T in each thread's registers (threadsPerWarp = [1, 32]).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


from mambasep_ref import bimamba_triton as bt


def layouts(ttgir: str) -> list[str]:
    return sorted(set(re.findall(r"#blocked\d* = #ttg\.blocked<\{[^}]*\}>", ttgir)))


def info(k) -> dict:
    ttgir = k.asm.get("ttgir", "")
    return {"n_regs": k.n_regs, "n_spills": k.n_spills, "shared": k.metadata.shared, "layouts": layouts(ttgir)}


# MARK: - Offline (no GPU)

# Argument dtypes of the training call (bf16 activations under autocast, float32 parameters and
# scratch) and the integer arguments that are multiples of 16 there (E = 256 and the strides of
# the [.., E] tensors); Bm/Cm are views with row stride R + 2M = 40, so theirs are not.
_BF16 = ("u_ptr", "dt_ptr", "B_ptr", "C_ptr", "z_ptr", "out_ptr", "dout_ptr", "du_ptr", "ddt_ptr", "dz_ptr")
_DIV16 = ("E", "s_ud", "s_ub", "s_ul", "s_dd", "s_db", "s_dl", "s_zb", "s_zl", "s_Bd", "s_Bb", "s_Cd", "s_Cb",
          "s_gb", "s_gl")


def _nvidia_tool(name: str) -> str:
    import triton  # noqa: PLC0415
    return str(Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name)


def compile_offline(kernel, constexprs: dict, num_warps: int, bf16=_BF16, div16=_DIV16, maxnreg=None) -> dict:
    """Compile `kernel` for sm_90a without a GPU; registers, spills, layouts and SASS opcode counts.

    bf16: the pointer arguments to bfloat16 (others float32); div16: the integer arguments known
    to be multiples of 16 (defaults: the v4 kernels' training call)."""
    import triton  # noqa: PLC0415
    from triton.backends.compiler import GPUTarget  # noqa: PLC0415
    from triton.compiler import ASTSource  # noqa: PLC0415

    names = kernel.arg_names
    sig = {n: "constexpr" if n in constexprs else
           ("*bf16" if n in bf16 else "*fp32" if n.endswith("_ptr") else "i32") for n in names}
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in names
             if sig[n].startswith("*") or (n in div16 and sig[n] != "constexpr")}
    if getattr(kernel, "is_gluon", lambda: False)():
        from triton.experimental.gluon._runtime import GluonASTSource as ASTSource  # noqa: PLC0415
    src = ASTSource(kernel, sig, constexprs={(names.index(k),): v for k, v in constexprs.items()}, attrs=attrs)
    t = time.time()
    opts = {"num_warps": num_warps, **({"maxnreg": maxnreg} if maxnreg else {})}
    ck = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=opts)
    out = {"triton": triton.__version__, "compile_s": round(time.time() - t, 1)}
    with tempfile.TemporaryDirectory() as d:
        ptx, cubin = Path(d) / "k.ptx", Path(d) / "k.cubin"
        ptx.write_text(ck.asm["ptx"])
        for tool in ("ptxas", "ptxas-blackwell"):  # the newer one reads newer PTX versions
            r = subprocess.run([_nvidia_tool(tool), "-v", "-arch=sm_90a", "-o", str(cubin), str(ptx)],
                               capture_output=True, text=True)
            if r.returncode == 0:
                break
        else:
            raise RuntimeError(f"ptxas failed: {r.stderr[-400:]}")
        regs = re.search(r"Used (\d+) registers", r.stderr)
        spill = re.search(r"(\d+) bytes spill stores", r.stderr)
        sass = subprocess.run([_nvidia_tool("nvdisasm"), str(cubin)], capture_output=True, text=True).stdout
    ops = collections.Counter()
    for line in sass.splitlines():
        m = re.match(r"\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9]*)", line)
        if m:
            ops[m.group(1)] += 1
    total = sum(ops.values())
    out.update({"regs": int(regs.group(1)) if regs else None, "spill_store_bytes": int(spill.group(1)) if spill else 0,
                "layouts": layouts(ck.asm["ttgir"]), "sass_instructions": total,
                "sass_top": {k: v for k, v in ops.most_common(12)}, "loops": sass_loops(sass)})
    return out


# opcodes worth counting inside a loop body: cross-lane, barrier, special function, memory
# (local memory: spills), float
_LOOP_OPS = ("SHFL", "BAR", "MUFU", "LDG", "STG", "LDS", "STS", "STL", "LDL", "FFMA", "FMUL", "FADD")


# opcodes whose operands are all read (no destination register first)
_NO_DEST = ("STG", "STS", "STL", "ST", "RED", "BAR", "BRA", "EXIT", "RET", "CALL", "BSYNC", "BSSY", "WARPSYNC", "NOP")


def _regs(operand: str) -> set[int]:
    """The general registers an operand names: R7 → {7}; R6.64 (a pair, as in addresses) → {6, 7}."""
    out = set()
    for n, wide in re.findall(r"\bR(\d+)(\.64)?\b", operand):
        out.update(range(int(n), int(n) + (2 if wide else 1)))
    return out


def _load_gaps(body: list[tuple[str, str, str]]) -> list[int | None]:
    """For each global load (LDG) of one pass of a loop body, how many instructions later the
    same pass first reads its value (None: not in this pass). A read waits for the load
    (hundreds of cycles), so a short gap is latency the loop pays every pass; a load fetched
    for the next pass (software prefetch) is read only after the branch back, or by the copies
    into the loop-carried registers near the end of the body. body: (opcode, modifiers,
    operands) in order; a register written again before any read ends the search for it."""
    gaps = []
    for i, (op, mods, args) in enumerate(body):
        if op != "LDG":
            continue
        ops = [a.strip() for a in args.split(",")]
        width = 4 if ".128" in mods else 2 if ".64" in mods else 1
        first = _regs(ops[0])
        dest = set(range(min(first), min(first) + width)) if first else set()
        gap = None
        for j, (op2, _, args2) in enumerate(body[i + 1:], 1):
            ops2 = [a.strip() for a in args2.split(",") if a.strip()]
            reads = set().union(*map(_regs, ops2 if op2 in _NO_DEST else ops2[1:])) if ops2 else set()
            if dest & reads:
                gap = j
                break
            if op2 not in _NO_DEST and ops2 and not ops2[0].startswith("["):
                dest -= _regs(ops2[0])
            if not dest:
                break
        gaps.append(gap)
    return gaps


def sass_loops(sass: str) -> list[dict]:
    """The innermost loops of an nvdisasm listing: a backward branch (BRA to a lower address)
    closes a loop from its target to itself. For each one that holds no other: its address
    range, its instruction count, the count of each opcode in _LOOP_OPS (static: one pass of
    the body, predicated instructions included) and, where a global load's value is read in
    the same pass, `LDG_gap`: the shortest distance in instructions from such a load to that
    read (`_load_gaps`)."""
    rows = []    # (address, opcode, label a branch goes to or None, modifiers, operands)
    labels = {}  # .L_x_N → address of the instruction after it
    pending = []
    for line in sass.splitlines():
        lab = re.match(r"\s*(\.L_x_\d+):", line)
        if lab:
            pending.append(lab.group(1))
            continue
        m = re.match(r"\s*/\*([0-9a-f]+)\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9]*)((?:\.\S+)*)\s*([^;]*)", line)
        if m:
            addr = int(m.group(1), 16)
            labels.update((name, addr) for name in pending)
            pending = []
            tgt = re.search(r"\.L_x_\d+", m.group(4)) if m.group(2) == "BRA" else None
            rows.append((addr, m.group(2), tgt and tgt.group(0), m.group(3), m.group(4)))
    spans = [(labels[t], addr) for addr, _, t, _, _ in rows if t in labels and labels[t] < addr]
    inner = [sp for sp in spans if not any(o != sp and sp[0] <= o[0] and o[1] <= sp[1] for o in spans)]
    loops = []
    for a, b in sorted(set(inner)):
        body = [(op, mods, args) for addr, op, _, mods, args in rows if a <= addr <= b]
        c = collections.Counter(op for op, _, _ in body)
        gaps = [g for g in _load_gaps(body) if g is not None]
        loops.append({"from": hex(a), "to": hex(b), "instructions": len(body),
                      **{k: c[k] for k in _LOOP_OPS if c[k]}, **({"LDG_gap": min(gaps)} if gaps else {})})
    return loops


def compile_with_values(kernel, values: dict, constexprs: dict, num_warps: int, maxnreg=None) -> dict:
    """Like `compile_offline`, the signature from example values: an int argument equal to 1
    becomes a constexpr, one divisible by 16 gets tt.divisibility 16 (Triton's launcher does the
    same); "*bf16" / "*fp32" strings are pointers (16-byte aligned)."""
    names = kernel.arg_names
    ones = {n: 1 for n, v in values.items() if isinstance(v, int) and v == 1}
    cexp = {**constexprs, **ones}
    bf16 = tuple(n for n, v in values.items() if v == "*bf16")
    div16 = tuple(n for n, v in values.items() if isinstance(v, int) and v % 16 == 0)
    missing = [n for n in names if n not in values and n not in constexprs]
    if missing:
        raise ValueError(f"no example value for {missing}")
    return compile_offline(kernel, cexp, num_warps, bf16=bf16, div16=div16, maxnreg=maxnreg)


def offline_split(block_e: int, num_warps: int, Bsz: int = 528, L: int = 250, E: int = 256, M: int = 16,
                  R: int = 8, which: str = "fb", keep_ck: bool = False, softplus: bool = False,
                  gate_merge: bool = False, bwd_maxnreg=None, gluon: int = 0, gluon_layout: int = 0,
                  ck_low: bool = False, unroll: bool = False) -> dict:
    """scan_triton's kernels with the arguments of the split variant's intra call (XS, batch 16):
    u bf16 [2, B, L, E]; delta float32 [2, B, L, E], or with softplus dt bf16 and dt_bias
    float32 [2, E] (softplus in the kernels); Bm, Cm bf16 views of [2, B, L, R+2M];
    A float32 [2, E, M]; D [2, E]; y, dy float32 [2, B, L, E]; du bf16 (u's dtype); with keep_ck the forward writes
    the backward's checkpoints and the backward reads them (no first pass); with gate_merge the
    forward is the second, merging launch (direction 1, z a bf16 column slice of [B, L, 2E],
    out bf16), and the backward's dy is one [B, L, E] for both directions; with gluon N ≥ 1 the
    backward and the forward are scan_gluon's kernels, loads N steps ahead, their tile laid out
    as scan_gluon.tile_layout(…, gluon_layout) says, their rows 16-byte aligned (ROW_ALIGN, as
    `scan_triton._row_align` finds for XS: R + 2M = 40 bf16 is 80 bytes); with ck_low the
    checkpoints are bf16; with unroll (and gluon) the backward's recomputation is unrolled."""
    from mambasep_ref import scan_triton as st  # noqa: PLC0415
    W = R + 2 * M
    common = {"u_ptr": "*bf16", "delta_ptr": "*bf16" if softplus else "*fp32", "bias_ptr": "*fp32",
              "s_bias": 1 if softplus else 0, "x_bias": E if softplus else 0,
              "A_ptr": "*fp32", "B_ptr": "*bf16", "C_ptr": "*bf16",
              "D_ptr": "*fp32", "L": L, "E": E, "M": M,
              "s_ae": M, "s_am": 1, "s_dd": 1, "s_ub": L * E, "s_ul": E, "s_ue": 1, "s_db": L * E, "s_dl": E,
              "s_de": 1, "s_Bb": L * W, "s_Bl": W, "s_Bm": 1, "s_Cb": L * W, "s_Cl": W, "s_Cm": 1,
              "x_u": Bsz * L * E, "x_d": Bsz * L * E, "x_B": Bsz * L * W, "x_C": Bsz * L * W,
              "x_A": E * M, "x_D": E}
    out = {"kernel": "split", "block_e": block_e, "num_warps": num_warps, "B": Bsz, "L": L, "keep_ck": keep_ck,
           "softplus": softplus, "gate_merge": gate_merge}
    T = st._SEG_LEN
    seg = {"ck_ptr": "*bf16" if ck_low else "*fp32", "T": T, "NSEG": -(-L // T), "BATCH": Bsz}
    if "f" in which:
        fwd = {**common, **seg, "y_ptr": "*fp32", "s_yb": L * E, "s_yl": E, "s_ye": 1,
               "x_y": 0 if gate_merge else Bsz * L * E, "d0": 1 if gate_merge else 0,
               "z_ptr": "*bf16", "o_ptr": "*bf16", "s_zb": 2 * L * E, "s_zl": 2 * E, "s_ze": 1,
               "s_ob": L * E, "s_ol": E, "s_oe": 1}
        flags = {"BLOCK_E": block_e, "BLOCK_M": M, "KEEP_CK": keep_ck, "SOFTPLUS": softplus,
                 "MERGE": 2 if gate_merge else 0}
        if gluon:
            from mambasep_ref import scan_gluon as sg  # noqa: PLC0415
            fwd = {k: v for k, v in fwd.items() if k != "T"}
            out["fwd"] = compile_with_values(sg._scan_fwd_gluon_kernel, fwd,
                                             {"T": T, **flags, **sg.tile_layout(block_e, M, gluon_layout),
                                              "DEPTH": gluon, "ROW_ALIGN": 16}, 1)
        else:
            out["fwd"] = compile_with_values(st._scan_fwd_kernel, fwd, flags, num_warps)
    if "b" in which:
        # du in u's dtype, ddelta in delta's (with softplus dt's; dt_bias's gradient is db_part's sums)
        bwd = {**common, **seg, "dy_ptr": "*fp32", "ws_ptr": "*fp32", "du_ptr": "*bf16",
               "ddelta_ptr": common["delta_ptr"], "dB_part_ptr": "*fp32", "dC_part_ptr": "*fp32",
               "dA_part_ptr": "*fp32", "dD_part_ptr": "*fp32", "db_part_ptr": "*fp32",
               "s_gb": L * E, "s_gl": E, "s_ge": 1, "x_g": 0 if gate_merge else Bsz * L * E}
        if gluon:
            from mambasep_ref import scan_gluon as sg  # noqa: PLC0415
            bwd = {k: v for k, v in bwd.items() if k not in ("ws_ptr", "T")}
            out["bwd"] = compile_with_values(sg._scan_bwd_gluon_kernel, bwd,
                                             {"T": T, "BLOCK_E": block_e, "BLOCK_M": M, "SOFTPLUS": softplus,
                                              **sg.tile_layout(block_e, M, gluon_layout), "DEPTH": gluon,
                                              "ROW_ALIGN": 16, "UNROLL": unroll}, 1,
                                             maxnreg=bwd_maxnreg)
        else:
            out["bwd"] = compile_with_values(st._scan_bwd_kernel, bwd,
                                             {"BLOCK_E": block_e, "BLOCK_M": M, "HAVE_CK": keep_ck,
                                              "SOFTPLUS": softplus, "M_INNER": True}, num_warps,
                                             maxnreg=bwd_maxnreg)
    return out


def offline_conv(Bsz: int = 528, L: int = 250, E: int = 256, W: int = 4, which: str = "fb") -> dict:
    """conv_triton's kernels with the arguments of BiMamba's intra call (XS, batch 16) and the
    module's launch constants: x a bf16 column slice of [B, L, 2E]; w, bias float32; xc, g
    bf16 [2, B, L, E]; dx bf16 [B, L, E]."""
    from mambasep_ref import conv_triton as ct  # noqa: PLC0415
    n_chunks = -(-L // ct.CHUNK)
    n_units = Bsz * n_chunks
    per = -(-n_units // ct.MAX_PROGRAMS)
    common = {"x_ptr": "*bf16", "w_ptr": "*fp32", "bias_ptr": "*fp32", "L": L, "E": E, "n_chunks": n_chunks,
              "s_xb": 2 * L * E, "s_xl": 2 * E}
    cexp = {"W": W, "TC": ct.CHUNK, "BE": ct.BLOCK_E}
    out = {"kernel": "conv", "B": Bsz, "L": L, "E": E, "W": W, "chunk": ct.CHUNK, "block_e": ct.BLOCK_E}
    if "f" in which:
        out["fwd"] = compile_with_values(ct._conv_fwd_kernel, {**common, "xc_ptr": "*bf16", "s_cd": Bsz * L * E,
                                                               "s_cb": L * E, "s_cl": E}, cexp, 1)
    if "b" in which:
        out["bwd"] = compile_with_values(ct._conv_bwd_kernel, {
            **common, "g_ptr": "*bf16", "dx_ptr": "*bf16", "part_ptr": "*fp32", "n_units": n_units,
            "units_per_prog": per, "s_gd": Bsz * L * E, "s_gb": L * E, "s_gl": E, "s_dxb": L * E, "s_dxl": E},
            cexp, 1)
    return out


def offline(T: int, block_e: int, num_warps: int, ck: int = 1, which: str = "fb") -> dict:
    M = 16
    out = {"T": T, "block_e": block_e, "num_warps": num_warps, "ck": ck}
    if "f" in which:
        out["fwd"] = compile_offline(bt._bimamba_fwd_kernel, {"T": T, "CK": ck, "BLOCK_E": block_e, "BLOCK_M": M,
                                                              "SAVE": True}, num_warps)
    if "b" in which:
        out["bwd"] = compile_offline(bt._bimamba_bwd_kernel, {"T": T, "CK": ck, "BLOCK_E": block_e, "BLOCK_M": M},
                                     num_warps)
    return out


# MARK: - On the GPU


def on_gpu(out: Path) -> dict:
    import torch  # noqa: PLC0415

    from bench_bimamba import cuda_ms  # noqa: PLC0415

    Bsz, L, E, M = 528, 250, 256, 16
    g = torch.Generator(device="cuda").manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, device="cuda", generator=g).bfloat16()

    u, dt, z = rnd(2, Bsz, L, E), rnd(2, Bsz, L, E) - 1, rnd(Bsz, L, E)  # [2, B', L', E], [B', L', E]
    Bm, Cm = rnd(2, Bsz, L, M), rnd(2, Bsz, L, M)  # [2, B', L', M]
    A_log = torch.log(torch.arange(1, M + 1, device="cuda", dtype=torch.float32)).repeat(2, E, 1)
    D, bias = torch.ones(2, E, device="cuda"), torch.full((2, E), -3.0, device="cuda")
    dy = rnd(Bsz, L, E)
    report = {}
    for T in (16, 8, 4):
        cfg = bt.TileConfig(T=T, T_short=T, block_e=32)
        t = time.time()
        _, ws = bt._forward(u, dt, Bm, Cm, z, A_log, D, bias, True, cfg)
        torch.cuda.synchronize()
        r = {"compile_s": round(time.time() - t, 1), **info(bt.LAST["fwd"]),
             "ms": round(cuda_ms(lambda: bt._forward(u, dt, Bm, Cm, z, A_log, D, bias, True, cfg), 5), 3)}
        report[f"fwd{T}"] = r
        print(f"fwd{T}", json.dumps(r), flush=True)
        if T == 16:
            (out / "fwd16.ttgir").write_text(bt.LAST["fwd"].asm["ttgir"])
            t = time.time()
            bt._backward(u, dt, Bm, Cm, z, A_log, D, bias, dy, ws, cfg)
            torch.cuda.synchronize()
            r = {"compile_s": round(time.time() - t, 1), **info(bt.LAST["bwd"]),
                 "ms": round(cuda_ms(lambda: bt._backward(u, dt, Bm, Cm, z, A_log, D, bias, dy, ws, cfg), 5), 3)}
            (out / "bwd16.ttgir").write_text(bt.LAST["bwd"].asm["ttgir"])
            report["bwd16"] = r
            print("bwd16", json.dumps(r), flush=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--offline", action="store_true", help="compile for sm_90a here, no GPU needed")
    ap.add_argument("--T", type=int, default=8)
    ap.add_argument("--block-e", type=int, default=32)
    ap.add_argument("--num-warps", type=int, default=1)
    ap.add_argument("--ck", type=int, default=1, help="windows per checkpoint")
    ap.add_argument("--kernels", default="fb", help="f: forward, b: backward")
    ap.add_argument("--split", action="store_true",
                    help="with --offline: scan_triton's kernels as the split variant launches them")
    ap.add_argument("--shape", default="528:250", metavar="B:L", help="with --split: B' and L' (intra: 528:250)")
    ap.add_argument("--keep-ck", action="store_true",
                    help="with --split: the forward keeps the backward's checkpoints (no first pass)")
    ap.add_argument("--softplus", action="store_true",
                    help="with --split: softplus(dt + dt_bias) in the kernels (bf16 dt in)")
    ap.add_argument("--gate-merge", action="store_true",
                    help="with --split: the gate and merge in the forward (its merging launch)")
    ap.add_argument("--gluon", type=int, default=0, metavar="N",
                    help="with --split: both kernels in Gluon (scan_gluon; tiles +gl / +gl2), loads N steps ahead")
    ap.add_argument("--gluon-layout", type=int, default=0, choices=[0, 1],
                    help="with --gluon: 1 puts a channel's states in one thread (tiles +mt)")
    ap.add_argument("--maxnreg", type=int, default=0, metavar="N",
                    help="with --split: cap the backward's registers a thread (tiles +rN)")
    ap.add_argument("--ck-low", action="store_true",
                    help="with --split --keep-ck: bf16 checkpoints (tiles +cb)")
    ap.add_argument("--unroll", action="store_true",
                    help="with --gluon: the backward's recomputation unrolled (tiles +ur)")
    ap.add_argument("--conv", action="store_true",
                    help="with --offline: conv_triton's kernels (tiles +cv) for --shape's intra call")
    args = ap.parse_args(argv)
    if args.offline and args.conv:
        Bsz, L = (int(x) for x in args.shape.split(":"))
        print(json.dumps(offline_conv(Bsz, L, which=args.kernels), indent=1))
        return 0
    if args.offline and args.split:
        Bsz, L = (int(x) for x in args.shape.split(":"))
        print(json.dumps(offline_split(args.block_e, args.num_warps, Bsz, L, which=args.kernels,
                                       keep_ck=args.keep_ck, softplus=args.softplus,
                                       gate_merge=args.gate_merge, bwd_maxnreg=args.maxnreg or None,
                                       gluon=args.gluon, gluon_layout=args.gluon_layout,
                                       ck_low=args.ck_low, unroll=args.unroll), indent=1))
        return 0
    if args.offline:
        print(json.dumps(offline(args.T, args.block_e, args.num_warps, args.ck, args.kernels), indent=1))
        return 0
    on_gpu(Path(os.environ.get("OUT", "/tmp")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
