#!/usr/bin/env python3
"""Separate mixtures with the PyTorch reference: DIR/<stem>_s1.wav, _s2.wav, … per input.

    python training/separate.py --model xs.safetensors mix.wav [more.wav …] -o out/ [--threads N]

Each input is mixed down to mono, resampled to the model's rate, separated in one forward
pass (no windowing), resampled back and written as 16-bit WAV at the input's rate and length.
Sources whose peak exceeds 1 are scaled to a peak of 0.99 instead of clipping (SI-SNR is
unaffected). The wall time of each model forward goes to stderr. This is the baseline the
Swift engine is checked and timed against.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

from mambasep_ref import scan
from mambasep_ref.audio import read_audio, resample, to_mono, write_wav
from mambasep_ref.io import WeightsError, load_model
from mambasep_ref.model import DPMamba


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad axis 0 to n samples."""
    if x.shape[0] >= n:
        return x[:n]
    return np.concatenate([x, np.zeros((n - x.shape[0],) + x.shape[1:], x.dtype)])


def timed_forward(model: DPMamba, mix: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, float]:
    """(estimates [1, C, T] on CPU, forward wall seconds)."""
    x = mix.to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.inference_mode():
        y = model(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return y.cpu(), time.perf_counter() - t0


def separate_file(model: DPMamba, path: str, out_dir: str, device: torch.device) -> tuple[list[str], float, float]:
    """Separate one file; (written paths, forward seconds, audio seconds)."""
    data, rate = read_audio(path)
    if data.shape[0] == 0:
        raise ValueError(f"{path}: no samples")
    mono = to_mono(data)
    if not np.all(np.isfinite(mono)):
        raise ValueError(f"{path}: contains NaN or infinite samples")
    model_rate = model.cfg.sample_rate
    x = resample(mono, rate, model_rate)
    est, secs = timed_forward(model, torch.from_numpy(np.ascontiguousarray(x))[None], device)
    est = est[0].numpy()                                                # [C, T_model]
    stem = os.path.splitext(os.path.basename(path))[0]
    written = []
    for c in range(est.shape[0]):
        y = fit_length(resample(est[c], model_rate, rate), mono.shape[0])
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        if peak > 1.0:
            y = y * (0.99 / peak)
        out = os.path.join(out_dir, f"{stem}_s{c + 1}.wav")
        write_wav(out, y, rate, "PCM_16")
        written.append(out)
    return written, secs, mono.shape[0] / rate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Separate mixtures with the PyTorch reference DPMamba.")
    ap.add_argument("--model", required=True, help="weights .safetensors (export.py output)")
    ap.add_argument("inputs", nargs="+", metavar="MIX.wav")
    ap.add_argument("-o", "--out-dir", default=".", help="output folder (created; default .)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto",
                    help="auto = cuda when available, else cpu")
    ap.add_argument("--scan", choices=list(scan.SCAN_IMPLS), default="auto",
                    help="selective scan implementation (default auto: triton on CUDA, fast on CPU)")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the short untimed warm-up forward before the first file")
    args = ap.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            print("separate: error: --threads must be >= 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("separate: error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    device = torch.device("cuda" if args.device == "cuda" or
                          (args.device == "auto" and torch.cuda.is_available()) else "cpu")
    try:
        scan.set_scan_impl(args.scan)
        model = load_model(args.model).to(device)
    except (WeightsError, RuntimeError, ValueError) as e:
        print(f"separate: error: {e}", file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    if not args.no_warmup:
        timed_forward(model, torch.zeros(1, model.cfg.sample_rate // 10), device)
    failures = 0
    for path in args.inputs:
        try:
            written, secs, dur = separate_file(model, path, args.out_dir, device)
        except (ValueError, OSError) as e:
            print(f"separate: error: {e}", file=sys.stderr)
            failures += 1
            continue
        print(f"{path}: forward {secs:.3f} s for {dur:.2f} s of audio "
              f"(RTF {secs / max(dur, 1e-9):.3f}, {device.type}, {torch.get_num_threads()} threads)"
              f" -> {', '.join(written)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
