"""Helpers shared by several test files (pyproject.toml puts tests/ on pytest's import path)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np
import pytest
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


def triton_kernel_modules(*names: str) -> list:
    """The Triton kernel modules `mambasep_ref.<name>` (in the order given: a module after those
    it imports from), ready for this machine: on a CUDA GPU as imported; without one, defined for
    Triton's CPU interpreter (TRITON_INTERPRET=1 is set before they are imported, and modules an
    earlier test imported without it are reloaded). Skips the calling test module, saying why,
    when Triton does not import or the interpreter was switched off."""
    cuda = torch.cuda.is_available()
    if not cuda:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # must precede the kernels' definition
    try:
        import triton  # noqa: F401, PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the installation
        pytest.skip(f"Triton does not import ({exc}); the kernels cannot run", allow_module_level=True)
    mods = [importlib.import_module(f"mambasep_ref.{n}") for n in names]
    if not cuda and not all(m.interpreter_enabled() for m in mods):
        if os.environ["TRITON_INTERPRET"].lower() not in ("1", "true", "on", "yes"):
            pytest.skip("no CUDA GPU and TRITON_INTERPRET is set to off: the Triton kernels cannot run",
                        allow_module_level=True)
        mods = [importlib.reload(m) for m in mods]
    return mods
