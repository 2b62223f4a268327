#!/usr/bin/env python3
"""Build a corpus of real human voices from Debian packages: KDE games, Fish Fillets, Tux Paint,
Flight of the Amazon Queen or Drascula.

    python3 training/extra_voices.py --out /tmp/kde-voices          # downloads with apt-get
    python3 training/extra_voices.py --root DIR --out /tmp/kde-voices   # DIR = extracted packages
    python3 training/extra_voices.py --source fillets --max-seconds 10 --max-minutes 30 --out /tmp/fillets-voices
    python3 training/extra_voices.py --source tuxpaint --min-minutes 3 --max-minutes 12 --out /tmp/tuxpaint-voices
    python3 training/extra_voices.py --source fotaq --max-seconds 10 --max-minutes 8 --out /tmp/fotaq-voices
    python3 training/extra_voices.py --source drascula --max-seconds 10 --max-minutes 8 --out /tmp/drascula-voices
    python3 training/extra_voices.py --source drascula-es --max-seconds 10 --max-minutes 8 --out /tmp/drascula-es-voices

Why: the shared training corpus has only four human speakers (Asterisk prompts), and the
devset's real voices score ~4 dB below synthetic held-out voices (training/RESULTS.md). The
default source, `kde`: `klettres-data`
(letters and syllables spoken in ~20 languages) and `ktuberling-data` (words in ~25 languages)
hold about 1.3 h of recordings by a few dozen different people; licence GPL-2+ (their
debian/copyright), which a model trained on them must name in its licence chain.

Output: the corpus format of `../shared/corpus` (`manifest.tsv` with id, engine, speaker, voice,
seconds, text, and `audio/<id>.flac` at 8 kHz), ready for `prepare_data.py --corpus` (which
takes several corpora). Recordings are short (one word or syllable), so each speaker's
recordings are joined in a seeded random order, with 0.1–0.4 s pauses, into utterances of at
most `--max-seconds` (like the devset's joined FSDD digits), and each speaker keeps at most
`--max-minutes` of them.

Speakers: one per language code; both games' recordings of a language count as one speaker
(they may share a voice, and mixing a speaker with itself must not happen), and Serbian script
variants (sr, sr@latin, ...) are the same files, dropped as byte-identical duplicates. Different
codes of one language (en, en_GB) are assumed to be different people.

`--source fillets`: the spoken dialogue of the puzzle game Fish Fillets NG, Czech and Dutch
casts (`fillets-ng-data-cs`, `fillets-ng-data-nl`; GPL-2). Only the two fish who speak most of
the lines are kept, as four speakers (language × fish: `fillets:cs-m`, `cs-v`, `nl-m`, `nl-v`;
about 35 min each): the other characters' lines are few and some may share an actor. Lines are
acted dialogue, 1–10 s each, and are joined the same way (use `--max-seconds 10`).

`--source tuxpaint`: the spoken descriptions of Tux Paint's stamps ("a frog", …;
`tuxpaint-stamps-default`, GPL-2+), recorded by volunteers per language (its changelog names
them: Belarusian, Bulgarian, French, Romanian, Russian by Google Code-in students, Danish, Greek,
Spanish and others by translators); about 3 h in 13 languages, 1–3 s per clip. One speaker per
language (a language recorded by two people counts as one, which only forbids mixing them);
use `--min-minutes 3` to drop languages with a few clips.

`--source fotaq`: the speech of the adventure game Flight of the Amazon Queen (CD version,
`flight-of-the-amazon-queen`; its licence allows free redistribution and modification, and it
asks that the game's readme and copyright notices stay with it). All speech sits in one ScummVM
resource file, `queen.1c`, as MP3 entries (`.SB`, 11 kHz, from 8-bit originals). A
conversation's lines are named `KKhhhhJn.SB` (Joe, the hero) and `KKhhhhPn.SB` (the person he
talks to), where KK is the conversation's key; the key is also stored in the conversation's
dialogue file (`NAME.DOG`), whose name gives the character (`SPARKY1` … `SPARKY8` → `SPARKY`).
Speakers: `fotaq:JOE` (his conversation lines and `JOE*.SB` descriptions) and one per character
(29); cut-scene lines (`C*.SB`) and lines whose key has no dialogue file are skipped, since
their speaker is not known. A small cast voiced the characters, so two character labels may be
one actor: a few training mixtures may then pair a voice with itself. Use `--max-seconds 10
--max-minutes 8`: Joe alone has 70 minutes.

`--source drascula` / `drascula-es`: the speech of the adventure game Drascula: The Vampire
Strikes Back (Debian `drascula`, English cast; `drascula-spanish`, a different, Spanish cast;
its licence allows free redistribution and modification, a modified version marked as such,
its readme and copyright notices kept). Lines are raw unsigned 8-bit mono at 11,025 Hz in
`usr/share/scummvm/drascula/<en|es>/*.ALS`, with 32 bytes before and 32 after the samples (as
ScummVM's engine plays them). The file name's prefix says who speaks (ScummVM's talk routines):
none → the hero John Hacker, `VB` von Braun, `I` Igor, `BJ` B.J., `L` the werewolf, `T` the
bartender, `E` the musician (ScummVM's talk_mus), `B` the drunk, `P` the pianist; `D` holds
Drascula (1–40), John's lines in the blind man's scene (57–67), the blind man (68–81) and one
bartender line (82). `S` files are sound effects and `F`, `D56` and `D83` have no known speaker:
all skipped. 11 speakers per language (`drascula:hacker`, `drascula-es:hacker`, …). A small cast
of actors, like Flight of the Amazon Queen's, so two labels may be one actor. Use
`--max-seconds 10 --max-minutes 8`: John has 24 (English) and 20 (Spanish) of the 46 and 41
minutes of speech (0.77 h and 0.69 h; 0.51 h and 0.50 h with those caps).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from prepare_data import SR, _decode_one, to_8k_int16, trim_silence  # noqa: E402

AUDIO = (".ogg", ".wav", ".flac", ".mp3")
FILLETS_ROLES = ("m", "v")   # the small and the big fish


# MARK: - Finding recordings


def find_recordings(root: Path) -> dict[str, list[Path]]:
    """Language code → recording files under an extracted `usr/share` of both packages.

    Byte-identical files are kept once (the first in sorted path order).
    """
    share = root / "usr" / "share"
    found: list[tuple[str, Path]] = []
    for f in sorted((share / "klettres").glob("*/*/*")):       # klettres/<lang>/{alpha,syllab}/x
        if f.suffix.lower() in AUDIO:
            found.append((f.parts[-3], f))
    for f in sorted((share / "ktuberling" / "sounds").glob("*/*")):  # ktuberling/sounds/<lang>/x
        if f.suffix.lower() in AUDIO:
            found.append((f.parts[-2], f))
    return group_unique([(lang.split("@")[0], f) for lang, f in found])


def group_unique(found: list[tuple[str, Path]]) -> dict[str, list[Path]]:
    """Speaker → files, in the given order; a file byte-identical to an earlier one is dropped."""
    seen: set[str] = set()
    by_speaker: dict[str, list[Path]] = {}
    for speaker, f in found:
        h = hashlib.sha1(f.read_bytes()).hexdigest()
        if h in seen:
            continue
        seen.add(h)
        by_speaker.setdefault(speaker, []).append(f)
    return by_speaker


def find_tuxpaint(root: Path) -> dict[str, list[Path]]:
    """Language code → the spoken stamp descriptions (`*_desc_<lang>.ogg`) of Tux Paint's stamps.

    Descriptions without a language suffix (a few English ones) are skipped; duplicates dropped.
    """
    found = []
    for f in sorted((root / "usr/share/tuxpaint/stamps").rglob("*_desc_*")):
        lang = f.stem.rsplit("_desc_", 1)[1]
        if f.suffix.lower() in AUDIO and lang:
            found.append((lang, f))
    return group_unique(found)


def find_fillets(root: Path) -> dict[str, list[Path]]:
    """'<lang>-<fish>' → the fish's lines under an extracted `usr/share/games/fillets-ng`.

    Files are `sound/<level>/<lang>/<prefix>-<role>-<line>.ogg` (the prefix is a short level
    code, e.g. `vit` in `city/`); roles other than FILLETS_ROLES are skipped.
    """
    by_speaker: dict[str, list[Path]] = {}
    for f in sorted((root / "usr/share/games/fillets-ng/sound").glob("*/*/*")):
        lang, parts = f.parts[-2], f.stem.split("-")
        if f.suffix.lower() not in AUDIO or len(parts) < 3:
            continue
        role = parts[1]
        if role in FILLETS_ROLES:
            by_speaker.setdefault(f"{lang}-{role}", []).append(f)
    return by_speaker


FOTAQ_DIR = "usr/share/scummvm/flight-of-the-amazon-queen"
FOTAQ_LINE = re.compile(r"^(\d\d)[0-9A-FX]{4}([JP])\d\.SB$")   # KKhhhhJn / KKhhhhPn


def read_queen_table(data: bytes) -> dict[str, bytes]:
    """Entry name → bytes of a ScummVM Queen resource file (`queen.1c`).

    Layout: "QTBL", 8 bytes of version and flags, the compression (1 byte: 1 = MP3), the entry
    count (uint16 big-endian), then per entry a NUL-padded 12-byte name, a bundle number (1 byte),
    offset and size (uint32 big-endian each). Raises ValueError on another layout or an entry
    outside the file.
    """
    if len(data) < 15 or data[:4] != b"QTBL":
        raise ValueError("not a ScummVM Queen resource file (no QTBL header)")
    count = struct.unpack(">H", data[13:15])[0]
    if 15 + 21 * count > len(data):
        raise ValueError(f"resource table of {count} entries runs past the end of the file")
    entries = {}
    for i in range(count):
        e = data[15 + 21 * i: 36 + 21 * i]
        name = e[:12].split(b"\0")[0].decode("ascii", "replace")
        off, size = struct.unpack(">II", e[13:21])
        if off + size > len(data):
            raise ValueError(f"entry {name} ({off}+{size}) runs past the end of the file")
        entries[name] = data[off:off + size]
    return entries


def fotaq_speakers(entries: dict[str, bytes]) -> dict[str, list[str]]:
    """Speaker ('JOE' or a character name) → the `.SB` entry names of their lines."""
    character = {}                                            # conversation key → character
    for name, dog in entries.items():
        if name.endswith(".DOG") and len(dog) >= 24 and dog[:4] == b"AmBk" and dog[12:20] == b"Datas   ":
            key = struct.unpack(">H", dog[22:24])[0]
            character[key] = re.sub(r"\d+$", "", name[:-4])
    by_speaker: dict[str, list[str]] = {}
    for name in sorted(entries):
        m = FOTAQ_LINE.match(name)
        if (name.startswith("JOE") and name.endswith(".SB")) or (m and m.group(2) == "J"):
            by_speaker.setdefault("JOE", []).append(name)
        elif m and int(m.group(1)) in character:
            by_speaker.setdefault(character[int(m.group(1))], []).append(name)
    return by_speaker


class Member(NamedTuple):
    """A recording stored inside an archive file: the archive's path, the entry's name and bytes."""

    archive: Path
    name: str
    data: bytes


Recording = Path | Member


def find_fotaq(root: Path) -> dict[str, list[Recording]]:
    """Speaker → Flight of the Amazon Queen's speech lines, as MP3 members of `queen.1c` (read
    in memory; nothing is extracted)."""
    res = root / FOTAQ_DIR / "queen.1c"
    if not res.exists():
        return {}
    entries = read_queen_table(res.read_bytes())
    return {speaker: [Member(res, name, entries[name]) for name in names]
            for speaker, names in fotaq_speakers(entries).items()}


DRASCULA_DIR = "usr/share/scummvm/drascula"
DRASCULA_RATE = 11025
DRASCULA_PAD = 32                  # bytes before and after the samples of an .ALS file
DRASCULA_PREFIX = {"": "hacker", "VB": "vonbraun", "I": "igor", "BJ": "bj", "L": "werewolf",
                   "T": "bartender", "E": "musician", "B": "drunk", "P": "pianist"}
DRASCULA_LINE = re.compile(r"^([A-Z]*)(\d+)\.ALS$")


def drascula_speaker(name: str) -> str | None:
    """The speaker of a Drascula speech file (`VB12.ALS` → `vonbraun`); None when not known
    or not speech (module doc)."""
    m = DRASCULA_LINE.match(name.upper())
    if not m:
        return None
    prefix, n = m.group(1), int(m.group(2))
    if prefix == "D":
        return ("drascula" if n <= 40 else "hacker" if 57 <= n <= 67 else "blind" if 68 <= n <= 81
                else "bartender" if n == 82 else None)
    return DRASCULA_PREFIX.get(prefix)


def find_drascula(root: Path, lang: str) -> dict[str, list[Path]]:
    """Speaker → the `.ALS` speech files of Drascula's `lang` cast ('en' or 'es')."""
    by_speaker: dict[str, list[Path]] = {}
    for f in sorted((root / DRASCULA_DIR / lang).glob("*")):
        who = drascula_speaker(f.name)
        if who is not None:
            by_speaker.setdefault(who, []).append(f)
    return by_speaker


