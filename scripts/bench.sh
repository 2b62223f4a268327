#!/usr/bin/env bash
# Times the Swift engine against the PyTorch reference (training/separate.py) on the same input
# and the same random-init XS weights, side by side in one run, and prints a Markdown table for
# BENCHMARKS.md.
#
# Usage: scripts/bench.sh [SECONDS]        (default 60; the input is 8 kHz mono)
# Env:   BENCH_DIR   work folder (default /tmp/mambasep-bench; weights, input and outputs go there)
#        SCRATCH     SwiftPM scratch folder for the release build (default .build-bench)
#        SKIP_TORCH  set to 1 to time only the Swift engine
#        HOUR=1      also separate a one-hour input and report its peak RSS (takes ~10-15 min)
#
# The input is the dev-set mixtures (../shared/devset/*/mix.wav) concatenated and cut to SECONDS;
# without the dev set, a synthetic two-voice signal is used. Timings are wall-clock seconds of the
# whole command (model load, audio I/O, resampling included) from /usr/bin/time; PyTorch's
# separate.py also reports its forward time alone, shown in its own column.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS="${1:-60}"
WORK="${BENCH_DIR:-/tmp/mambasep-bench}"
SCRATCH="${SCRATCH:-.build-bench}"
PEAK_GFLOPS=95
mkdir -p "$WORK"
cd "$ROOT"

echo "== building (release, $SCRATCH)" >&2
swift build -c release --scratch-path "$SCRATCH" >&2
BIN="$ROOT/$SCRATCH/release/mambasep"

echo "== weights: random-init XS, seed 0" >&2
python3 training/export.py --preset xs --init random --seed 0 --out "$WORK/xs.safetensors" >&2

