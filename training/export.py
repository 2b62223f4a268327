#!/usr/bin/env python3
"""Export a DPMamba model to .safetensors (weights + config metadata, docs/MODEL.md).

    python training/export.py --preset xs --init random --seed 0 --out xs-random.safetensors
    python training/export.py --preset xs --intra-mixer s4d --inter-mixer s4d --out s4d.safetensors
    python training/export.py --checkpoint run/ckpt.pt --out model.safetensors --name dpmamba-xs
    python training/export.py --weights run/best.safetensors --output-gain 0.125 --out bundled.safetensors
    python training/export.py --checkpoint a/last.pt --average b/last.pt --output-gain 0.5 --out soup.safetensors

`--weights` re-exports a .safetensors file and keeps its metadata (other flags override keys).
`--output-gain G` multiplies `decoder.conv.weight` by G, a power of two, so every output sample is
exactly G times the original and SI-SNR is unchanged; models trained with scale-invariant SI-SNR
put out sources at an arbitrary level (ours ~5× the mixture), which clips in 16-bit WAV. The
metadata key `output_gain` records G.
`--average FILE...` averages the weights of the source (`--weights` or `--checkpoint`) and these
files (.safetensors or training checkpoints) uniformly, before `--output-gain`: a "model soup"
(Wortsman et al., 2022) of runs that started from the same weights. Every file must have the
same config and the same `output_gain` (1 for a checkpoint), or the decoders would be averaged
at different scales; the metadata key `averaged` records how many models went in.

A checkpoint is a torch file holding {"model": state_dict, "config": config JSON string}
(prefixes "module." and "_orig_mod." from DDP / torch.compile are stripped). The written file
is read back and compared tensor for tensor; any difference is an error.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from mambasep_ref.config import PRESETS, ModelConfig, parse_overrides
from mambasep_ref.io import (WeightsError, load_model, load_weights, save_model,
                             scale_output)
from mambasep_ref.model import DPMamba


def random_model(cfg: ModelConfig, seed: int) -> DPMamba:
    """The model's own initialisation after torch.manual_seed(seed) (what fixtures.py uses)."""
    torch.manual_seed(seed)
    return DPMamba(cfg).eval()


def average_into(model: DPMamba, gain: float, others: list[str]) -> None:
    """Replace model's weights by the uniform mean of its own and those in `others` (float64 sums).

    Raises ValueError naming the file whose config or output gain differs from model's.
    """
    states = [model.state_dict()]
    for path in others:
        other, other_meta = load_weights(path)
        other_gain = float(other_meta.get("output_gain", "1"))
        if other.cfg != model.cfg:
            raise ValueError(f"--average {path}: its config differs from the source's")
        if other_gain != gain:
            raise ValueError(f"--average {path}: output_gain {other_gain:g} differs from the "
                             f"source's {gain:g}; export both with the same gain first")
        states.append(other.state_dict())
    with torch.no_grad():
        for k, v in states[0].items():
            mean = sum(s[k].double() for s in states) / len(states)
            v.copy_(mean.to(v.dtype))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Export a DPMamba model to .safetensors.")
    ap.add_argument("--out", required=True, help="output .safetensors path")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="training checkpoint {'model', 'config'} to export")
    src.add_argument("--weights", help="exported .safetensors to re-export (metadata kept)")
    src.add_argument("--init", choices=["random"], default=None,
                     help="export a freshly initialised model (default when no --checkpoint)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="xs")
    ap.add_argument("--seed", type=int, default=0, help="seed for --init random")
    ap.add_argument("--intra-mixer", choices=["mamba", "s4d"])
    ap.add_argument("--inter-mixer", choices=["mamba", "s4d"])
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="other config overrides, e.g. --set num_speakers=3 s4d_state=32")
    ap.add_argument("--name", help='metadata "name" (default dpmamba-<preset>)')
    ap.add_argument("--license", help='metadata "license"')
    ap.add_argument("--trained-on", help='metadata "trained_on"')
    ap.add_argument("--output-gain", type=float, default=None,
                    help="multiply decoder.conv.weight by this power of two (metadata output_gain)")
    ap.add_argument("--average", nargs="+", default=[], metavar="FILE",
                    help="average these models' weights (.safetensors or checkpoints, same config "
                         "and output gain) with the source's, uniformly, before --output-gain")
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f32",
                    help="tensor dtype in the file (f16 halves the size; default f32)")
    args = ap.parse_args(argv)
    meta = {}
    try:
        if source := args.weights or args.checkpoint:
            if args.intra_mixer or args.inter_mixer or args.set:
                raise ValueError(f"{'--weights' if args.weights else '--checkpoint'} takes its config "
                                 "from the file; drop --intra-mixer/--inter-mixer/--set")
            model, file_meta = load_weights(source)            # metadata {} for a checkpoint
            meta = {k: v for k, v in file_meta.items() if k not in ("config", "format")}
            default_name = meta.get("name", "dpmamba")
        else:
            overrides = parse_overrides(args.set, "--set")
            if args.intra_mixer:
                overrides["intra_mixer"] = args.intra_mixer
            if args.inter_mixer:
                overrides["inter_mixer"] = args.inter_mixer
            cfg = ModelConfig.preset(args.preset, **overrides)
            model = random_model(cfg, args.seed)
            default_name = f"dpmamba-{args.preset}"
        meta["name"] = args.name or default_name
        if args.average:
            if not source:
                raise ValueError("--average needs --weights or --checkpoint as its first model")
            average_into(model, float(meta.get("output_gain", "1")), args.average)
            meta["averaged"] = str(1 + len(args.average))
        if args.output_gain is not None:
            scale_output(model, args.output_gain)
            meta["output_gain"] = f"{float(meta.get('output_gain', '1')) * args.output_gain:g}"
        if args.license:
            meta["license"] = args.license
        if args.trained_on:
            meta["trained_on"] = args.trained_on
        if args.dtype == "f16":
            with torch.no_grad():
                for p in model.state_dict().values():
                    p.copy_(p.half().float())
        save_model(model, args.out, meta, dtype=torch.float16 if args.dtype == "f16" else torch.float32)
        back = load_model(args.out)
        ref, got = model.state_dict(), back.state_dict()
        bad = [k for k in ref if not torch.equal(ref[k].float(), got[k])]
        if bad or back.cfg != model.cfg:
            raise WeightsError(f"{args.out}: round trip differs ({', '.join(bad[:5]) or 'config'})")
    except (ValueError, OSError) as e:
        print(f"export: error: {e}", file=sys.stderr)
        return 1
    n = sum(p.numel() for p in model.parameters())
    size = os.path.getsize(args.out)
    print(f"{args.out}: {meta['name']}, {n:,} parameters, {size / 1e6:.2f} MB, "
          f"config {model.cfg.to_json()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
