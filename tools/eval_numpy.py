#!/usr/bin/env python3
"""Independent NumPy scorer for LibriMix-style folders, to cross-check `mambasep eval`.

Implements DESIGN.md's formulas directly (float64 throughout):
  SI-SNR: remove each signal's mean; s_t = <est,s>/(|s|^2+eps) * s; e = est - s_t;
          10*log10(|s_t|^2/(|e|^2+eps) + eps), eps = 1e-8
  SI-SNRi: SI-SNR(matched estimate) - SI-SNR(mixture as the estimate), per source
  PIT: best mean SI-SNR over all permutations (itertools, any count).

Usage (from the repository root):
  # make test estimates (noisy, rescaled, some speaker-swapped) for a dataset folder
  python3 tools/eval_numpy.py make-estimates audio-fixtures/librimix-mini /tmp/est
  # score with NumPy, print JSON like `mambasep eval --json`
  python3 tools/eval_numpy.py score audio-fixtures/librimix-mini /tmp/est
  # compare with mambasep's JSON output; exits 1 if any number differs by >= 0.01 dB
  mambasep eval audio-fixtures/librimix-mini --est-dir /tmp/est --json > /tmp/swift.json
  python3 tools/eval_numpy.py compare audio-fixtures/librimix-mini /tmp/est /tmp/swift.json
"""
import argparse
import itertools
import json
import os
import sys

import numpy as np
import soundfile as sf

EPS = 1e-8


def si_snr(est, ref):
    est = est - est.mean()
    ref = ref - ref.mean()
    s_t = (np.dot(est, ref) / (np.dot(ref, ref) + EPS)) * ref
    e = est - s_t
    return 10 * np.log10(np.dot(s_t, s_t) / (np.dot(e, e) + EPS) + EPS)


def read(path):
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return x.astype(np.float64).mean(axis=1), sr


def dataset_items(root):
    mix_dir = next((os.path.join(root, d) for d in ("mix_clean", "mix") if os.path.isdir(os.path.join(root, d))), None)
    if mix_dir is None:
        sys.exit(f"{root}: no mix_clean/ or mix/ folder")
    n_src = 0
    while os.path.isdir(os.path.join(root, f"s{n_src + 1}")):
        n_src += 1
    names = sorted(f for f in os.listdir(mix_dir) if f.endswith((".wav", ".flac")) and not f.startswith("."))
    return mix_dir, n_src, names


def score(root, est_dir):
    mix_dir, n_src, names = dataset_items(root)
    items = []
    for name in names:
        stem = os.path.splitext(name)[0]
        mix, _ = read(os.path.join(mix_dir, name))
        refs = [read(os.path.join(root, f"s{k + 1}", name))[0] for k in range(n_src)]
        ests = [read(os.path.join(est_dir, f"{stem}_s{k + 1}.wav"))[0] for k in range(n_src)]
        best = None
        for perm in itertools.permutations(range(n_src)):
            vals = [si_snr(ests[perm[i]], refs[i]) for i in range(n_src)]
            if best is None or np.mean(vals) > np.mean(best[1]):
                best = (list(perm), vals)
        perm, vals = best
        base = [si_snr(mix, refs[i]) for i in range(n_src)]
        imp = [v - b for v, b in zip(vals, base)]
        items.append({"id": stem, "si_snr": float(np.mean(vals)), "si_snri": float(np.mean(imp)),
                      "permutation": perm, "si_snr_per_source": [float(v) for v in vals],
                      "si_snri_per_source": [float(v) for v in imp]})
    snri = np.array([it["si_snri"] for it in items])
    snr = np.array([it["si_snr"] for it in items])
    summary = {"count": len(items), "si_snr_mean": float(snr.mean()), "si_snr_median": float(np.median(snr)),
               "si_snr_min": float(snr.min()), "si_snri_mean": float(snri.mean()),
               "si_snri_median": float(np.median(snri)), "si_snri_min": float(snri.min())}
    return {"summary": summary, "items": items}


def make_estimates(root, out, seed=0):
    """Estimates: each source + white noise at an SNR between 0 and 25 dB, rescaled by a random
    gain and DC offset; every other item has its speakers swapped (to exercise PIT)."""
    rng = np.random.default_rng(seed)
    mix_dir, n_src, names = dataset_items(root)
    os.makedirs(out, exist_ok=True)
    for idx, name in enumerate(names):
        stem = os.path.splitext(name)[0]
        refs = []
        for k in range(n_src):
            x, sr = read(os.path.join(root, f"s{k + 1}", name))
            refs.append(x)
        order = list(range(n_src))
        if idx % 2 == 1:
            order = order[1:] + order[:1]
        for k in range(n_src):
            s = refs[order[k]]
            snr_db = rng.uniform(0, 25)
            noise = rng.standard_normal(len(s))
            noise *= np.sqrt(np.mean(s ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
            est = rng.uniform(0.3, 1.2) * (s + noise) + rng.uniform(-0.01, 0.01)
            est = np.clip(est, -1, 1)
            sf.write(os.path.join(out, f"{stem}_s{k + 1}.wav"), est.astype(np.float32), sr, subtype="FLOAT")
    print(f"wrote {len(names)} x {n_src} estimates to {out}")


def compare(reference, other):
    """Max absolute difference over every number in the two reports (items matched by id)."""
    diffs = []
    for key, v in reference["summary"].items():
        if key in other["summary"]:
            diffs.append((abs(v - other["summary"][key]), f"summary.{key}"))
    theirs = {it["id"]: it for it in other["items"]}
    for it in reference["items"]:
        o = theirs.get(it["id"])
        if o is None:
            diffs.append((float("inf"), f"item {it['id']} missing"))
            continue
        if o["permutation"] != it["permutation"]:
            diffs.append((float("inf"), f"item {it['id']} permutation {o['permutation']} != {it['permutation']}"))
        for key in ("si_snr", "si_snri"):
            diffs.append((abs(it[key] - o[key]), f"{it['id']}.{key}"))
        for key in ("si_snr_per_source", "si_snri_per_source"):
            for k, (a, b) in enumerate(zip(it[key], o.get(key, []))):
                diffs.append((abs(a - b), f"{it['id']}.{key}[{k}]"))
    return max(diffs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-estimates"); m.add_argument("root"); m.add_argument("out"); m.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("score"); s.add_argument("root"); s.add_argument("est")
    c = sub.add_parser("compare"); c.add_argument("root"); c.add_argument("est"); c.add_argument("swift_json")
    c.add_argument("--tolerance", type=float, default=0.01)
    a = ap.parse_args()
    if a.cmd == "make-estimates":
        make_estimates(a.root, a.out, a.seed)
    elif a.cmd == "score":
        print(json.dumps(score(a.root, a.est), indent=2))
    else:
        ref = score(a.root, a.est)
        with open(a.swift_json) as f:
            other = json.load(f)
        worst, where = compare(ref, other)
        n = ref["summary"]["count"]
        print(f"items: {n}; NumPy si_snri_mean {ref['summary']['si_snri_mean']:.6f} dB, "
              f"mambasep {other['summary']['si_snri_mean']:.6f} dB; max |difference| {worst:.3e} dB at {where}")
        sys.exit(0 if worst < a.tolerance else 1)


if __name__ == "__main__":
    main()
