"""Times the Triton selective scan against the sequential PyTorch loop on the GPU.

Glossary: B sequences, L steps, E channels, M state size (see mambasep_ref/scan_triton.py).

    python training/bench_scan.py            # the two training shapes, one small table (< 60 s)
    python training/bench_scan.py --sweep    # also tries BLOCK_E / warp settings of the kernels

For each shape it reports the median time of forward and of forward+backward for both
implementations, the speed ratio (loop / Triton), the peak GPU memory that one Triton
forward+backward adds on top of its inputs ("tri MB": y, gradients and the backward's scratch),
and the largest relative difference (max |a − b| / max |b|) between the two on y and on every
gradient.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from mambasep_ref import scan_triton as st

try:  # the project's reference definition, when present
    from mambasep_ref.scan import selective_scan_ref as _ref_scan

    REF_NAME = "mambasep_ref.scan.selective_scan_ref"
except ImportError:  # pragma: no cover - only before scan.py exists
    _ref_scan = None
    REF_NAME = "local loop"

# Training shapes: intra path (B·S sequences of K = 250 frames) and inter path (B·K of S = 33).
SHAPES = [(264, 250, 256, 16), (2000, 33, 256, 16)]


def loop_scan(u, delta, A, Bm, Cm, D):
    """The definition as a plain loop over time (used when scan.py is missing)."""
    Bsz, L, E = u.shape
    h = u.new_zeros(Bsz, E, A.shape[1])  # [B, E, M]
    ys = []
    for t in range(L):
        h = torch.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * u[:, t])[:, :, None] * Bm[:, t, None, :]
        ys.append((h * Cm[:, t, None, :]).sum(-1) + D * u[:, t])  # [B, E]
    return torch.stack(ys, 1)  # [B, L, E]


def make_inputs(Bsz, L, E, M, device, seed=0):
    """Random inputs like a trained Mamba layer's: delta = softplus(·) in (0, ~3), A = −[1..M]."""
    g = torch.Generator(device="cpu").manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g).to(device)

    u = rnd(Bsz, L, E)  # [B, L, E]
    delta = torch.nn.functional.softplus(rnd(Bsz, L, E) - 2.0)  # [B, L, E]
    A = -torch.arange(1, M + 1, dtype=torch.float32, device=device).repeat(E, 1)  # [E, M]
    A = A * torch.exp(0.1 * rnd(E, M))
    Bm, Cm = rnd(Bsz, L, M), rnd(Bsz, L, M)  # [B, L, M]
    D = rnd(E)  # [E]
    return [x.contiguous() for x in (u, delta, A, Bm, Cm, D)]


def cuda_time(fn, reps, warmup=1):
    """Median wall time of fn() in milliseconds, synchronising around each call."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def rel_err(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def bench_shape(shape, ref_fn, reps_fast, reps_ref):
    inputs = make_inputs(*shape, device="cuda")
    leaves = [x.clone().requires_grad_() for x in inputs]
    w = torch.randn(shape[0], shape[1], shape[2], device="cuda")  # [B, L, E] loss weights

    def fwd(fn):
        with torch.no_grad():
            return fn(*inputs)

    def fwd_bwd(fn):
        y = fn(*leaves)
        return torch.autograd.grad(y, leaves, grad_outputs=w)

    tri, ref = st.selective_scan_triton, ref_fn
    # Agreement on this shape (float32 both).
    y_t, y_r = fwd(tri), fwd(ref)
    g_t, g_r = fwd_bwd(tri), fwd_bwd(ref)
    errs = [rel_err(y_t, y_r)] + [rel_err(a, b) for a, b in zip(g_t, g_r)]
    del y_t, y_r, g_t, g_r
    torch.cuda.empty_cache()

    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fwd_bwd(tri)
    peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    t_fwd = cuda_time(lambda: fwd(tri), reps_fast, warmup=3)
    t_fb = cuda_time(lambda: fwd_bwd(tri), reps_fast, warmup=3)
    r_fwd = cuda_time(lambda: fwd(ref), reps_ref)
    r_fb = cuda_time(lambda: fwd_bwd(ref), reps_ref)
    torch.cuda.empty_cache()
    return t_fwd, t_fb, r_fwd, r_fb, max(errs), peak_mb


def sweep(shape, reps):
    """Times the kernels alone for several (BLOCK_E, num_warps) settings."""
    u, delta, A, Bm, Cm, D = make_inputs(*shape, device="cuda")
    dy = torch.randn_like(u)
    print(f"\nsweep {shape}: BLOCK_E num_warps  fwd ms  bwd ms")
    for be, nw in [(16, 1), (32, 1), (32, 2), (64, 1), (64, 2), (128, 2), (128, 4)]:
        if be > triton_next_pow2(shape[2]):
            continue
        f = cuda_time(lambda: st._scan_forward(u, delta, A, Bm, Cm, D, block_e=be, num_warps=nw), reps, 2)
        b = cuda_time(lambda: st._scan_backward(u, delta, A, Bm, Cm, D, dy, block_e=be, num_warps=nw), reps, 2)
        print(f"  {be:7d} {nw:9d} {f:7.3f} {b:7.3f}")


def triton_next_pow2(n):
    return 1 << max(0, (n - 1).bit_length())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20, help="timed repetitions of the Triton kernels")
    ap.add_argument("--ref-reps", type=int, default=3, help="timed repetitions of the loop reference")
    ap.add_argument("--sweep", action="store_true", help="also time other BLOCK_E / num_warps settings")
    ap.add_argument("--local-ref", action="store_true", help="use this file's loop even if scan.py exists")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_scan.py needs a CUDA GPU (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    ref_fn, ref_name = (loop_scan, "local loop") if args.local_ref or _ref_scan is None else (_ref_scan, REF_NAME)
    t0 = time.time()
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, triton {st.triton.__version__}")
    print(f"reference: {ref_name} (float32); times are medians in ms")
    print(f"{'B':>5} {'L':>4} {'E':>4} {'M':>3} | {'tri fwd':>8} {'tri f+b':>8} | {'loop fwd':>9} {'loop f+b':>9} |"
          f" {'x fwd':>6} {'x f+b':>6} | {'tri MB':>6} | max rel err")
    for shape in SHAPES:
        t_fwd, t_fb, r_fwd, r_fb, err, peak_mb = bench_shape(shape, ref_fn, args.reps, args.ref_reps)
        print(f"{shape[0]:5d} {shape[1]:4d} {shape[2]:4d} {shape[3]:3d} | {t_fwd:8.3f} {t_fb:8.3f} |"
              f" {r_fwd:9.2f} {r_fb:9.2f} | {r_fwd / t_fwd:6.0f} {r_fb / t_fb:6.0f} | {peak_mb:6.0f} | {err:.1e}")
    if args.sweep:
        for shape in SHAPES:
            sweep(shape, args.reps)
    print(f"total {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
