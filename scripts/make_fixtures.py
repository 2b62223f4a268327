#!/usr/bin/env python3
"""Synthesises the small speech fixtures in audio-fixtures/ (not parity/) with espeak-ng.

Needs espeak-ng, sox, numpy and soundfile. Output is deterministic for a given espeak-ng
version (1.51 made the committed files). Run from the repository root:

    python3 scripts/make_fixtures.py

Writes
  audio-fixtures/mix/{mix,s1,s2}.wav          one 8 kHz two-speaker mixture, 3.5 s, 16-bit
  audio-fixtures/librimix-mini/{mix_clean,s1,s2}/<id>.wav
                                              three LibriMix-style items, 8 kHz, 16-bit
Each mixture is s1 + s2 (sources scaled so the sum never clips); the sources are stored as
written into the mixture, so mix ≈ s1 + s2 up to 16-bit rounding.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf

RATE = 8000
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "audio-fixtures")

# Two clearly different voices: a low male US-English voice and a high female variant.
MALE = ("en-us+m3", 40)    # (espeak-ng voice, pitch 0-99)
FEMALE = ("en+f3", 75)

MAIN = (
    (MALE, "The quick brown fox jumps over the lazy dog, and then it runs far away into the forest."),
    (FEMALE, "She sells seashells by the seashore on a bright and windy summer morning."),
)

MINI = [
    ("item01",
     (MALE, "Please call Stella and ask her to bring these things with her from the store."),
     (FEMALE, "Six spoons of fresh snow peas and five thick slabs of blue cheese.")),
    ("item02",
     (FEMALE, "A large size in stockings is hard to sell, said the shopkeeper."),
     (("en-gb+m1", 30), "The birch canoe slid on the smooth planks of the old wooden dock.")),
    ("item03",
     (("en+f2", 65), "Glue the sheet to the dark blue background before the paint dries."),
     (("en-us+m5", 45), "It is easy to tell the depth of a well by dropping a small stone.")),
]


def speak(voice, pitch, text, speed=165):
    """espeak-ng speech at RATE Hz as float64 in [-1, 1]."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.wav")
        out = os.path.join(tmp, "out.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", raw, text], check=True)
        # High-quality (very steep) resampling to 8 kHz, mono, float.
        subprocess.run(["sox", raw, "-r", str(RATE), "-c", "1", "-e", "floating-point", "-b", "32", out,
                        "rate", "-v"], check=True)
        x, sr = sf.read(out, dtype="float64")
    assert sr == RATE
    return x


def fit(x, n, offset=0):
    """x delayed by `offset` samples and zero-padded/cut to length n."""
    y = np.zeros(n)
    part = x[: max(0, n - offset)]
    y[offset:offset + len(part)] = part
    return y


def make_mixture(a, b, n, offset_b, gain_b_db):
    """Two sources at 0 dB and gain_b_db relative level, peak-normalised so mix peaks at 0.8."""
    s1 = fit(a, n)
    s2 = fit(b, n, offset_b)
    s1 /= np.sqrt(np.mean(s1 ** 2)) + 1e-12
    s2 /= np.sqrt(np.mean(s2 ** 2)) + 1e-12
    s2 *= 10 ** (gain_b_db / 20)
    scale = 0.8 / np.max(np.abs(s1 + s2))
    s1, s2 = s1 * scale, s2 * scale
    return s1 + s2, s1, s2


def write16(path, x):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, x, RATE, subtype="PCM_16")


def main():
    for tool in ("espeak-ng", "sox"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit(f"make_fixtures: {tool} not found (apt-get install {tool})")
    (v1, t1), (v2, t2) = MAIN
    mix, s1, s2 = make_mixture(speak(*v1, t1), speak(*v2, t2), int(3.5 * RATE), offset_b=2000, gain_b_db=-2.0)
    d = os.path.join(ROOT, "mix")
    write16(os.path.join(d, "mix.wav"), mix)
    write16(os.path.join(d, "s1.wav"), s1)
    write16(os.path.join(d, "s2.wav"), s2)
    for k, (item, (va, ta), (vb, tb)) in enumerate(MINI):
        n = int((2.5 + 0.25 * k) * RATE)
        mix, s1, s2 = make_mixture(speak(*va, ta), speak(*vb, tb), n, offset_b=800 * (k + 1), gain_b_db=[0, 3, -4][k])
        d = os.path.join(ROOT, "librimix-mini")
        write16(os.path.join(d, "mix_clean", item + ".wav"), mix)
        write16(os.path.join(d, "s1", item + ".wav"), s1)
        write16(os.path.join(d, "s2", item + ".wav"), s2)
    print("wrote", os.path.normpath(ROOT))


if __name__ == "__main__":
    main()
