#!/usr/bin/env python3
"""Devset SI-SNRi by pitch pair: female–female, female–male and male–male mixtures.

    mambasep eval /tmp/devmix --est-dir /tmp/est --json > eval.json
    python3 training/devset_pitch.py --devset ../shared/devset eval.json [more.json ...]

Each devset source (read by `validate.load_devset`: `dNNN/s1.wav`, `dNNN/s2.wav`, or the
packed `.carry/devset`) is labelled by its median fundamental frequency: "F" above `--split` Hz (165), else "M". That is a crude stand-in for the speaker's
sex (the devset has no such label): a low female voice or a high male one lands on the other
side. The F0 of a 40 ms frame (10 ms hop) is the lag of the autocorrelation peak between 60 and
400 Hz, kept when the peak is at least half the frame's energy (voiced) and the frame is not
quiet (energy ≥ 0.3 × the median frame energy); the median is over the kept frames. A source
with no voiced frame is an error naming the mixture and source.

For each `mambasep eval --json` file, prints the mean SI-SNRi (dB) and the count per pair.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from validate import load_devset

SR = 8000                    # the devset's rate (load_devset checks it)

FRAME_S, HOP_S = 0.040, 0.010
F0_MIN, F0_MAX = 60.0, 400.0


def median_f0(x: np.ndarray, sr: int) -> float:
    """Median F0 (Hz) of the voiced frames of mono x [T]; NaN when no frame is voiced."""
    n, hop = int(FRAME_S * sr), int(HOP_S * sr)
    if len(x) < n:
        return float("nan")
    starts = np.arange(0, len(x) - n + 1, hop)
    frames = x[starts[:, None] + np.arange(n)]                                   # [F, n]
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames ** 2).sum(axis=1)                                           # [F]
    loud = energy >= 0.3 * np.median(energy[energy > 0]) if np.any(energy > 0) else energy > 0
    spec = np.fft.rfft(frames, 2 * n, axis=1)                                    # [F, n+1]
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :n]                          # [F, n]
    lo, hi = int(sr / F0_MAX), min(int(sr / F0_MIN), n - 1)
    lag = lo + np.argmax(ac[:, lo:hi + 1], axis=1)                               # [F]
    peak = ac[np.arange(len(lag)), lag]
    voiced = loud & (ac[:, 0] > 0) & (peak >= 0.5 * ac[:, 0])
    return float(np.median(sr / lag[voiced])) if np.any(voiced) else float("nan")


def pitch_pairs(devset: Path, split: float = 165.0) -> dict[str, str]:
    """Pair label ("FF", "FM" or "MM") of every mixture of the devset (read by `load_devset`)."""
    pairs = {}
    for it in load_devset(devset):
        labels = []
        for k, ref in enumerate(it.refs.double().numpy()):
            f0 = median_f0(ref, SR)
            if np.isnan(f0):
                raise ValueError(f"devset item {it.id}: source s{k + 1} has no voiced frame, "
                                 "cannot estimate its pitch")
            labels.append("F" if f0 > split else "M")
        pairs[it.id] = "".join(sorted(labels))
    return pairs


def by_pair(items: list[dict], pairs: dict[str, str]) -> dict[str, tuple[int, float]]:
    """(count, mean SI-SNRi) per pair label over `mambasep eval --json` items."""
    groups: dict[str, list[float]] = {}
    for it in items:
        if it["id"] not in pairs:
            raise ValueError(f"item {it['id']!r} is not a mixture of the devset")
        groups.setdefault(pairs[it["id"]], []).append(float(it["si_snri"]))
    return {k: (len(v), float(np.mean(v))) for k, v in sorted(groups.items())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("evals", nargs="+", type=Path, help="`mambasep eval --json` outputs")
    ap.add_argument("--devset", type=Path, default=Path(__file__).resolve().parents[2] / "shared/devset")
    ap.add_argument("--split", type=float, default=165.0, help="F0 (Hz) above which a voice is 'F'")
    args = ap.parse_args(argv)
    try:
        pairs = pitch_pairs(args.devset, args.split)
        for path in args.evals:
            res = by_pair(json.loads(path.read_text())["items"], pairs)
            print(f"{path}: " + ", ".join(f"{k} {m:.2f} dB ({n})" for k, (n, m) in res.items()))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        print(f"devset_pitch: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