def decode_als(data: bytes) -> np.ndarray:
    """A Drascula `.ALS` file (32 bytes, unsigned 8-bit samples at 11,025 Hz, 32 bytes) as int16 at 8 kHz."""
    body = np.frombuffer(data, dtype=np.uint8)[DRASCULA_PAD:max(DRASCULA_PAD, len(data) - DRASCULA_PAD)]
    return to_8k_int16((body.astype(np.float32) - 128.0) / 128.0, DRASCULA_RATE)


def decode(rec: Recording) -> np.ndarray:
    """A recording (a file, or an archive member) as mono int16 at 8 kHz."""
    if isinstance(rec, Path) and rec.suffix.upper() == ".ALS":
        return decode_als(rec.read_bytes())
    return _decode_one(io.BytesIO(rec.data) if isinstance(rec, Member) else str(rec))


def app_of(rec: Recording) -> str:
    """The program a recording belongs to: the folder under `usr/share` (or under
    `usr/share/games` or `usr/share/scummvm`) of its file or archive."""
    f = rec.archive if isinstance(rec, Member) else rec
    parts = f.parts[f.parts.index("share") + 1:]
    return parts[1] if parts[0] in ("games", "scummvm") else parts[0]


class Source(NamedTuple):
    """A Debian source of recordings: its packages, their licence, and speaker → files; with what
    it holds: hours of speech (decoded and trimmed, with the README's caps where it gives them),
    speakers and the kind of speech (read or prompted speech is worth more than acted lines)."""

    packages: tuple[str, ...]
    licence: str
    find: Callable[[Path], dict[str, list[Recording]]]
    hours: float
    speakers: str
    kind: str