echo "== input: ${SECS} s at 8 kHz" >&2
DEVSET="$ROOT/../shared/devset"
if [ -d "$DEVSET" ]; then
    sox $(ls "$DEVSET"/*/mix.wav | sort) -r 8000 -c 1 "$WORK/concat.wav"
    # Repeat the concatenation if it is shorter than requested.
    reps=$(python3 -c "import math,sys; print(max(0, math.ceil($SECS / float(sys.argv[1])) - 1))" "$(soxi -D "$WORK/concat.wav")")
    sox "$WORK/concat.wav" "$WORK/concat2.wav" repeat "$reps"
    sox "$WORK/concat2.wav" -b 16 "$WORK/input.wav" trim 0 "$SECS"
    rm -f "$WORK/concat.wav" "$WORK/concat2.wav"
else
    sox -n -r 8000 -c 1 -b 16 "$WORK/input.wav" synth "$SECS" sine 180-260 sine 300-220 tremolo 3 60 gain -6
fi
sox "$WORK/input.wav" "$WORK/short.wav" trim 0 12

# time_cmd LABEL CMD... → prints "LABEL wall user maxrss_kb" to $WORK/times.txt, stderr to $WORK/LABEL.err
time_cmd() {
    local label="$1"; shift
    /usr/bin/time -f "$label %e %U %M" -o "$WORK/time.tmp" "$@" > /dev/null 2> "$WORK/$label.err"
    cat "$WORK/time.tmp" >> "$WORK/times.txt"
}
: > "$WORK/times.txt"
echo "== machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

for th in 1 2; do
    echo "== swift, $th thread(s)" >&2
    rm -rf "$WORK/out-swift-$th"
    time_cmd "swift-$th" "$BIN" separate "$WORK/input.wav" -o "$WORK/out-swift-$th" --model "$WORK/xs.safetensors" --threads "$th"
done
if [ "${SKIP_TORCH:-0}" != 1 ]; then
    for th in 1 2; do
        echo "== pytorch, $th thread(s)" >&2
        rm -rf "$WORK/out-torch-$th"
        time_cmd "torch-$th" python3 training/separate.py --model "$WORK/xs.safetensors" --device cpu --threads "$th" \
            "$WORK/input.wav" -o "$WORK/out-torch-$th"
    done
    # Agreement on a 12 s input that fits one Swift window (same computation as PyTorch's single pass).
    rm -rf "$WORK/agree-swift" "$WORK/agree-torch"
    "$BIN" separate "$WORK/short.wav" -o "$WORK/agree-swift" --model "$WORK/xs.safetensors" --window 20 > /dev/null
    python3 training/separate.py --model "$WORK/xs.safetensors" --device cpu "$WORK/short.wav" -o "$WORK/agree-torch" 2> /dev/null
fi
echo "== machine load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

if [ "${HOUR:-0}" = 1 ]; then
    echo "== one-hour input (peak RSS)" >&2
    sox $(for _ in $(seq $((3600 / SECS + 1))); do echo "$WORK/input.wav"; done) "$WORK/hour-full.wav"
    sox "$WORK/hour-full.wav" "$WORK/hour.wav" trim 0 3600 && rm -f "$WORK/hour-full.wav"
    rm -rf "$WORK/out-hour"
    time_cmd "swift-hour" "$BIN" separate "$WORK/hour.wav" -o "$WORK/out-hour" --model "$WORK/xs.safetensors"
fi

python3 - "$WORK" "$SECS" "$PEAK_GFLOPS" <<'PY'
import json, math, os, re, struct, sys
import numpy as np
import soundfile as sf

work, secs, peak = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])

# FLOPs per audio second from the model config (XS at 8 kHz), for 16 s windows.
with open(os.path.join(work, "xs.safetensors"), "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    cfg = json.loads(json.loads(f.read(n))["__metadata__"]["config"])
N, C, K, H = cfg["n_filters"], cfg["num_speakers"], cfg["chunk_size"], cfg["hop_size"]
E, R, M = cfg["expand"] * N, cfg["dt_rank"], cfg["d_state"]
rate, win = cfg["sample_rate"], 16.0
T = int(win * rate)
L = (T - cfg["kernel_size"]) // cfg["stride"] + 1
gap = K - (H + L % K) % K
S = 2 * (L + gap + 2 * H - H) // K
P = S * K                                    # positions seen by each path
per_path = N * 2 * E + 2 * (E * (R + 2 * M) + R * E) + E * N     # MACs per position (both directions)
mac_blocks = cfg["num_blocks"] * 2 * P * per_path
mac_head = L * (N * N) + P * (N * C * N) + C * L * 3 * N * N + L * N * cfg["kernel_size"] * (1 + C)
mac = (mac_blocks + mac_head) / win
steps = cfg["num_blocks"] * 2 * 2 * P * E * M / win              # channel·state·steps of the scan
scan_flops = 6 * steps                       # ΔA mul, h FMA (2), Δ·B·x mul, C·h FMA (2); exp not counted
flops = 2 * mac + scan_flops

times = {}
for line in open(os.path.join(work, "times.txt")):
    label, wall, user, rss = line.split()
    times[label] = (float(wall), float(user), int(rss))

def fwd_time(label):
    try:
        m = re.search(r"forward ([0-9.]+) s", open(os.path.join(work, label + ".err")).read())
        return float(m.group(1)) if m else None
    except FileNotFoundError:
        return None

print(f"Input {secs:.0f} s at 8 kHz; XS random-init weights (seed 0); model {mac/1e9:.2f} GMAC "
      f"+ {steps/1e6:.0f} M scan channel·state·steps per audio second = {flops/1e9:.2f} GFLOP/s of audio "
      f"(exp not counted).\n")
print("| engine | threads | wall s | RTF | forward-only s | speed vs PyTorch (same threads) | GFLOP/s | % of 95 GFLOP/s | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|---|")
for eng in ("swift", "torch"):
    for th in (1, 2):
        key = f"{eng}-{th}"
        if key not in times:
            continue
        wall, user, rss = times[key]
        fwd = fwd_time(key) if eng == "torch" else None
        other = times.get(("torch" if eng == "swift" else "swift") + f"-{th}")
        ratio = f"{other[0] / wall:.2f}×" if eng == "swift" and other else ("1.00×" if eng == "torch" else "–")
        gf = flops * secs / wall / 1e9
        print(f"| {'Swift (mambasep)' if eng == 'swift' else 'PyTorch (separate.py)'} | {th} | {wall:.2f} | "
              f"{wall / secs:.3f} | {fwd if fwd is not None else '–'} | {ratio} | {gf:.1f} | "
              f"{100 * gf / peak:.0f}% | {rss / 1024:.0f} |")
if "swift-hour" in times:
    wall, user, rss = times["swift-hour"]
    print(f"\nOne hour of 8 kHz audio: {wall:.0f} s wall (RTF {wall / 3600:.3f}), peak RSS {rss / 1024:.0f} MB "
          f"(/usr/bin/time -f %M, maximum resident set size).")

a = os.path.join(work, "agree-swift", "short_s1.wav")
b = os.path.join(work, "agree-torch", "short_s1.wav")
if os.path.exists(a) and os.path.exists(b):
    errs = []
    for s in (1, 2):
        x, _ = sf.read(os.path.join(work, "agree-swift", f"short_s{s}.wav"), dtype="float64")
        y, _ = sf.read(os.path.join(work, "agree-torch", f"short_s{s}.wav"), dtype="float64")
        errs.append(10 * math.log10(np.sum(y ** 2) / max(np.sum((x - y) ** 2), 1e-20)))
    print(f"\nAgreement on a 12 s input (one window): Swift vs PyTorch output SNR "
          f"{', '.join(f'{e:.1f} dB' for e in errs)} (16-bit WAV files; PyTorch rescales peaks > 1, Swift clips).")
PY
