#!/usr/bin/env python3
"""Listen-free check of the pseudo-speakers' ranges (data.PseudoSpeakers) on real recordings.

    python3 training/pseudo_check.py FILE [FILE ...] [--png /tmp/pseudo.png] [--wav-dir /tmp/pseudo]

Each file (any format soundfile reads; first 3 s, trimmed) is rendered as data.py renders a
pseudo-speaker, at the corners of the default ranges: resampled `pitch` times faster, then
`warp_formants` by pitch/formant. Per variant it prints the median pitch (devset_pitch.median_f0)
and the formant scale actually applied: the factor b whose scaled copy of the original's mean
all-pole envelope (loud frames, 250–3300 Hz, level removed) best matches the variant's.
`--png` draws their spectrograms (needs matplotlib); `--wav-dir` writes them for listening.
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

import data
from devset_pitch import median_f0
from prepare_data import SR, decode_file, trim_silence

ST3 = 2 ** (3 / 12)
CORNERS = [(1.0, 1.0), (ST3, 1.0), (1 / ST3, 1.0), (1.0, 1.14), (1.0, 0.88), (ST3, 0.88), (1 / ST3, 1.14)]


def render(x: np.ndarray, pitch: float, formant: float) -> np.ndarray:
    """x (float, 8 kHz) voiced as a pseudo-speaker: read `pitch` times faster, envelope × formant."""
    from scipy.signal import resample_poly

    fr = Fraction(pitch).limit_denominator(200)
    y = resample_poly(x, fr.denominator, fr.numerator).astype(np.float32)
    ratio = torch.tensor([pitch / formant], dtype=torch.float32)
    return data.warp_formants(torch.from_numpy(y)[None], ratio)[0].numpy()


def mean_envelope(x: np.ndarray) -> np.ndarray:
    """Mean all-pole envelope (dB, 129 bins) over the frames within 13 dB of the loudest."""
    X = torch.stft(torch.from_numpy(x)[None], 256, 64, window=torch.hann_window(256), return_complex=True)
    p = X.abs().pow(2).transpose(1, 2)[0].double()
    e = p.sum(-1)
    return (data.spectral_envelope(p[e > e.max() * 0.05]) * 10 / np.log(10)).mean(0).numpy()


def envelope_scale(e0: np.ndarray, e1: np.ndarray) -> float:
    """The b in 0.75–1.33 for which e0 read at f/b best matches e1 over 250–3300 Hz (level removed)."""
    f = np.arange(len(e0)) * SR / (2 * (len(e0) - 1))
    band = (f > 250) & (f < 3300)
    best = (np.inf, 1.0)
    for b in np.exp(np.linspace(np.log(0.75), np.log(1.33), 241)):
        d = e1[band] - np.interp(f / b, f, e0)[band]
        best = min(best, (float(np.mean((d - d.mean()) ** 2)), float(b)))
    return best[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--png", default="", help="spectrograms of every file × corner (matplotlib)")
    ap.add_argument("--wav-dir", default="", help="write the variants as WAV files here")
    args = ap.parse_args(argv)
    rows = []
    for i, path in enumerate(args.files):
        x = trim_silence(decode_file(path)).astype(np.float32)[: 3 * SR] / 32768.0
        e0 = mean_envelope(x)
        for j, (p, fm) in enumerate(CORNERS):
            y = x if (p, fm) == (1.0, 1.0) else render(x, p, fm)
            rows.append((i, j, y))
            print(f"{Path(path).name}: pitch {12 * np.log2(p):+.0f} st, formant ×{fm:.2f} → "
                  f"F0 {median_f0(y, SR):.1f} Hz, envelope ×{envelope_scale(e0, mean_envelope(y)):.3f}, "
                  f"{len(y) / SR:.2f} s")
            if args.wav_dir:
                import soundfile as sf

                Path(args.wav_dir).mkdir(parents=True, exist_ok=True)
                sf.write(Path(args.wav_dir) / f"{i}_{j}.wav", y, SR)
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(len(args.files), len(CORNERS), squeeze=False,
                               figsize=(3.2 * len(CORNERS), 2.4 * len(args.files)))
        for i, j, y in rows:
            p, fm = CORNERS[j]
            ax[i, j].specgram(y + 1e-7, NFFT=256, Fs=SR, noverlap=192, vmin=-120)
            ax[i, j].set_title(f"{Path(args.files[i]).name}\n{12 * np.log2(p):+.0f} st, ×{fm:.2f}", fontsize=7)
        plt.tight_layout()
        plt.savefig(args.png, dpi=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