SOURCES = {
    "kde": Source(("klettres-data", "ktuberling-data"), "GPL-2+", find_recordings, 1.00,
                  "31 people (one label per language code)", "isolated letters, syllables and words, read"),
    "fillets": Source(("fillets-ng-data-cs", "fillets-ng-data-nl"), "GPL-2", find_fillets, 1.99,
                      "4 (two fish × Czech and Dutch casts)", "acted game dialogue"),
    "tuxpaint": Source(("tuxpaint-stamps-default",), "GPL-2+", find_tuxpaint, 1.70,
                       "9 languages (volunteers; one label per language)", "read short descriptions"),
    "fotaq": Source(("flight-of-the-amazon-queen",), "Flight of the Amazon Queen licence (free "
                    "redistribution and modification)", find_fotaq, 2.06,
                    "Joe + 29 character labels (a small cast)", "acted game dialogue (8-bit 11 kHz originals)"),
    "drascula": Source(("drascula",), "Drascula licence (free redistribution and modification, "
                       "modified versions marked; readme and copyright notices kept)",
                       lambda root: find_drascula(root, "en"), 0.51,
                       "11 character labels, English cast (a small cast)",
                       "acted game dialogue (8-bit 11 kHz originals)"),
    "drascula-es": Source(("drascula-spanish",), "Drascula licence (free redistribution and "
                          "modification, modified versions marked; readme and copyright notices kept)",
                          lambda root: find_drascula(root, "es"), 0.50,
                          "11 character labels, Spanish cast (a small cast)",
                          "acted game dialogue in Spanish (8-bit 11 kHz originals)"),
}


