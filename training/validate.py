#!/usr/bin/env python3
"""Devset and synthetic validation: SI-SNRi exactly as DESIGN.md ("Metrics").

SI-SNRi of one mixture = PIT-best mean SI-SNR(estimates, references) − mean SI-SNR(mixture used
as every estimate, references); ε = 1e-8; computed in float64. The model runs on each devset
mixture alone at its own length (no padding), in float32, like `mambasep separate` on a file.

CLI: `python3 training/validate.py --weights model.safetensors [--devset DIR]` prints JSON
(mean, per source group, per mixture).
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mambasep_ref.losses import pit_si_snr, si_snr   # the one definition, re-exported

__all__ = ["DevItem", "load_devset", "si_snr", "pit_si_snr", "si_snri", "evaluate_devset",
           "evaluate_synth", "group_of"]


# MARK: - Metric


def si_snri(est: Tensor, refs: Tensor, mix: Tensor) -> Tensor:
    """SI-SNRi per mixture [B] (float64): est, refs [B, C, T], mix [B, T]."""
    est, refs, mix = est.double(), refs.double(), mix.double()
    best, _ = pit_si_snr(est, refs)                                             # [B]
    base = si_snr(mix[:, None, :].expand_as(refs), refs).mean(-1)               # [B]
    return best - base


# MARK: - Devset


@dataclass
class DevItem:
    id: str
    mix: Tensor        # [T] float32
    refs: Tensor       # [C, T] float32
    groups: tuple[str, ...]


def group_of(speaker: str) -> str:
    """Source group of a devset speaker name (list.tsv): fsdd, arctic, librispeech, asterisk."""
    if speaker.startswith("fsdd"):
        return "fsdd"
    if speaker.startswith("arctic"):
        return "arctic"
    if speaker.startswith("ls"):
        return "librispeech"
    return "asterisk"


def load_devset(root: str | Path) -> list[DevItem]:
    """Read a devset: `dNNN/{mix,s1,s2}.wav` (original) or `dNNN_{mix,s1,s2}.flac` (packed).

    Raises ValueError on a missing file, a sample rate other than 8 kHz or unequal lengths.
    """
    import soundfile as sf

    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"devset folder {root} not found")
    speakers: dict[str, tuple[str, str]] = {}
    if (root / "list.tsv").exists():
        with open(root / "list.tsv", newline="") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                speakers[r["id"]] = (r["speaker1"], r["speaker2"])
    ids = sorted({p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("d")} |
                 {p.name.rsplit("_", 1)[0] for p in root.glob("d*_mix.flac")})
    if not ids:
        raise ValueError(f"devset folder {root} holds no mixtures")
    items = []
    for i in ids:
        sig = []
        for name in ("mix", "s1", "s2"):
            cands = [root / i / f"{name}.wav", root / f"{i}_{name}.flac"]
            p = next((c for c in cands if c.exists()), None)
            if p is None:
                raise ValueError(f"devset item {i}: {name} missing")
            x, sr = sf.read(p, dtype="float32")
            if sr != 8000:
                raise ValueError(f"{p}: sample rate {sr}, expected 8000")
            sig.append(torch.from_numpy(x if x.ndim == 1 else x.mean(1)))
        if not (len(sig[0]) == len(sig[1]) == len(sig[2])):
            raise ValueError(f"devset item {i}: mix/s1/s2 lengths differ")
        spk = speakers.get(i, ())
        items.append(DevItem(i, sig[0], torch.stack(sig[1:]), tuple(sorted({group_of(s) for s in spk}))))
    return items


@torch.no_grad()
def evaluate_devset(model: torch.nn.Module, items: list[DevItem], device, rank: int = 0,
                    world: int = 1) -> dict:
    """Mean and per-group SI-SNRi over `items`; with world > 1 each rank does items[rank::world]
    and the results are summed over the process group (every rank gets the full result).

    Also `peak_ratio`: the largest (estimate peak / mixture peak) over the items, the output
    level that SI-SNR training leaves free (train.py picks the exported output gain from it)."""
    was = model.training
    model.eval()
    scores = torch.zeros(len(items), dtype=torch.float64, device=device)
    peak = torch.zeros(1, dtype=torch.float64, device=device)
    for k in range(rank, len(items), world):
        it = items[k]
        est = model(it.mix[None].to(device)).float()                             # [1, C, T]
        scores[k] = si_snri(est, it.refs[None].to(device), it.mix[None].to(device))[0]
        peak = torch.maximum(peak, (est.abs().max() / it.mix.abs().max().clamp(min=1e-9)).double())
    if world > 1:
        torch.distributed.all_reduce(scores)
        torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX)
    model.train(was)
    s = scores.cpu().numpy()
    groups: dict[str, list[float]] = {}
    for it, v in zip(items, s):
        for g in it.groups:
            groups.setdefault(g, []).append(float(v))
    return {"mean": float(s.mean()), "groups": {g: float(np.mean(v)) for g, v in sorted(groups.items())},
            "peak_ratio": float(peak),
            "per_item": {it.id: round(float(v), 3) for it, v in zip(items, s)}}


@torch.no_grad()
def evaluate_synth(model: torch.nn.Module, mix: Tensor, refs: Tensor, device, batch: int = 16,
                   rank: int = 0, world: int = 1) -> float:
    """Mean SI-SNRi on a fixed synthetic set (mix [M, T], refs [M, C, T]), batched."""
    was = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    starts = list(range(0, len(mix), batch))
    for s in starts[rank::world]:
        m, r = mix[s:s + batch].to(device), refs[s:s + batch].to(device)
        total[0] += si_snri(model(m).float(), r, m).sum()
        total[1] += len(m)
    if world > 1:
        torch.distributed.all_reduce(total)
    model.train(was)
    return float(total[0] / total[1].clamp(min=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--devset", default="/work/shared/devset")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--per-item", action="store_true")
    args = ap.parse_args()
    from mambasep_ref.io import load_model  # noqa: PLC0415

    try:
        model = load_model(args.weights)
        items = load_devset(args.devset)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    model = model[0] if isinstance(model, tuple) else model
    r = evaluate_devset(model.to(args.device), items, args.device)
    if not args.per_item:
        r.pop("per_item")
    print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
