"""Helpers shared by several test files (pyproject.toml puts tests/ on pytest's import path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from data import Corpus, save_cache

SPEAKERS = ["kokoro:af_bella", "kokoro:af_bella+bm_george", "kokoro:bm_george+am_liam",
            "kokoro:am_adam", "arctic:slt", "arctic:slt", "espeak:en-us+f1:p50", "piper:joe"]


def make_corpus(seed: int = 0, n_per: int = 3) -> Corpus:
    """A decoded corpus of tones: `n_per` utterances per SPEAKERS entry (a distinct f0 each),
    0.3–6 s long, int16, all in the training split."""
    rng = np.random.default_rng(seed)
    chunks, start, length, spk, split = [], [], [], [], []
    pos = 0
    for s_i, s in enumerate(SPEAKERS):
        for _ in range(n_per):
            n = int(rng.uniform(0.3, 6.0) * 8000)
            t = np.arange(n) / 8000
            x = 0.5 * np.sin(2 * np.pi * (100 + 40 * s_i) * t) * rng.uniform(0.2, 1.0)
            chunks.append(np.round(x * 32767).astype(np.int16))
            start.append(pos)
            length.append(n)
            spk.append(s)
            split.append("train")
            pos += n
    return Corpus(torch.from_numpy(np.concatenate(chunks)), np.array(start), np.array(length),
                  spk, np.array(split, dtype="<U8"), [f"u{i}" for i in range(len(spk))])


def write_cache(dst: Path) -> None:
    """A decoded-corpus cache (data.save_cache) from the synthetic test corpus."""
    c = make_corpus(seed=1, n_per=3)
    rows = [{"id": c.ids[i], "speaker": c.speakers[i],
             "split": "heldout" if c.speakers[i] in ("piper:joe", "kokoro:am_adam") else "train",
             "start": c.start[i], "length": c.length[i]} for i in range(len(c.ids))]
    save_cache(dst, c.audio.numpy(), rows)
