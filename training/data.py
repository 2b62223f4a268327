"""Dynamic mixing of two-speaker training examples from a packed 8 kHz corpus.

Glossary: U utterances, B batch, C sources (2), T samples per example, P resampler taps.

The corpus (from `prepare_data.py`) is decoded once into one int16 array held in memory (on the
GPU when training there) plus per-utterance offsets and lengths. Each batch is drawn as a pure
function of (seed, rank, step), so a resumed run draws exactly the batches it would have drawn;
the waveforms are assembled on the device with a windowed-sinc resampler (speed perturbation).

Mixing recipe per example (WSJ0-2mix style, dynamic):
  1. two utterances whose speakers may be mixed (`SpeakerRule`);
  2. a speed factor in [0.95, 1.05] for each (resampling, so pitch moves too);
  3. a random window of T samples (4 s): long utterances are cropped at a random start, short
     ones are placed at a random position and zero-padded;
  4. each source scaled to unit RMS over its active (non-padded) samples, then the two set
     0–5 dB apart (±half the difference each);
  5. a random overall level (mixture RMS −33…−13 dBFS), then everything scaled down jointly if
     any peak of mixture or sources exceeds 0.9. mix = s1 + s2 exactly.

Optional augmentation (`Augment`, off by default), applied to each source before step 4, so the
reference is the coloured / reverberant source (the model separates, it does not restore):
  - colour: a random smooth zero-phase EQ (tilt ±6 dB over the band, ±3 dB bumps on a 9-point
    grid, a high-pass corner at 50–300 Hz), like different microphones and channels;
  - room: convolution with a synthetic room response: the direct path, then exponentially
    decaying Gaussian noise from 0.25–3 ms on, RT60 0.1–0.6 s, direct-to-reverberant ratio
    0–12 dB.

Optional pseudo-speakers (`PseudoSpeakers`, off by default): K made-up voices per human speaker
(`sources.REAL_SOURCES`; never Kokoro, espeak, festival, flite or Piper), each with its own
pitch factor and its own formant (vocal-tract length) factor, fixed for the run; a human
utterance is voiced by its recorded person or one of the K with equal probability. Done at
render time on the device, so it costs no upload:
  - pitch: the resampler reads the utterance `pitch` times faster (on top of the speed factor),
    which moves pitch and formants by that factor and the speaking rate with them;
  - formants: each 32 ms STFT frame (hop 8 ms) is multiplied by the ratio of its own spectral
    envelope (all-pole, order 10) read at f·pitch/formant to the envelope at f, so the envelope
    ends up scaled by `formant` while the harmonics stay where the resampler put them. Below 200 Hz and above 3.5 kHz the envelope is held at its edge value, so a
    recording's band limits (telephone high-pass, the 8 kHz anti-alias roll-off) stay put.
No time-scale modification (phase vocoder) is involved: the only spectral change is a smooth
gain per frame, which avoids phasiness; the cost is that a voice shifted up by p semitones also
speaks 2^(p/12) times faster (±19 % at ±3 semitones), within the spread of speaking rates
between people. Each pseudo-speaker is its own speaker label (`speaker#k`, k = 1…K; `person_of`
strips it) and `SpeakerRule` never mixes two labels of one person.

All random choices are drawn on the CPU from the batch's generator (the pseudo-speakers' voices
from the sampler's seed and the person's name), so batches stay a pure function of (seed, step,
rank).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sources import REAL_SOURCES, engine_of

SR = 8000

__all__ = ["SpeakerRule", "Corpus", "MixSampler", "Augment", "PseudoSpeakers", "room_response",
           "colour_curve_db", "warp_formants", "decode_shards", "load_corpus", "kokoro_families",
           "person_of", "pseudo_label"]


# MARK: - Speaker rule


def kokoro_families(speaker: str) -> frozenset[str] | None:
    """The voice families of a Kokoro speaker id (`kokoro:af_bella+bm_v0george`), else None.

    A `v0` pack is the same family as its namesake (`af_v0bella` → `af_bella`).
    """
    if not speaker.startswith("kokoro:"):
        return None
    fams = set()
    for v in speaker[len("kokoro:"):].split("+"):
        v = v.strip()
        if len(v) > 3 and v[2] == "_" and v[3:5] == "v0":
            v = v[:3] + v[5:]
        fams.add(v)
    return frozenset(fams)


def pseudo_label(speaker: str, k: int) -> str:
    """The speaker label of pseudo-speaker k of a recorded person (k = 0: the person)."""
    return f"{speaker}#{k}" if k else speaker


def person_of(label: str) -> str:
    """The recorded person behind a speaker label: `kde:fr#2` → `kde:fr` (others unchanged)."""
    base, sep, k = str(label).rpartition("#")
    return base if sep and k.isdigit() else str(label)


class SpeakerRule:
    """Which utterance pairs may be mixed (corpus README, "Speaker rule").

    Two utterances may be mixed iff their `speaker` differs and, when both are Kokoro blends,
    their sets of voice families are disjoint. Labels are compared by person (`person_of`): a
    person is never mixed with a pseudo-speaker made from them, nor two of those with each other.
    """

    def __init__(self, speakers: list[str]):
        speakers = [person_of(s) for s in speakers]
        names = sorted(set(speakers))
        index = {s: i for i, s in enumerate(names)}
        self.spk = np.array([index[s] for s in speakers], dtype=np.int64)       # [U]
        fam_sets = [kokoro_families(s) for s in speakers]
        fams = sorted(set().union(*[f for f in fam_sets if f]))
        fidx = {f: i for i, f in enumerate(fams)}
        self.fam = np.zeros((len(speakers), max(1, len(fams))), dtype=bool)    # [U, F]
        for u, fs in enumerate(fam_sets):
            for f in fs or ():
                self.fam[u, fidx[f]] = True
        self.is_kokoro = np.array([f is not None for f in fam_sets])            # [U]

    def compatible(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Elementwise: may utterance i[k] be mixed with j[k]? (bool array)."""
        i, j = np.asarray(i), np.asarray(j)
        same = self.spk[i] == self.spk[j]
        both_k = self.is_kokoro[i] & self.is_kokoro[j]
        overlap = (self.fam[i] & self.fam[j]).any(axis=-1)
        return ~same & ~(both_k & overlap)


