#!/usr/bin/env bash
# Benchmarks `mambasep stream` (release build) and prints a Markdown report for BENCHMARKS.md:
#   1. algorithmic latency (what --verbose reports) for 8, 16, 44.1 and 48 kHz input;
#   2. throughput (RTF) and peak RSS (/usr/bin/time -v) on a 10-minute input, with a 1-minute
#      input beside it to show that memory does not grow with the input's length;
#   3. end-to-end latency when the input arrives in real time (20 ms pieces, paced), including
#      the time to compute each window;
#   4. three minutes of digital silence: exact length, all zeros, no NaN;
#   5. development-set SI-SNRi of streaming vs offline `separate` (60 mixtures, `mambasep eval`),
#      and the SI-SNR between the two outputs;
#   6. speaker order over a long input: 120 s of two corpus talkers speaking throughout
#      (Asterisk "allison" + Piper "joe"), SI-SNRi per 4 s segment and over the whole file with
#      one speaker assignment, and how many segments would prefer the other assignment.
#
# Usage: scripts/bench_stream.sh
# Env:   MODEL      model name or path (default: the bundled model)
#        SCRATCH    SwiftPM scratch folder for the release build (default .build-streaming)
#        BENCH_DIR  work folder (default /tmp/mambasep-bench-stream)
#        THREADS    --threads for every run (default: all CPUs)
#        STREAM_ARGS extra options for `stream`, e.g. "--block 0.5 --window 1.5 --lookahead 0.25"
#        SKIP_DEVSET=1 / SKIP_LONG=1 / SKIP_REALTIME=1 / SKIP_ORDER=1 to leave parts out
#
# Needs sox and python3 (numpy, scipy, soundfile); the dev set and the corpus are read from
# ../shared.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${BENCH_DIR:-/tmp/mambasep-bench-stream}"
SCRATCH="${SCRATCH:-.build-streaming}"
THREADS="${THREADS:-$(nproc)}"
DEVSET="$ROOT/../shared/devset"
read -r -a EXTRA <<< "${STREAM_ARGS:-}"
mkdir -p "$WORK"
cd "$ROOT"

echo "== building (release, $SCRATCH)" >&2
swift build -c release --scratch-path "$SCRATCH" >&2
BIN="$ROOT/$SCRATCH/release/mambasep"
MODEL_ARGS=()
if [ -n "${MODEL:-}" ]; then MODEL_ARGS=(--model "$MODEL"); fi
STREAM=("$BIN" stream "${MODEL_ARGS[@]}" --threads "$THREADS" "${EXTRA[@]}")

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "## Streaming (\`mambasep stream\`)"
echo
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), shared; load average at start: $(load). Threads: $THREADS. Options: ${STREAM_ARGS:-defaults}."
echo

# ---------------------------------------------------------------------------------------------
echo "== 1. latency" >&2
echo "### Algorithmic latency"
echo
echo "| input rate | reported by \`--verbose\` |"
echo "|---|---|"
for rate in 8000 16000 44100 48000; do
    line=$(sox -n -r "$rate" -c 1 -b 16 -t wav - trim 0 0.1 2> /dev/null | "${STREAM[@]}" --verbose 2>&1 > /dev/null | grep "algorithmic latency" | sed 's/^stream: //')
    echo "| $rate Hz | $line |"
done
echo

