#!/usr/bin/env python3
"""Write train.py's synthetic held-out validation set as a LibriMix-style folder of WAV files.

    python3 training/synth_set.py --data .carry/data --out /tmp/synthmix
    mambasep separate /tmp/synthmix/mix_clean/*.wav -o /tmp/synth-est --format float
    mambasep eval /tmp/synthmix --est-dir /tmp/synth-est

The set is exactly the one `train.py` validates on (`--synth-val 200`, `--seconds 4`, `--seed 0`
by default): mixtures of the corpus's held-out speakers, no speed perturbation, the same fixed
random choices. So `mambasep eval` on it reproduces the `synth_sisnri` column of a training log
for any exported model, on the CPU. Files are 32-bit float WAV (no quantisation; mixture = sum
of the sources up to float rounding): `mix_clean/yNNN.wav`, `s1/yNNN.wav`, `s2/yNNN.wav`, ….

`--engine NAME` writes mixtures of that source's speakers instead (speaker names `NAME:…`,
e.g. `fotaq`, whatever their split), drawn the same way: a check of how the model does on the
voices of a corpus before or after training on them, e.g. before packing a new one:

    python3 training/synth_set.py --data .carry/data --engine fotaq --n 60 --out /tmp/fotaqmix

`--data` is a packed corpus (`prepare_data.py`'s Opus shards, decoded into `--cache` once) or a
decoded cache (a folder with corpus8k.npy). It is an error when the corpus holds fewer than two
held-out speakers, or when `--out` already has a `mix_clean` folder (nothing is overwritten).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from data import SR, Corpus, MixSampler, decoded_cache, engine_mask, load_corpus


def only_engine(corpus: Corpus, engine: str) -> Corpus:
    """The corpus with the utterances of `engine`'s speakers as its held-out split, others unused."""
    return dataclasses.replace(corpus, split=np.where(engine_mask(corpus, {engine}), "heldout", "unused"))


def write_set(corpus: Corpus, out: Path, n: int, seconds: float, seed: int) -> int:
    """Write n held-out mixtures and their sources under out (LibriMix layout); returns n."""
    mix, srcs = MixSampler(corpus, "heldout", seconds=seconds, seed=seed).fixed_set(n)  # [M, T], [M, C, T]
    names = ["mix_clean"] + [f"s{c + 1}" for c in range(srcs.shape[1])]
    tmp = Path(tempfile.mkdtemp(prefix=".synth-", dir=out.parent))
    for d in names:
        (tmp / d).mkdir()
    for i in range(mix.shape[0]):
        sf.write(tmp / "mix_clean" / f"y{i:03d}.wav", mix[i].numpy(), SR, subtype="FLOAT")
        for c in range(srcs.shape[1]):
            sf.write(tmp / f"s{c + 1}" / f"y{i:03d}.wav", srcs[i, c].numpy(), SR, subtype="FLOAT")
    out.mkdir(exist_ok=True)
    for d in names:                       # complete folders appear at once
        os.replace(tmp / d, out / d)
    tmp.rmdir()
    return mix.shape[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="packed corpus (Opus shards) or decoded cache")
    ap.add_argument("--out", required=True, help="output folder (LibriMix layout)")
    ap.add_argument("--cache", help="where to decode the shards (default: a folder in the temp dir)")
    ap.add_argument("--n", type=int, default=200, help="mixtures (train.py --synth-val; default 200)")
    ap.add_argument("--seconds", type=float, default=4.0, help="mixture length (train.py --seconds)")
    ap.add_argument("--seed", type=int, default=0, help="train.py --seed")
    ap.add_argument("--engine", help="mix this source's speakers (NAME:…) instead of the held-out ones")
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    try:
        if args.n < 1:
            raise ValueError(f"--n {args.n}: need at least one mixture")
        if (out / "mix_clean").exists():
            raise ValueError(f"{out / 'mix_clean'} exists; choose a new --out")
        # Not train.py's default cache (DATA/decoded): that would land in .carry and travel.
        corpus = load_corpus(decoded_cache(data, args.cache or Path(tempfile.gettempdir()) / "mambasep-decoded"))
        if args.engine:
            corpus = only_engine(corpus, args.engine)
        which = f"speakers of {args.engine}" if args.engine else "held-out speakers"
        if len({s for s, p in zip(corpus.speakers, corpus.split) if p == "heldout"}) < 2:
            raise ValueError(f"{data}: fewer than two {which}; nothing to mix")
        out.parent.mkdir(parents=True, exist_ok=True)
        n = write_set(corpus, out, args.n, args.seconds, args.seed)
    except (ValueError, OSError) as e:
        print(f"synth_set: error: {e}", file=sys.stderr)
        return 1
    print(f"{out}: {n} mixtures of {which}, {args.seconds:g} s each", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