# MARK: - Loading the packed corpus


def _decode_chunk(path: str) -> np.ndarray:
    import soundfile as sf

    x, sr = sf.read(path, dtype="int16", always_2d=True)
    if sr != SR:
        raise ValueError(f"{path}: sample rate {sr}, expected {SR}")
    return x[:, 0].copy()


def read_packed_manifest(data_dir: str | Path) -> list[dict]:
    """The rows of a packed corpus's manifest: `manifest.tsv.gz` (prepare_data.py writes it) or
    an older packing's plain `manifest.tsv`."""
    data_dir = Path(data_dir)
    gz = data_dir / "manifest.tsv.gz"
    with (gzip.open(gz, "rt", newline="") if gz.exists() else open(data_dir / "manifest.tsv", newline="")) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def decode_shards(data_dir: str | Path, cache_dir: str | Path | None = None,
                  jobs: int | None = None) -> Path:
    """Decode `data_dir`'s Opus chunks into `cache_dir/corpus8k.npy` + `index.tsv`; return cache dir.

    The cache is reused when its `stamp.json` matches the data's info.json. Utterances are laid
    out back to back (no gaps) in manifest order; index.tsv = manifest + `start` column.
    """
    data_dir = Path(data_dir)
    cache = Path(cache_dir) if cache_dir else data_dir / "decoded"
    info_text = (data_dir / "info.json").read_text()
    stamp = cache / "stamp.json"
    if stamp.exists() and stamp.read_text() == info_text and (cache / "corpus8k.npy").exists():
        return cache
    rows = read_packed_manifest(data_dir)
    n_chunks = json.loads(info_text)["chunks"]
    paths = [str(data_dir / f"chunk{c:03d}.opus") for c in range(n_chunks)]
    t = time.time()
    jobs = jobs or min(len(paths), os.cpu_count() or 1)
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as ex:
            chunks = list(ex.map(_decode_chunk, paths))
    else:
        chunks = [_decode_chunk(p) for p in paths]
    total = sum(int(r["length"]) for r in rows)
    audio = np.empty(total, dtype=np.int16)
    pos = 0
    for r in rows:
        c, o, n = int(r["chunk"]), int(r["offset"]), int(r["length"])
        seg = chunks[c][o:o + n]
        if len(seg) != n:
            raise ValueError(f"chunk {c} too short for utterance {r['id']} (decoder mismatch?)")
        audio[pos:pos + n] = seg
        r["start"] = pos
        pos += n
    save_cache(cache, audio, rows)
    stamp.write_text(info_text)
    print(f"data: decoded {len(paths)} chunks, {total / SR / 3600:.2f} h in {time.time() - t:.1f} s",
          file=sys.stderr)
    return cache