def download(dst: Path, packages: tuple[str, ...]) -> Path:
    """apt-get download + dpkg -x of packages into dst; returns dst."""
    dst.mkdir(parents=True, exist_ok=True)
    for p in packages:
        subprocess.run(["apt-get", "download", p], cwd=dst, check=True, stdout=subprocess.DEVNULL)
    for deb in sorted(dst.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(dst)], check=True)
    return dst


# MARK: - Joining


def join_utterances(clips: list[np.ndarray], rng: np.random.Generator, max_samples: int,
                    gap: tuple[float, float] = (0.1, 0.4)) -> list[np.ndarray]:
    """Clips (int16) in random order, joined with random pauses into pieces ≤ max_samples.

    A clip longer than max_samples is cut to it. Every clip is used exactly once.
    """
    out: list[np.ndarray] = []
    cur: list[np.ndarray] = []
    n = 0
    for i in rng.permutation(len(clips)):
        c = clips[i][:max_samples]
        pause = np.zeros(int(rng.uniform(*gap) * SR), np.int16) if cur else np.zeros(0, np.int16)
        if cur and n + len(pause) + len(c) > max_samples:
            out.append(np.concatenate(cur))
            cur, n = [], 0
            pause = np.zeros(0, np.int16)
        cur += [pause, c]
        n += len(pause) + len(c)
    if cur:
        out.append(np.concatenate(cur))
    return out


