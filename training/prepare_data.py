#!/usr/bin/env python3
"""Pack a speech corpus into compact 8 kHz shards (and the devset) for the GPU machine.

Input: a corpus folder with `manifest.tsv` (id, engine, speaker, voice, seconds, text) and
`audio/<id>.<ext>` (any format libsndfile reads, e.g. 16 kHz Ogg Opus). Output (default
`.carry/`, git-ignored):

    data/manifest.tsv.gz  id engine speaker voice seconds split chunk offset length (gzip)
    data/chunkNNN.opus  utterances resampled to 8 kHz, leading/trailing silence trimmed,
                        concatenated with short zero gaps, Ogg Opus (narrow-band) at --bitrate
    data/info.json      sample rate, bitrate, held-out speakers, sizes, and per engine the
                        training hours, utterances and speaker labels (`train_engines`)
    devset/dNNN_{mix,s1,s2}.flac + list.tsv + README.md   (lossless copy of the devset)

Opus in one long stream per chunk avoids the per-file header overhead; many chunks let the GPU
machine decode them in parallel (`data.decode_shards`). `offset`/`length` are in samples of the
decoded 8 kHz chunk. Held-out speakers (split=`heldout`) are never used for training; they feed
the synthetic validation set.

Edge cases: utterances shorter than 0.25 s after trimming are dropped (listed in info.json);
a corpus without some engine simply holds out nothing from it.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from sources import REAL_SOURCES

SR = 8000
GAP = 400            # zero samples between utterances inside a chunk (50 ms)
MIN_SAMPLES = 2000   # drop utterances shorter than 0.25 s after trimming


# MARK: - Decoding and trimming


def decode_file(path) -> np.ndarray:
    """Decode one file (a path, or a binary file object) to mono int16 at 8 kHz (polyphase resampling)."""
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return to_8k_int16(x.mean(axis=1), sr)


def to_8k_int16(x: np.ndarray, sr: int) -> np.ndarray:
    """Mono float samples (±1) at rate sr as int16 at 8 kHz (polyphase resampling)."""
    from scipy.signal import resample_poly

    x = np.asarray(x, dtype=np.float32)
    if sr != SR:
        g = np.gcd(sr, SR)
        x = resample_poly(x, SR // g, sr // g).astype(np.float32)
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def trim_silence(x: np.ndarray, floor_db: float = -50.0, margin: int = 800) -> np.ndarray:
    """Cut leading/trailing 20 ms frames quieter than `floor_db` dBFS, keeping `margin` samples.

    An all-silent input is returned unchanged.
    """
    f = 160
    n = len(x) // f
    if n == 0:
        return x
    fr = x[: n * f].astype(np.float32).reshape(n, f) / 32768.0
    e = 10 * np.log10((fr ** 2).mean(axis=1) + 1e-12)
    act = np.nonzero(e > floor_db)[0]
    if len(act) == 0:
        return x
    a = max(0, act[0] * f - margin)
    b = min(len(x), (act[-1] + 1) * f + margin)
    return x[a:b]


def decode_corpus(corpus: Path, rows: list[dict], cache: Path, jobs: int) -> list[np.ndarray]:
    """All utterances at 8 kHz int16, cached in `cache` (all.npy + lens.npy in manifest order)."""
    allp, lensp = cache / "all.npy", cache / "lens.npy"
    if allp.exists() and lensp.exists():
        lens = np.load(lensp)
        if len(lens) == len(rows):
            a = np.load(allp)
            o = np.concatenate([[0], np.cumsum(lens)])
            print(f"decode: using cache {cache}", file=sys.stderr)
            return [a[o[i]:o[i + 1]] for i in range(len(rows))]
    audio = corpus / "audio"
    paths = []
    for r in rows:
        cands = sorted(audio.glob(r["id"] + ".*"))
        if not cands:
            raise SystemExit(f"error: no audio file for manifest id {r['id']!r} in {audio}")
        paths.append(str(cands[0]))
    t = time.time()
    with ProcessPoolExecutor(jobs) as ex:
        out = list(ex.map(decode_file, paths, chunksize=64))
    print(f"decode: {len(out)} files in {time.time() - t:.1f} s", file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(lensp, np.array([len(o) for o in out]))
    np.save(allp, np.concatenate(out))
    return out


# MARK: - Held-out speakers


def choose_heldout(rows: list[dict], frac: float, seed: int) -> set[str]:
    """Speakers held out for synthetic validation: ~`frac` of each multi-speaker engine.

    Engines with fewer than 3 speakers (e.g. a single Piper voice) keep all their speakers for
    training; engines with 3–10 speakers give one speaker that appears in no other engine.
    """
    rng = np.random.default_rng(seed)
    by_engine: dict[str, list[str]] = {}
    engines_of: dict[str, set[str]] = {}
    for r in rows:
        by_engine.setdefault(r["engine"], [])
        if r["speaker"] not in by_engine[r["engine"]]:
            by_engine[r["engine"]].append(r["speaker"])
        engines_of.setdefault(r["speaker"], set()).add(r["engine"])
    held: set[str] = set()
    for eng, spk in sorted(by_engine.items()):
        if len(spk) < 3 or eng in REAL_SOURCES:  # real speech is scarce: keep it all for training
            continue
        if len(spk) <= 10:
            only = [s for s in spk if engines_of[s] == {eng}]
            if only:
                held.add(only[int(rng.integers(len(only)))])
            continue
        k = max(1, round(frac * len(spk)))
        for i in rng.choice(len(spk), size=k, replace=False):
            held.add(spk[int(i)])
    return held


# MARK: - Encoding


def _encode_chunk(args: tuple[np.ndarray, str, float]) -> int:
    pcm, path, kbps = args
    subprocess.run(["opusenc", "--quiet", "--raw", "--raw-rate", str(SR), "--raw-chan", "1",
                    "--raw-bits", "16", "--bitrate", str(kbps), "--comp", "10",
                    "--framesize", "20", "-", path],
                   input=pcm.astype("<i2").tobytes(), check=True)
    return os.path.getsize(path)


def pack_devset(src: Path, dst: Path) -> int:
    """Copy the devset as FLAC (lossless, ~35% smaller than WAV) plus list.tsv/README."""
    import soundfile as sf

    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    total = 0
    for d in sorted(p for p in src.iterdir() if p.is_dir()):
        for name in ("mix", "s1", "s2"):
            w = d / f"{name}.wav"
            if not w.exists():
                raise SystemExit(f"error: devset item {d.name} lacks {name}.wav")
            x, sr = sf.read(w, dtype="int16")
            out = dst / f"{d.name}_{name}.flac"
            sf.write(out, x, sr, subtype="PCM_16")
            total += out.stat().st_size
    for f in ("list.tsv", "README.md"):
        if (src / f).exists():
            shutil.copy(src / f, dst / f)
            total += (dst / f).stat().st_size
    return total


def read_manifest(corpus: Path) -> list[dict]:
    """A corpus folder's manifest rows; SystemExit naming the problem when it is unusable."""
    man = corpus / "manifest.tsv"
    if not man.exists():
        raise SystemExit(f"error: {man} not found (a corpus folder needs manifest.tsv)")
    with open(man, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    need = {"id", "engine", "speaker", "voice", "seconds"}
    if not rows or not need <= set(rows[0]):
        raise SystemExit(f"error: {man} must have columns {sorted(need)}")
    return rows


def parse_caps(items: list[str]) -> dict[str, float]:
    """--max-hours ENGINE=H items → {engine: hours}."""
    caps = {}
    for it in items:
        eng, sep, h = it.partition("=")
        try:
            caps[eng] = float(h)
        except ValueError:
            sep = ""
        if not sep or not eng or caps.get(eng, -1) < 0:
            raise SystemExit(f"error: --max-hours {it!r}: expected ENGINE=HOURS (HOURS ≥ 0)")
    return caps


def apply_caps(rows: list[dict], audio: list[np.ndarray], caps: dict[str, float],
               seed: int) -> tuple[list[dict], list[np.ndarray]]:
    """Keep, per capped engine, a seeded random subset of its utterances of ≤ its hours."""
    if not caps:
        return rows, audio
    rng = np.random.default_rng([seed, 77])
    keep = np.ones(len(rows), bool)
    for eng, hours in caps.items():
        idx = [i for i, r in enumerate(rows) if r["engine"] == eng]
        used = 0
        for i in rng.permutation(idx) if idx else []:
            used += len(audio[i])
            keep[i] = used <= hours * 3600 * SR
    return [r for r, k in zip(rows, keep) if k], [a for a, k in zip(audio, keep) if k]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", action="append", default=[],
                    help="corpus folder (repeatable; default /work/shared/corpus); ids must be unique")
    ap.add_argument("--max-hours", action="append", default=[], metavar="ENGINE=H",
                    help="keep at most H hours of ENGINE's utterances (a seeded random subset), "
                         "e.g. to make room for another corpus within the upload limit")
    ap.add_argument("--devset", default="/work/shared/devset")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / ".carry"))
    ap.add_argument("--cache", default="/tmp/mambasep_prep", help="decoded-audio cache folder")
    ap.add_argument("--bitrate", type=float, default=8.0, help="Opus kbit/s")
    ap.add_argument("--chunks", type=int, default=64)
    ap.add_argument("--heldout-frac", type=float, default=0.03)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N manifest rows (tests)")
    ap.add_argument("--no-trim", action="store_true")
    args = ap.parse_args()

    corpora, out = [Path(c) for c in (args.corpus or ["/work/shared/corpus"])], Path(args.out)
    caps = parse_caps(args.max_hours)
    if shutil.which("opusenc") is None:
        raise SystemExit("error: opusenc not found (apt install opus-tools)")
    rows, audio, ids = [], [], set()
    for k, corpus in enumerate(corpora):
        r = read_manifest(corpus)
        if args.limit:
            r = r[: args.limit]
        dup = ids & {x["id"] for x in r}
        if dup:
            raise SystemExit(f"error: {corpus}: ids also in an earlier corpus, e.g. {sorted(dup)[0]!r}")
        ids |= {x["id"] for x in r}
        # The first corpus keeps the cache folder it always had (a cache is reused by row count).
        cache = Path(args.cache) if k == 0 else Path(args.cache) / f"corpus{k}-{corpus.name}"
        if args.limit:
            cache = cache / f"limit{args.limit}"
        audio += decode_corpus(corpus, r, cache, args.jobs)
        rows += r
    rows, audio = apply_caps(rows, audio, caps, args.seed)
    held = choose_heldout(rows, args.heldout_frac, args.seed)

    keep, dropped = [], []
    for r, x in zip(rows, audio):
        y = x if args.no_trim else trim_silence(x)
        (keep if len(y) >= MIN_SAMPLES else dropped).append((r, y))
    dropped_ids = [r["id"] for r, _ in dropped]

    # Shuffle so every chunk holds a mix of engines; assign to chunks of ~equal duration.
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(keep))
    total = sum(len(y) + GAP for _, y in keep)
    per = total / args.chunks
    data = out / "data"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    chunks: list[list[np.ndarray]] = [[] for _ in range(args.chunks)]
    pos = [0] * args.chunks
    out_rows = []
    acc = 0
    for i in order:
        r, y = keep[i]
        c = min(args.chunks - 1, int(acc / per))
        acc += len(y) + GAP
        out_rows.append({"id": r["id"], "engine": r["engine"], "speaker": r["speaker"],
                         "voice": r["voice"], "seconds": f"{len(y) / SR:.3f}",
                         "split": "heldout" if r["speaker"] in held else "train",
                         "chunk": c, "offset": pos[c], "length": len(y)})
        chunks[c].append(y)
        chunks[c].append(np.zeros(GAP, np.int16))
        pos[c] += len(y) + GAP
    jobs = [(np.concatenate(ch) if ch else np.zeros(GAP, np.int16), str(data / f"chunk{c:03d}.opus"),
             args.bitrate) for c, ch in enumerate(chunks)]
    t = time.time()
    with ProcessPoolExecutor(args.jobs) as ex:
        sizes = list(ex.map(_encode_chunk, jobs))
    print(f"encode: {len(jobs)} chunks, {sum(sizes) / 1e6:.1f} MB in {time.time() - t:.1f} s",
          file=sys.stderr)
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=list(out_rows[0]), delimiter="\t", lineterminator="\n")
    w.writeheader()
    w.writerows(out_rows)
    with open(data / "manifest.tsv.gz", "wb") as f:      # a quarter of the plain size (upload limit)
        f.write(gzip.compress(text.getvalue().encode(), mtime=0))
    n_held = sum(r["split"] == "heldout" for r in out_rows)
    engines: dict[str, dict] = {}
    for r in out_rows:
        if r["split"] == "train":
            e = engines.setdefault(r["engine"], {"hours": 0.0, "utterances": 0, "speakers": set()})
            e["hours"] += r["length"] / SR / 3600
            e["utterances"] += 1
            e["speakers"].add(r["speaker"])
    engines = {k: {"hours": round(v["hours"], 3), "utterances": v["utterances"], "speakers": len(v["speakers"]),
                   "real": k in REAL_SOURCES} for k, v in sorted(engines.items())}
    info = {"sample_rate": SR, "bitrate_kbps": args.bitrate, "chunks": args.chunks,
            "chunk_samples": pos, "utterances": len(out_rows), "heldout_utterances": n_held,
            "heldout_speakers": sorted(held), "dropped_short": dropped_ids,
            "hours": total / SR / 3600, "opus_bytes": sum(sizes), "trimmed": not args.no_trim,
            "corpus": [str(c) for c in corpora], "max_hours": caps, "seed": args.seed,
            "train_engines": engines}
    (data / "info.json").write_text(json.dumps(info, indent=1))
    print(f"data: {len(out_rows)} utterances ({n_held} held out, {len(held)} speakers), "
          f"{info['hours']:.2f} h, {sum(sizes) / 1e6:.1f} MB", file=sys.stderr)
    real = {k: v for k, v in engines.items() if v["real"]}
    print(f"training split: " + ", ".join(f"{k} {v['hours']:.2f} h ({v['speakers']})" for k, v in engines.items())
          + f"; human {sum(v['hours'] for v in real.values()):.2f} h of "
          f"{sum(v['speakers'] for v in real.values())} speaker labels", file=sys.stderr)
    if args.devset and Path(args.devset).exists():
        n = pack_devset(Path(args.devset), out / "devset")
        print(f"devset: {n / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
