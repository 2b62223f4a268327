#!/usr/bin/env python3
"""Plot training curves (train loss, learning rate, devset and synthetic SI-SNRi) from log.jsonl.

    python3 training/plot_curves.py --out training/curves.png \
        dpmamba-xs=training/checkpoints/dpmamba-xs/log.jsonl \
        dps4-xs=training/checkpoints/dps4-xs/log.jsonl

Each argument is NAME=LOG[,LOG...]: one or more log.jsonl files of one run (train.py's
format: one JSON object per line, events "train" and "val"). Several logs of one run are
merged by step, so the logs of successive pieces can be given whether or not each repeats the
earlier ones; the step counter continues across pieces. A piece boundary is where the "wall"
clock of train events starts again, and is drawn as a dotted vertical line.

The x axis counts training examples (4 s mixtures), so runs with different batch sizes compare:
`--batch NAME=B` gives a run's examples per step over all GPUs (default 8), and
`--after NAME=EARLIER` starts a run where run EARLIER ended (a run initialised from its
weights), `--after NAME=EARLIER@STEP` where EARLIER was at STEP (a run initialised from that
checkpoint); give `--after` in the order the runs happened. Needs matplotlib (`python3 -m pip install matplotlib`); draws without a display (Agg).

`--compare` (exactly two runs of one plan, e.g. issue #17's old and new scan paths from one
seed) also prints how far their training losses are apart against how much each scatters
(`compare`), and their validations side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Curves", "read_logs", "plot", "compare"]


# MARK: - Reading


@dataclass
class Curves:
    """One model's events, sorted by step, with duplicate steps removed."""

    name: str
    batch: int = 8                                    # examples per optimiser step
    offset: float = 0.0                               # examples seen before this run's step 0
    train: list[dict] = field(default_factory=list)   # "train" events
    val: list[dict] = field(default_factory=list)     # "val" events
    piece_starts: list[int] = field(default_factory=list)  # first train step of pieces 2, 3, …