def save_cache(cache: str | Path, audio: np.ndarray, rows: list[dict]) -> None:
    """Write a decoded cache for `load_corpus`: `audio` (all utterances back to back, 8 kHz) as
    corpus8k.npy and `rows` (one per utterance: id, speaker, split, start, length, ...) as
    index.tsv."""
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(cache / "corpus8k.npy", audio)
    with open(cache / "index.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        w.writeheader()
        w.writerows(rows)


def decoded_cache(data: str | Path, cache: str | Path | None = None) -> Path:
    """The decoded cache of `data` for `load_corpus`: `data` itself when it already is one
    (corpus8k.npy), else `decode_shards(data, cache)` (decodes once, then reused while its stamp
    matches). ValueError when `data` is neither a packed corpus (info.json) nor a decoded cache."""
    data = Path(data)
    if (data / "corpus8k.npy").exists():
        return data
    if not (data / "info.json").exists():
        raise ValueError(f"{data}: neither a packed corpus (info.json) nor a decoded cache (corpus8k.npy)")
    return decode_shards(data, cache)


@dataclass
class Corpus:
    """Decoded corpus: one int16 waveform plus per-utterance start/length/speaker/split."""

    audio: Tensor          # [sum of lengths] int16
    start: np.ndarray      # [U] int64
    length: np.ndarray     # [U] int64
    speakers: list[str]
    split: np.ndarray      # [U] str ("train" / "heldout")
    ids: list[str]

    def to(self, device: torch.device | str) -> "Corpus":
        self.audio = self.audio.to(device)
        return self


def engine_mask(corpus: Corpus, engines: set[str]) -> np.ndarray:
    """[U] bool: whether each utterance's speaker comes from one of `engines`."""
    return np.array([engine_of(s) in engines for s in corpus.speakers], dtype=bool)


def load_corpus(cache_dir: str | Path) -> Corpus:
    """Load a decoded cache (see `decode_shards`)."""
    cache = Path(cache_dir)
    audio = np.load(cache / "corpus8k.npy", mmap_mode="r")
    with open(cache / "index.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return Corpus(audio=torch.from_numpy(np.array(audio)),
                  start=np.array([int(r["start"]) for r in rows], dtype=np.int64),
                  length=np.array([int(r["length"]) for r in rows], dtype=np.int64),
                  speakers=[r["speaker"] for r in rows],
                  split=np.array([r["split"] for r in rows]),
                  ids=[r["id"] for r in rows])


# MARK: - Mixing


def filter_sources(src: Tensor, colour_db: np.ndarray | None, room: np.ndarray | None) -> Tensor:
    """src [B, C, T] through zero-phase EQ curves [B, C, G] (dB) and room responses [B, C, R].

    One FFT of length ≥ T + R − 1 (no circular wrap); the output is cropped to the first T
    samples, so a reverberant tail beyond the window is dropped. A 0 dB curve and a unit impulse
    leave src unchanged up to rounding.
    """
    T = src.shape[-1]
    R = room.shape[-1] if room is not None else 1
    n = 1 << (T + R - 1 - 1).bit_length()
    S = torch.fft.rfft(src.double(), n)                                        # [B, C, n/2+1]
    if colour_db is not None:
        grid = torch.tensor(colour_db, dtype=torch.float64, device=src.device)  # [B, C, G]
        pos = torch.linspace(0, grid.shape[-1] - 1, S.shape[-1], dtype=torch.float64, device=src.device)
        lo = pos.floor().long().clamp(max=grid.shape[-1] - 2)
        w = pos - lo
        curve = grid[..., lo] * (1 - w) + grid[..., lo + 1] * w                # [B, C, n/2+1]
        S = S * 10 ** (curve / 20)
    if room is not None:
        S = S * torch.fft.rfft(torch.tensor(room, dtype=torch.float64, device=src.device), n)
    return torch.fft.irfft(S, n)[..., :T].float()


@dataclass
class Augment:
    """Per-source augmentation probabilities and ranges (module doc); all zero: none."""

    colour: float = 0.0                       # probability that a source gets a random EQ
    room: float = 0.0                         # probability that a source gets a room response
    rt60: tuple[float, float] = (0.1, 0.6)    # seconds
    drr_db: tuple[float, float] = (0.0, 12.0)
    tail: float = 0.6                         # room response length (seconds)

    def __post_init__(self) -> None:
        for name in ("colour", "room"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"augment {name} probability must be in [0, 1], got {v}")

    @property
    def active(self) -> bool:
        return self.colour > 0 or self.room > 0


COLOUR_GRID = 9  # points of the random EQ curve over 0 … SR/2


def colour_curve_db(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random EQ curves in dB on COLOUR_GRID points over 0 … SR/2: [n, COLOUR_GRID]."""
    f = np.linspace(0, SR / 2, COLOUR_GRID)                                   # [G]
    tilt = rng.uniform(-6, 6, size=(n, 1)) * (f / (SR / 2) - 0.5)            # [n, G]
    bumps = rng.normal(0, 3, size=(n, COLOUR_GRID))
    corner = rng.uniform(50, 300, size=(n, 1))
    hp = np.where(f < corner, -12 * np.log2(corner / np.maximum(f, 1.0)), 0.0)
    return tilt + bumps + np.maximum(hp, -40.0)


def room_response(rng: np.random.Generator, n: int, length: int, rt60: tuple[float, float],
                  drr_db: tuple[float, float]) -> np.ndarray:
    """n synthetic room responses [n, length]: 1 at t = 0, then a decaying noise tail.

    The tail starts 2–24 samples (0.25–3 ms) late, decays by 60 dB in RT60 seconds and carries
    1/10^(DRR/10) of the direct path's energy.
    """
    t = np.arange(length)                                                     # [R]
    rt = rng.uniform(*rt60, size=(n, 1))
    drr = rng.uniform(*drr_db, size=(n, 1))
    onset = rng.integers(2, 25, size=(n, 1))
    noise = rng.standard_normal((n, length))
    env = np.where(t >= onset, np.exp(-6.907755 * (t - onset) / (rt * SR)), 0.0)  # 60 dB = e^-6.91
    tail = noise * env
    energy = (tail ** 2).sum(-1, keepdims=True)
    tail *= np.sqrt(10 ** (-drr / 10) / np.maximum(energy, 1e-20))
    tail[:, 0] = 1.0
    return tail


# MARK: - Pseudo-speakers


# Units of the distance between two voices (pseudo-speakers of one person keep ≥ `spread` apart).
PITCH_UNIT_ST = 2.0           # semitones
FORMANT_UNIT = math.log(1.06)  # 6 % of vocal-tract length


@dataclass
class PseudoSpeakers:
    """K made-up voices per human speaker (module doc); k = 0: none.

    `pitch` is the range of pitch shifts in semitones, `formant` the range of the formant
    (spectral-envelope) scale factor; both are drawn independently, uniformly (the formant
    factor log-uniformly), per person and pseudo-speaker, once per run. Each voice is at least
    `spread` units away from the person and from the person's other pseudo-speakers, a unit
    being 2 semitones of pitch or 6 % of formant scale (Euclidean in those units), when the
    ranges leave room for it (else the draw after 200 tries is kept).
    """

    k: int = 0
    pitch: tuple[float, float] = (-3.0, 3.0)
    formant: tuple[float, float] = (0.88, 1.14)
    spread: float = 1.0
    engines: frozenset[str] = REAL_SOURCES

    def __post_init__(self) -> None:
        if self.k < 0:
            raise ValueError(f"pseudo-speakers: k must be ≥ 0, got {self.k}")
        lo, hi = self.pitch
        if not -12.0 <= lo <= hi <= 12.0:
            raise ValueError(f"pseudo-speakers: pitch range {lo} {hi}: need −12 ≤ LO ≤ HI ≤ 12 semitones")
        lo, hi = self.formant
        if not 0.7 <= lo <= hi <= 1.4:
            raise ValueError(f"pseudo-speakers: formant range {lo} {hi}: need 0.7 ≤ LO ≤ HI ≤ 1.4")

    @property
    def active(self) -> bool:
        return self.k > 0

    def voices(self, person: str, seed: int) -> np.ndarray:
        """[K + 1, 2] (pitch factor, formant factor) of `person`'s voices; row 0 is (1, 1).

        A pure function of (seed, person, the ranges): independent of the rest of the corpus.
        """
        rng = np.random.default_rng([seed, 18, zlib.crc32(person.encode())])
        pts = [np.zeros(2)]                                                       # (st / unit, ln β / unit)
        lo_f, hi_f = math.log(self.formant[0]), math.log(self.formant[1])
        for _ in range(self.k):
            for _ in range(200):
                cand = np.array([rng.uniform(*self.pitch) / PITCH_UNIT_ST,
                                 rng.uniform(lo_f, hi_f) / FORMANT_UNIT])
                if min(np.hypot(*(cand - q)) for q in pts) >= self.spread:
                    break
            pts.append(cand)
        pts = np.array(pts)
        return np.stack([2.0 ** (pts[:, 0] * PITCH_UNIT_ST / 12), np.exp(pts[:, 1] * FORMANT_UNIT)], 1)


WARP_FFT, WARP_HOP = 256, 64     # 32 ms frames, 8 ms hop
WARP_ORDER = 10                  # all-pole envelope order: 4–5 formants below 4 kHz (8 kHz rule: SR/1000 + 2)
WARP_LAG_HZ = 60.0               # Gaussian lag window of the autocorrelation (keeps poles off harmonics)
WARP_BAND = (200.0, 3500.0)      # the envelope is read inside this band (edge values outside)
WARP_MAX_DB = 30.0               # largest gain or cut of any bin


def spectral_envelope(power: Tensor, order: int = WARP_ORDER, lag_hz: float = WARP_LAG_HZ) -> Tensor:
    """Natural-log all-pole (LPC) envelope of power spectra [..., F] (F = n/2 + 1), same shape.

    Autocorrelation method: r = IDFT(power), a Gaussian lag window of `lag_hz`, a −40 dB white
    noise floor (r0 × 1.0001), then Levinson–Durbin; the envelope is the prediction error over
    |A(f)|². Sharp where formants are, so scaling it moves formant peaks (a cepstrally smoothed
    envelope only tilts them); silent frames give a flat envelope.
    """
    n = 2 * (power.shape[-1] - 1)
    r = torch.fft.irfft(power, n)[..., :order + 1]                              # [..., order+1]
    lag = torch.arange(order + 1, device=power.device, dtype=power.dtype)
    r = r * torch.exp(-0.5 * (2 * math.pi * lag_hz / SR * lag) ** 2)
    r = torch.cat([r[..., :1] * 1.0001 + 1e-20, r[..., 1:]], -1)
    a = torch.zeros_like(r)
    a[..., 0] = 1.0
    err = r[..., 0]
    for i in range(1, order + 1):
        k = -(a[..., :i] * r[..., 1:i + 1].flip(-1)).sum(-1) / err              # reflection coefficient
        a = torch.cat([a[..., :1], a[..., 1:i + 1] + k[..., None] * a[..., :i].flip(-1), a[..., i + 1:]], -1)
        err = err * (1 - k * k).clamp(min=1e-6)
    return torch.log(err[..., None] / torch.fft.rfft(a, n).abs().pow(2).clamp(min=1e-30))


def _interp_bins(env: Tensor, pos: Tensor) -> Tensor:
    """env [N, M, F] read at fractional bin positions pos [N, F] (linear interpolation)."""
    F = env.shape[-1]
    lo = pos.floor().long().clamp(0, F - 2)
    w = (pos - lo).to(env.dtype)[:, None, :]
    lo = lo[:, None, :].expand(-1, env.shape[1], -1)
    return env.gather(-1, lo) * (1 - w) + env.gather(-1, lo + 1) * w


def warp_formants(x: Tensor, ratio: Tensor, n_fft: int = WARP_FFT, hop: int = WARP_HOP,
                  band: tuple[float, float] = WARP_BAND, max_db: float = WARP_MAX_DB) -> Tensor:
    """Scale the spectral envelope of x [N, T] by 1/ratio [N], keeping its harmonics in place.

    Each STFT frame is multiplied by envelope(clamp(f·ratio)) / envelope(clamp(f)) (power, per
    frame; clamp to `band`), limited to ±max_db, and resynthesised with the frame's own phases:
    ratio > 1 moves formants down, < 1 up; ratio 1 returns x (up to STFT rounding). Same length.
    """
    N, T = x.shape
    win = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    X = torch.stft(x, n_fft, hop, window=win, return_complex=True)              # [N, F, M]
    env = spectral_envelope(X.abs().pow(2).transpose(1, 2))                     # [N, M, F]
    F = env.shape[-1]
    f = torch.arange(F, device=x.device, dtype=x.dtype) * (SR / n_fft)          # [F]
    lo, hi = band
    num = _interp_bins(env, (f * ratio[:, None]).clamp(lo, hi) / (SR / n_fft))
    den = _interp_bins(env, f.clamp(lo, hi).expand(N, -1) / (SR / n_fft))
    lim = max_db / 10 * math.log(10)                                            # dB → ln power
    gain = torch.exp(0.5 * (num - den).clamp(-lim, lim))                        # [N, M, F] amplitude
    return torch.istft(X * gain.transpose(1, 2), n_fft, hop, window=win, length=T)


@dataclass
class MixPlan:
    """The random choices for one batch (all on the CPU, float64 where positions matter)."""

    utt: np.ndarray        # [B, C] utterance indices
    speed: np.ndarray      # [B, C] speed factors
    pos0: np.ndarray       # [B, C] source position (samples) of output sample 0 (may be < 0)
    rel_db: np.ndarray     # [B, C] level of each source relative to unit RMS (dB)
    level_db: np.ndarray   # [B] mixture RMS target (dBFS)
    colour_db: np.ndarray | None = None  # [B, C, COLOUR_GRID] EQ curves (0: none), or None
    room: np.ndarray | None = None       # [B, C, R] room responses (a unit impulse: none), or None
    variant: np.ndarray | None = None    # [B, C] voice: 0 the recorded person, k the k-th pseudo-speaker
    pitch: np.ndarray | None = None      # [B, C] pitch factor of that voice (read rate = speed · pitch)
    formant: np.ndarray | None = None    # [B, C] formant factor of that voice


class MixSampler:
    """Draws two-speaker mixtures from the utterances of one split.

    `batch(step, rank, B)` is deterministic in (seed, step, rank). Raises ValueError when the
    split has no pair of mixable utterances.
    """

    def __init__(self, corpus: Corpus, split: str = "train", seconds: float = 4.0,
                 speed: tuple[float, float] = (0.95, 1.05), gap_db: float = 5.0,
                 level_db: tuple[float, float] = (-33.0, -13.0), peak: float = 0.9,
                 taps: int = 16, seed: int = 0, augment: Augment | None = None,
                 pseudo: PseudoSpeakers | None = None):
        self.c = corpus
        self.idx = np.nonzero(corpus.split == split)[0]
        if len(self.idx) < 2:
            raise ValueError(f"split {split!r} has {len(self.idx)} utterances; need at least 2")
        self.rule = SpeakerRule(corpus.speakers)
        if not self._has_pair():
            raise ValueError(f"split {split!r} has no pair of utterances that may be mixed")
        self.T = int(round(seconds * SR))
        self.speed, self.gap_db, self.level_db, self.peak = speed, gap_db, level_db, peak
        self.taps, self.seed = taps, seed
        self.augment = augment if augment is not None and augment.active else None
        self.pseudo = pseudo if pseudo is not None and pseudo.active else None
        if self.pseudo is not None:
            # [U, K + 1, 2] voices of every utterance's person; None where the engine is not human.
            persons = sorted({person_of(corpus.speakers[u]) for u in self.idx
                              if engine_of(corpus.speakers[u]) in self.pseudo.engines})
            table = {q: self.pseudo.voices(q, seed) for q in persons}
            self.human = np.array([engine_of(s) in self.pseudo.engines for s in corpus.speakers])   # [U]
            self.voices = np.ones((len(corpus.speakers), self.pseudo.k + 1, 2))
            for u in self.idx:
                if self.human[u]:
                    self.voices[u] = table[person_of(corpus.speakers[u])]

    def _has_pair(self) -> bool:
        """Whether any two utterances of the split may be mixed (blockwise, bounded memory)."""
        for a in range(0, len(self.idx), 64):
            if self.rule.compatible(self.idx[a:a + 64, None], self.idx[None, :]).any():
                return True
        return False

    def plan(self, rng: np.random.Generator, B: int) -> MixPlan:
        """Random choices for B examples."""
        first = self.idx[rng.integers(len(self.idx), size=B)]
        second = self.idx[rng.integers(len(self.idx), size=B)]
        for _ in range(1000):
            bad = ~self.rule.compatible(first, second)
            if not bad.any():
                break
            second[bad] = self.idx[rng.integers(len(self.idx), size=int(bad.sum()))]
        else:
            raise RuntimeError("could not draw a mixable pair in 1000 tries")
        utt = np.stack([first, second], 1)                                       # [B, C]
        variant = pitch = formant = None
        if self.pseudo is not None:      # drawn only when on, so plans without it are unchanged
            v = rng.integers(self.pseudo.k + 1, size=(B, 2))
            variant = np.where(self.human[utt], v, 0)
            pitch, formant = self.voices[utt, variant, 0], self.voices[utt, variant, 1]
        speed = rng.uniform(*self.speed, size=(B, 2))
        rate = speed if pitch is None else speed * pitch                          # read rate
        n_out = self.c.length[utt] / rate                                         # output samples
        slack = n_out - self.T          # > 0: crop; < 0: place inside the window
        u = rng.uniform(size=(B, 2))
        pos0 = u * slack * rate         # source position of output sample 0 (< 0: placed later)
        gap = rng.uniform(0, self.gap_db, size=B)
        sign = np.where(rng.uniform(size=B) < 0.5, 1.0, -1.0)
        rel = np.stack([sign * gap / 2, -sign * gap / 2], 1)
        level = rng.uniform(*self.level_db, size=B)
        plan = MixPlan(utt, speed, pos0, rel, level, variant=variant, pitch=pitch, formant=formant)
        if self.augment is not None:     # drawn after the rest, so plans without it are unchanged
            a = self.augment
            use = rng.uniform(size=(B, 2)) < a.colour
            plan.colour_db = colour_curve_db(rng, B * 2).reshape(B, 2, -1) * use[..., None]
            R = max(1, int(round(a.tail * SR)))
            use = rng.uniform(size=(B, 2)) < a.room
            rooms = room_response(rng, B * 2, R, a.rt60, a.drr_db).reshape(B, 2, R)
            rooms[~use] = 0.0
            rooms[~use, 0] = 1.0
            plan.room = rooms
        return plan

    def labels(self, p: MixPlan) -> np.ndarray:
        """[B, C] speaker labels of a plan's sources: the speaker, or `speaker#k` for a pseudo-speaker."""
        v = p.variant if p.variant is not None else np.zeros(p.utt.shape, dtype=np.int64)
        return np.array([[pseudo_label(self.c.speakers[u], int(k)) for u, k in zip(us, ks)]
                         for us, ks in zip(p.utt, v)], dtype=object)

    def render(self, p: MixPlan, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Waveforms for a plan: (mix [B, T], sources [B, C, T]) float32 on `device`."""
        dev = torch.device(device) if device is not None else self.c.audio.device
        B, C = p.utt.shape
        T, P = self.T, self.taps
        rate = p.speed if p.pitch is None else p.speed * p.pitch
        speed = torch.tensor(rate, dtype=torch.float64, device=dev)                        # [B, C]
        pos = (torch.tensor(p.pos0, dtype=torch.float64, device=dev)[..., None]
               + torch.arange(T, dtype=torch.float64, device=dev) * speed[..., None])      # [B, C, T]
        base = torch.floor(pos)
        frac = (pos - base).float()                                                         # [B, C, T]
        k = torch.arange(-P // 2 + 1, P // 2 + 1, device=dev)                               # [P]
        n = base.long()[..., None] + k                                                      # [B, C, T, P]
        length = torch.tensor(self.c.length[p.utt], device=dev)                             # [B, C]
        start = torch.tensor(self.c.start[p.utt], device=dev)
        inside = (n >= 0) & (n < length[..., None, None])
        x = self.c.audio[(start[..., None, None] + n.clamp(min=0)).clamp(max=len(self.c.audio) - 1)]
        x = torch.where(inside, x.float(), 0.0) / 32768.0                                  # [B, C, T, P]
        fc = torch.clamp(1.0 / speed.float(), max=1.0)[..., None, None]                    # [B, C, 1, 1]
        d = frac[..., None] - k.float()                                                     # [B, C, T, P]
        h = fc * torch.sinc(fc * d) * (0.5 + 0.5 * torch.cos(math.pi * d / (P / 2)))       # Hann
        h = torch.where(d.abs() < P / 2, h, 0.0)
        h = h / h.sum(-1, keepdim=True)
        src = (x * h).sum(-1)                                                               # [B, C, T]
        active = (pos >= 0) & (pos <= (length[..., None] - 1))                              # [B, C, T]
        if p.pitch is not None:
            ratio = p.pitch / p.formant                                                     # [B, C]
            sel = np.abs(ratio - 1.0) > 1e-9
            if sel.any():
                b, c = (torch.from_numpy(i).to(dev) for i in np.nonzero(sel))
                r = torch.tensor(ratio[sel], dtype=torch.float32, device=dev)
                src = src.clone()
                src[b, c] = warp_formants(src[b, c], r) * active[b, c]
        if p.colour_db is not None or p.room is not None:
            src = filter_sources(src, p.colour_db, p.room)                                 # [B, C, T]
        ms = (src.pow(2) * active).sum(-1) / active.sum(-1).clamp(min=1)                    # [B, C]
        gain = 10 ** (torch.tensor(p.rel_db, device=dev, dtype=torch.float32) / 20)
        src = src * (gain / ms.clamp(min=1e-10).sqrt())[..., None]
        mix = src.sum(1)                                                                    # [B, T]
        target = 10 ** (torch.tensor(p.level_db, device=dev, dtype=torch.float32) / 20)
        g = target / mix.pow(2).mean(-1).clamp(min=1e-12).sqrt()                           # [B]
        pk = torch.maximum(mix.abs().amax(-1), src.abs().amax((-1, -2))) * g
        g = torch.where(pk > self.peak, g * self.peak / pk, g)
        src = src * g[:, None, None]
        return src.sum(1), src

    def batch(self, step: int, rank: int, B: int, device=None) -> tuple[Tensor, Tensor]:
        """The batch for (step, rank): deterministic in (seed, step, rank)."""
        rng = np.random.default_rng([self.seed, step, rank])
        return self.render(self.plan(rng, B), device)

    def fixed_set(self, n: int, seed: int = 999, batch: int = 16, device=None) -> tuple[Tensor, Tensor]:
        """A fixed validation set of n mixtures without speed perturbation (CPU tensors)."""
        rng = np.random.default_rng([seed, 12345])
        mixes, srcs = [], []
        for i in range(0, n, batch):
            p = self.plan(rng, min(batch, n - i))
            p.speed[:] = 1.0
            m, s = self.render(p, device)
            mixes.append(m.cpu())
            srcs.append(s.cpu())
        return torch.cat(mixes), torch.cat(srcs)