# MARK: - Main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", choices=sorted(SOURCES), default="kde",
                    help="kde: KLettres + KTuberling (31 speakers); fillets: Fish Fillets NG (4); "
                         "tuxpaint: Tux Paint stamp descriptions (one speaker per language); "
                         "fotaq: Flight of the Amazon Queen (Joe and 29 characters); drascula, "
                         "drascula-es: Drascula's English and Spanish casts (11 characters each)")
    ap.add_argument("--root", default="", help="folder with the packages extracted (default: download)")
    ap.add_argument("--out", required=True, help="corpus folder to write (replaced)")
    ap.add_argument("--max-seconds", type=float, default=6.0, help="longest joined utterance")
    ap.add_argument("--max-minutes", type=float, default=6.0,
                    help="per speaker (keeps one language from dominating; 0: no limit)")
    ap.add_argument("--min-minutes", type=float, default=0.0,
                    help="drop speakers with less speech than this (before joining)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    import soundfile as sf

    source = SOURCES[args.source]
    tmp = None
    if args.root:
        root = Path(args.root)
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f"{args.source}-voices-"))
        root = download(tmp, source.packages)
    by_lang = source.find(root)
    if not by_lang:
        raise SystemExit(f"error: no {' / '.join(source.packages)} recordings under {root}/usr/share")
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    (out / "audio").mkdir(parents=True)
    rng = np.random.default_rng(args.seed)
    rows, total = [], 0
    for lang in sorted(by_lang):
        clips = [trim_silence(decode(f), margin=400) for f in by_lang[lang]]
        clips = [c for c in clips if len(c) >= SR // 10]
        if sum(len(c) for c in clips) < args.min_minutes * 60 * SR:
            continue
        apps = sorted({app_of(f) for f in by_lang[lang]})
        joined = join_utterances(clips, rng, int(args.max_seconds * SR))
        if args.max_minutes > 0:
            budget = int(args.max_minutes * 60 * SR)
            keep = np.cumsum([len(y) for y in joined]) <= budget
            joined = [y for y, k in zip(joined, keep) if k] or joined[:1]
        for k, y in enumerate(joined):
            uid = f"{args.source}_{lang}_{k:04d}"
            sf.write(out / "audio" / f"{uid}.flac", y, SR, subtype="PCM_16")
            rows.append([uid, args.source, f"{args.source}:{lang}", "+".join(apps), f"{len(y) / SR:.3f}", ""])
            total += len(y)
    with open(out / "manifest.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["id", "engine", "speaker", "voice", "seconds", "text"])
        w.writerows(rows)
    (out / "README.md").write_text(
        f"# {args.source} voices\n\nReal recordings from Debian's " + ", ".join(source.packages)
        + f" ({source.licence}), joined per speaker by training/extra_voices.py --source {args.source}.\n")
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.source} voices: {len({r[2] for r in rows})} speakers, {len(rows)} utterances, {total / SR / 3600:.2f} h "
          f"in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