def read_logs(name: str, paths: list[Path]) -> Curves:
    """Merge `paths` (log.jsonl files) into one model's curves.

    Raises ValueError for a missing file, a line that is not JSON, or logs without train events.
    The first file's event wins where two files log the same (event, step).
    """
    seen: dict[tuple[str, int], dict] = {}
    for p in paths:
        if not p.is_file():
            raise ValueError(f"{p}: no such file")
        for n, line in enumerate(p.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{p}:{n}: not JSON ({err})") from None
            if e.get("event") in ("train", "val") and isinstance(e.get("step"), int):
                seen.setdefault((e["event"], e["step"]), e)
    c = Curves(name)
    c.train = sorted((e for (k, _), e in seen.items() if k == "train"), key=lambda e: e["step"])
    c.val = sorted((e for (k, _), e in seen.items() if k == "val"), key=lambda e: e["step"])
    if not c.train:
        raise ValueError(f"{name}: no train events in {', '.join(map(str, paths))}")
    for a, b in zip(c.train, c.train[1:]):
        if b.get("wall", 0.0) < a.get("wall", 0.0):
            c.piece_starts.append(b["step"])
    return c


def examples(c: Curves, step: float) -> float:
    """Examples seen (thousands) at `step` of run c."""
    return (c.offset + step * c.batch) / 1000.0


def compare(a: Curves, b: Curves, k: int = 9) -> dict:
    """How two runs of one plan agree: at the steps both logged, d = loss_b − loss_a.

    Each run's logged loss scatters around its own trend (a point minus the centred moving
    average of k points); two independent runs' difference would scatter by s = √(s_a² + s_b²).
    `mean_d` ± `se` (std(d)/√n; consecutive points are correlated, so an estimate) says whether
    one run lies systematically above the other; `agree` is |mean_d| ≤ max(2·se, s/4), i.e.
    within noise. `val` lists (step, devset a, devset b) where both validated."""
    la = {e["step"]: e["loss"] for e in a.train if "loss" in e}
    lb = {e["step"]: e["loss"] for e in b.train if "loss" in e}
    steps = sorted(set(la) & set(lb))
    if len(steps) < 3:
        raise ValueError(f"{a.name} and {b.name} share {len(steps)} logged steps; need 3 or more")
    ya, yb = np.array([la[t] for t in steps]), np.array([lb[t] for t in steps])
    d = yb - ya
    s = float(np.sqrt(np.std(ya - smooth(ya, k)) ** 2 + np.std(yb - smooth(yb, k)) ** 2))
    se = float(np.std(d) / np.sqrt(len(d)))
    mean_d = float(np.mean(d))
    va = {e["step"]: e.get("dev_sisnri") for e in a.val}
    vb = {e["step"]: e.get("dev_sisnri") for e in b.val}
    return {"steps": len(steps), "mean_d": round(mean_d, 4), "se": round(se, 4), "scatter": round(s, 4),
            "max_abs_d": round(float(np.max(np.abs(d))), 4), "agree": abs(mean_d) <= max(2 * se, s / 4),
            "val": [(t, va[t], vb[t]) for t in sorted(set(va) & set(vb))]}


# MARK: - Plotting


def smooth(y: np.ndarray, k: int) -> np.ndarray:
    """Centred moving average over k points (k clipped to len(y)); edges use fewer points."""
    k = max(1, min(k, len(y)))
    w = np.ones(k)
    return np.convolve(y, w, "same") / np.convolve(np.ones_like(y), w, "same")


def plot(curves: list[Curves], out: Path, smooth_k: int = 9) -> None:
    """Write a 2×2 figure: train loss, devset SI-SNRi, synthetic SI-SNRi, learning rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    ax_loss, ax_dev, ax_syn, ax_lr = axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]
    # Ten default colours; past ten runs, tab20's twenty (dark and light of ten hues).
    colours = [f"C{i}" for i in range(10)] if len(curves) <= 10 else list(plt.get_cmap("tab20").colors)
    for i, c in enumerate(curves):
        col = colours[i % len(colours)]
        st = np.array([examples(c, e["step"]) for e in c.train])
        loss = np.array([e["loss"] for e in c.train], dtype=float)
        ax_loss.plot(st, loss, color=col, alpha=0.25, lw=0.8)
        ax_loss.plot(st, smooth(loss, smooth_k), color=col, lw=1.6, label=c.name)
        ax_lr.plot(st, [e["lr"] for e in c.train], color=col, lw=1.4, label=c.name)
        vs = [examples(c, e["step"]) for e in c.val]
        ax_dev.plot(vs, [e["dev_sisnri"] for e in c.val], "o-", color=col, ms=4, label=c.name)
        ax_syn.plot(vs, [e["synth_sisnri"] for e in c.val], "o-", color=col, ms=4, label=c.name)
        if c.val:
            b = max(c.val, key=lambda e: e["dev_sisnri"])
            ax_dev.annotate(f"{b['dev_sisnri']:.2f} dB @ step {b['step']}",
                            (examples(c, b["step"]), b["dev_sisnri"]),
                            textcoords="offset points", xytext=(4, 6), color=col, fontsize=9)
        for s in c.piece_starts:
            for ax in axes.flat:
                ax.axvline(examples(c, s), color=col, ls=":", lw=1)
    # Loss values start near +40 dB at step 0; keep the interesting range visible.
    lo = min(min(e["loss"] for e in c.train) for c in curves)
    ax_loss.set_ylim(lo - 1, 5)
    hi = max((e["dev_sisnri"] for c in curves for e in c.val), default=1.0)
    ax_dev.set_ylim(top=hi + 0.3)
    ax_loss.set_title("train loss (−PIT SI-SNR, dB; faint: raw, bold: moving average)")
    ax_dev.set_title("devset SI-SNRi (60 real-speech mixtures, dB)")
    ax_syn.set_title("synthetic held-out SI-SNRi (200 mixtures of held-out voices, dB)")
    ax_lr.set_title("learning rate (dotted: start of a new piece)")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=9)
    for ax in axes[1]:
        ax.set_xlabel("training examples seen (thousands of 4 s mixtures)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


# MARK: - CLI


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", metavar="NAME=LOG[,LOG...]")
    ap.add_argument("--out", default="training/curves.png")
    ap.add_argument("--smooth", type=int, default=9, help="moving-average width for the loss (points)")
    ap.add_argument("--batch", action="append", default=[], metavar="NAME=B",
                    help="examples per step of run NAME, all GPUs together (default 8)")
    ap.add_argument("--compare", action="store_true",
                    help="with exactly two runs: print how their training losses agree (compare)")
    ap.add_argument("--after", action="append", default=[], metavar="NAME=EARLIER",
                    help="run NAME started from the weights at the end of run EARLIER (or at its step STEP: EARLIER@STEP)")
    args = ap.parse_args()
    curves = []
    try:
        for spec in args.models:
            name, sep, logs = spec.partition("=")
            if not sep or not name or not logs:
                raise ValueError(f"'{spec}': expected NAME=LOG[,LOG...]")
            curves.append(read_logs(name, [Path(p) for p in logs.split(",")]))
        by_name = {c.name: c for c in curves}

        def pairs(items: list[str], what: str) -> list[tuple[Curves, str]]:
            out = []
            for it in items:
                k, sep, v = it.partition("=")
                if not sep or k not in by_name:
                    raise ValueError(f"--{what} '{it}': expected NAME=VALUE with a NAME given above")
                out.append((by_name[k], v))
            return out

        for c, v in pairs(args.batch, "batch"):
            if not v.isdigit() or int(v) < 1:
                raise ValueError(f"--batch {c.name}={v}: not a positive integer")
            c.batch = int(v)
        for c, v in pairs(args.after, "after"):
            earlier, at, step = v.partition("@")
            if earlier not in by_name or by_name[earlier] is c:
                raise ValueError(f"--after {c.name}={v}: no other run named {earlier}")
            if at and not step.isdigit():
                raise ValueError(f"--after {c.name}={v}: STEP must be a step number")
            e = by_name[earlier]
            c.offset = e.offset + (int(step) if at else e.train[-1]["step"]) * e.batch
        if args.compare and len(curves) != 2:
            raise ValueError(f"--compare takes exactly two runs, got {len(curves)}")
        cmp = compare(*curves, args.smooth) if args.compare else None
        plot(curves, Path(args.out), args.smooth)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    for c in curves:
        last = c.val[-1] if c.val else {}
        print(f"{c.name}: {len(c.train)} train points to step {c.train[-1]['step']}, {len(c.val)} val; "
              f"last devset {last.get('dev_sisnri')} dB, pieces {1 + len(c.piece_starts)}", file=sys.stderr)
    if cmp is not None:
        a, b = curves
        print(f"{b.name} − {a.name}: training loss {cmp['mean_d']:+.4f} ± {cmp['se']:.4f} dB over {cmp['steps']} "
              f"logged steps (largest {cmp['max_abs_d']:.4f}); each run scatters {cmp['scatter']:.4f} → "
              f"{'agree within noise' if cmp['agree'] else 'DIFFER'}; devset "
              + ", ".join(f"{t}: {x} / {y}" for t, x, y in cmp["val"]), file=sys.stderr)
    print(args.out)


if __name__ == "__main__":
    main()