# ---------------------------------------------------------------------------------------------
# Input: the dev-set mixtures concatenated (real speech), repeated to length.
make_input() {  # make_input SECONDS OUT.wav
    local secs="$1" out="$2"
    if [ -d "$DEVSET" ]; then
        [ -f "$WORK/concat.wav" ] || sox $(ls "$DEVSET"/*/mix.wav | sort) -r 8000 -c 1 -b 16 "$WORK/concat.wav"
        local reps
        reps=$(python3 -c "import math,sys; print(max(0, math.ceil($secs / float(sys.argv[1])) - 1))" "$(soxi -D "$WORK/concat.wav")")
        sox "$WORK/concat.wav" "$WORK/rep.wav" repeat "$reps"
        sox "$WORK/rep.wav" -b 16 "$out" trim 0 "$secs"
        rm -f "$WORK/rep.wav"
    else
        sox -n -r 8000 -c 1 -b 16 "$out" synth "$secs" sine 180-260 sine 300-220 tremolo 3 60 gain -6
    fi
}

if [ "${SKIP_LONG:-0}" != 1 ]; then
    echo "== 2. 10-minute and 1-minute inputs" >&2
    make_input 600 "$WORK/in600.wav"
    make_input 60 "$WORK/in60.wav"
    echo "### Throughput and memory"
    echo
    echo "Input piped in as fast as it is consumed (\`mambasep stream < in.wav > out.wav\`), 8 kHz real speech."
    echo "RTF = wall-clock time / audio duration; compute RTF counts only the time spent separating."
    echo
    echo "| input | wall (s) | RTF | compute RTF | user CPU (s) | peak RSS (MB) | load before → after |"
    echo "|---|---|---|---|---|---|---|"
    for secs in 60 600; do
        before=$(load)
        /usr/bin/time -v -o "$WORK/time$secs.txt" "${STREAM[@]}" --verbose < "$WORK/in$secs.wav" > "$WORK/out$secs.wav" 2> "$WORK/err$secs.txt"
        wall=$(python3 -c "
import re,sys
t=open(sys.argv[1]).read()
m=re.search(r'Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)', t)
h,mi,s=m.groups(); print('%.1f' % ((int(h or 0))*3600+int(mi)*60+float(s)))" "$WORK/time$secs.txt")
        user=$(grep "User time" "$WORK/time$secs.txt" | awk '{print $NF}')
        rss=$(grep "Maximum resident" "$WORK/time$secs.txt" | awk '{printf "%.0f", $NF/1024}')
        crtf=$(grep -o "RTF [0-9.]*" "$WORK/err$secs.txt" | awk '{print $2}')
        rtf=$(python3 -c "print('%.3f' % ($wall / $secs))")
        echo "| $secs s | $wall | $rtf | $crtf | $user | $rss | $before → $(load) |"
    done
    python3 - "$WORK/out600.wav" <<'PY'
import sys, soundfile as sf, numpy as np
x, sr = sf.read(sys.argv[1], dtype="float32")
print()
print(f"10-minute output: {x.shape[0]} frames × {x.shape[1]} channels at {sr} Hz (input 4800000 frames); finite: {bool(np.isfinite(x).all())}.")
PY
    echo
fi

# ---------------------------------------------------------------------------------------------
if [ "${SKIP_REALTIME:-0}" != 1 ]; then
    echo "== 3. real-time pacing" >&2
    [ -f "$WORK/in60.wav" ] || make_input 60 "$WORK/in60.wav"
    echo "### End-to-end latency at real-time input"
    echo
    echo "60 s of 8 kHz speech written to stdin in 20 ms pieces at real-time pace; for every output"
    echo "sample, the time from the write of its input sample to the read of its output sample"
    echo "(algorithmic latency + waiting for the window's computation + pipe transfer)."
    echo
    python3 - "$WORK/in60.wav" "${STREAM[@]}" <<'PY'
import subprocess, sys, threading, time
import numpy as np, soundfile as sf
path, cmd = sys.argv[1], sys.argv[2:]
x, sr = sf.read(path, dtype="int16")
raw = x.tobytes()
piece = sr // 50 * 2                       # 20 ms of s16 mono
p = subprocess.Popen(cmd + ["--rate", str(sr)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
t_in = np.zeros(len(x) + 1)
out_times = []                              # (frames available after this read, time)
def reader():
    got = 0
    while True:
        b = p.stdout.read1(65536)
        if not b: break
        got += len(b)
        out_times.append((got // 4, time.monotonic()))   # 2 speakers × s16
th = threading.Thread(target=reader); th.start()
t0 = time.monotonic()
for k, off in enumerate(range(0, len(raw), piece)):
    target = t0 + k * 0.02
    now = time.monotonic()
    if target > now: time.sleep(target - now)
    chunk = raw[off:off + piece]
    p.stdin.write(chunk); p.stdin.flush()
    t_in[off // 2: off // 2 + len(chunk) // 2] = time.monotonic()
p.stdin.close(); th.join(); p.wait()
lat = []
prev = 0
for n, t in out_times:
    if n > prev:
        # Output samples prev..n-1 became readable at t; the oldest waited longest.
        lat.append(t - t_in[prev]); prev = n
lat = np.array(lat)
steady = lat[: max(1, int(len(lat) * 0.95))]   # the final flush happens at end of input
print("| median | 90th percentile | max (before end of input) |")
print("|---|---|---|")
print(f"| {np.median(steady):.3f} s | {np.percentile(steady, 90):.3f} s | {steady.max():.3f} s |")
PY
    echo
fi

# ---------------------------------------------------------------------------------------------
echo "== 4. silence" >&2
sox -D -n -r 16000 -c 1 -b 16 "$WORK/silence.wav" trim 0 180   # -D: no dither, digital zeros
"${STREAM[@]}" < "$WORK/silence.wav" > "$WORK/silence-out.wav"
python3 - "$WORK/silence-out.wav" <<'PY'
import sys, soundfile as sf, numpy as np
x, sr = sf.read(sys.argv[1], dtype="float32")
print(f"Three minutes of digital silence at 16 kHz: {x.shape[0]} output frames (input 2880000), "
      f"max |sample| {np.abs(x).max():.1e}, NaN/Inf: {int((~np.isfinite(x)).sum())}.")
print()
PY

# ---------------------------------------------------------------------------------------------
if [ "${SKIP_DEVSET:-0}" != 1 ] && [ -d "$DEVSET" ]; then
    echo "== 5. dev set" >&2
    D="$WORK/dev"
    rm -rf "$D" "$WORK/est-offline" "$WORK/est-stream"
    mkdir -p "$D/mix_clean" "$D/s1" "$D/s2" "$WORK/est-stream"
    for d in "$DEVSET"/d*/; do
        n=$(basename "$d")
        ln -s "$d/mix.wav" "$D/mix_clean/$n.wav"; ln -s "$d/s1.wav" "$D/s1/$n.wav"; ln -s "$d/s2.wav" "$D/s2/$n.wav"
    done
    "$BIN" separate "${MODEL_ARGS[@]}" --threads "$THREADS" "$D"/mix_clean/*.wav -o "$WORK/est-offline" > /dev/null
    for f in "$D"/mix_clean/*.wav; do
        "${STREAM[@]}" --output-dir "$WORK/est-stream" --stem "$(basename "$f" .wav)" < "$f" > /dev/null
    done
    "$BIN" eval "$D" --est-dir "$WORK/est-offline" --json > "$WORK/eval-offline.json"
    "$BIN" eval "$D" --est-dir "$WORK/est-stream" --json > "$WORK/eval-stream.json"
    echo "### Development set (60 real-speech mixtures, 8 kHz, 2.7–6 s each)"
    echo
    python3 - "$WORK" <<'PY'
import json, sys, glob, os
import numpy as np, soundfile as sf
w = sys.argv[1]
off = json.load(open(f"{w}/eval-offline.json")); st = json.load(open(f"{w}/eval-stream.json"))
print("| separation | SI-SNRi mean (dB) | median | worst |")
print("|---|---|---|---|")
for name, r in [("offline `separate` (one window per file)", off), ("`stream`", st)]:
    s = r["summary"]
    print(f"| {name} | {s['si_snri_mean']:.2f} | {s['si_snri_median']:.2f} | {s['si_snri_min']:.2f} |")
# SI-SNR of the streaming output against the offline output (best speaker assignment).
def sisnr(e, t):
    e = e - e.mean(); t = t - t.mean()
    st_ = (e @ t) / (t @ t + 1e-8) * t
    return 10 * np.log10((st_ @ st_) / (((e - st_) @ (e - st_)) + 1e-8) + 1e-8)
vals = []
for f in sorted(glob.glob(f"{w}/est-offline/*_s1.wav")):
    stem = os.path.basename(f)[:-7]
    o = [sf.read(f"{w}/est-offline/{stem}_s{k}.wav", dtype="float64")[0] for k in (1, 2)]
    s = [sf.read(f"{w}/est-stream/{stem}_s{k}.wav", dtype="float64")[0] for k in (1, 2)]
    a = (sisnr(s[0], o[0]) + sisnr(s[1], o[1])) / 2; b = (sisnr(s[1], o[0]) + sisnr(s[0], o[1])) / 2
    vals.append(max(a, b))
vals = np.array(vals)
print()
print(f"SI-SNR of the streaming output against the offline output: mean {vals.mean():.2f} dB, "
      f"median {np.median(vals):.2f} dB, worst {vals.min():.2f} dB.")
print()
PY
fi
# ---------------------------------------------------------------------------------------------
CORPUS="$ROOT/../shared/corpus"
if [ "${SKIP_ORDER:-0}" != 1 ] && [ -f "$CORPUS/manifest.tsv" ]; then
    echo "== 6. speaker order over 120 s" >&2
    L="$WORK/long"
    rm -rf "$L"; mkdir -p "$L"
    python3 - "$CORPUS" "$L" 120 <<'PY'
# Two talkers throughout: shuffled utterances with 0.1-0.6 s pauses, equal RMS, 8 kHz.
import sys, csv, numpy as np, soundfile as sf
from scipy.signal import resample_poly
corpus, out, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
rows = list(csv.DictReader(open(f"{corpus}/manifest.tsv"), delimiter="\t"))
def track(speaker, seed):
    rng = np.random.default_rng(seed)
    ids = sorted(r["id"] for r in rows if r["speaker"] == speaker)
    rng.shuffle(ids)
    parts, n = [], 0
    for i in ids:
        x, sr = sf.read(f"{corpus}/audio/{i}.opus", dtype="float32")
        if x.ndim > 1: x = x.mean(1)
        if sr != 8000: x = resample_poly(x, 8000, sr).astype(np.float32)
        gap = np.zeros(int(rng.uniform(0.1, 0.6) * 8000), np.float32)
        parts += [x, gap]; n += len(x) + len(gap)
        if n >= secs * 8000: break
    y = np.concatenate(parts)[: int(secs * 8000)]
    return y / np.sqrt(np.mean(y ** 2) + 1e-12) * 0.08
a, b = track("asterisk:allison", 1), track("piper:joe", 2)
g = min(1.0, 0.9 / np.abs(a + b).max())
for name, x in [("mix", a + b), ("s1", a), ("s2", b)]:
    sf.write(f"{out}/{name}.wav", x * g, 8000, subtype="PCM_16")
PY
    "$BIN" separate "${MODEL_ARGS[@]}" --threads "$THREADS" "$L/mix.wav" -o "$L/offline" > /dev/null
    "${STREAM[@]}" < "$L/mix.wav" > "$L/stream.wav"
    echo "### Speaker order over a long input"
    echo
    echo "120 s, two corpus talkers speaking throughout (Asterisk \"allison\" + Piper \"joe\", pauses"
    echo "0.1–0.6 s, equal level; both talkers were in the training data). SI-SNRi with the best speaker"
    echo "assignment per 4 s segment, and over the whole file with one assignment; a speaker swap"
    echo "between blocks would lower the whole-file score and show up as segments in the other order."
    echo
    echo "| separation | per 4 s segment | whole file | segments in the other order |"
    echo "|---|---|---|---|"
    for what in offline stream; do
        if [ "$what" = offline ]; then e1="$L/offline/mix_s1.wav"; e2="$L/offline/mix_s2.wav"; label="offline \`separate\` (16 s windows)"
        else e1="$L/stream.wav"; e2="$L/stream.wav"; label="\`stream\`"; fi
        python3 - "$L" "$e1" "$e2" "$label" <<'PY'
import sys, numpy as np, soundfile as sf
d, e1, e2, label = sys.argv[1:5]
rd = lambda p: sf.read(p, dtype="float64")[0]
mix, s = rd(f"{d}/mix.wav"), [rd(f"{d}/s1.wav"), rd(f"{d}/s2.wav")]
e = [rd(e1), rd(e2)]
if e[0].ndim > 1: e = [e[0][:, 0], e[0][:, 1]]
def si(x, t):
    x = x - x.mean(); t = t - t.mean()
    p = (x @ t) / (t @ t + 1e-8) * t
    return 10 * np.log10((p @ p) / ((x - p) @ (x - p) + 1e-8) + 1e-8)
def gain(a, b, i, j):
    return (si(e[a][i:j], s[0][i:j]) + si(e[b][i:j], s[1][i:j]) - si(mix[i:j], s[0][i:j]) - si(mix[i:j], s[1][i:j])) / 2
n, L = len(mix), 4 * 8000
keep, swap = gain(0, 1, 0, n), gain(1, 0, 0, n)
order = 0 if keep >= swap else 1
per, flips = [], 0
for i in range(0, n - L + 1, L):
    a, b = gain(0, 1, i, i + L), gain(1, 0, i, i + L)
    per.append(max(a, b)); flips += (0 if a >= b else 1) != order
print(f"| {label} | {np.mean(per):.2f} dB | {max(keep, swap):.2f} dB | {flips} of {len(per)} |")
PY
    done
    echo
fi
echo "Load average at the end: $(load)."
