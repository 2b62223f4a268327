#!/usr/bin/env python3
"""Build a corpus of real human voices from Debian packages: KDE games, Fish Fillets, Tux Paint,
Flight of the Amazon Queen, Drascula, Beneath a Steel Sky, or the test recordings of codec2,
pocketsphinx and alsa-utils; or from a folder of read speech someone placed (the Edinburgh
56-speaker set and PTDB-TUG, which MS-SNSD holds: more than can be fetched here). Each source's
packages or files, licence, hours, speakers and kind of speech are in sources.py (the one
registry of corpus sources); `FINDERS` (below) finds its recordings.

    python3 training/extra_voices.py --out /tmp/kde-voices          # downloads with apt-get
    python3 training/extra_voices.py --root DIR --out /tmp/kde-voices   # DIR = extracted packages
    python3 training/extra_voices.py --source fillets --max-seconds 10 --max-minutes 30 --out /tmp/fillets-voices
    python3 training/extra_voices.py --source edinburgh56 --root ../shared/ms-snsd --max-minutes 0 --out /tmp/e56

The commands (and caps) of the packing in use are in training/README.md.

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
all skipped, and so are the 3 Spanish files that are links to the English cast's. 11 speakers
per language (`drascula:hacker`, `drascula-es:hacker`, …). A small cast of actors, like Flight
of the Amazon Queen's, so two labels may be one actor. Use `--max-seconds 10 --max-minutes 8`:
John has 24 (English) and 20 (Spanish) of the 46 and 41 minutes of speech.

`--source bass`: the in-game speech of Beneath a Steel Sky (CD version, `beneath-a-steel-sky`;
its licence allows free distribution with its readme and copyright notices, and modification
with modified versions marked). All game data sits in `sky.dsk`, indexed by `sky.dnr` (format:
`read_sky_index`); speech line k of section s is file 50000 + (first line of s) + k, 3,487
files, each a 22-byte header and an RNC ProPack method-1 packed body (`rnc1_unpack`) of unsigned
8-bit samples at 11,025 Hz (as ScummVM's Sky engine reads them). Nothing says who speaks a line
(that is in the game's compiled scripts), so all get one label, `bass:cast`: they are only ever
mixed with other sources. The CD intro's voices (files 59500 on) are skipped. 1.93 h of speech,
2.10 h joined with `--max-seconds 10 --max-minutes 0`.

`--source tiny`: the clean read-speech test recordings of `codec2-examples` (10 original
recordings; its coded, radio and modem files are skipped; LGPL-2.1), `pocketsphinx-testdata`
(8 files; its TIDIGITS file is LDC-licensed and its LibriVox excerpts may be LibriSpeech
readers of the devset, both skipped; BSD-2-Clause) and `alsa-utils` (the speaker-test voice;
GPL-2). One label per package, since the files do not name their speakers: 1.2 minutes.
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

from prepare_data import SR, decode_file, to_8k_int16, trim_silence
from sources import FOLDER_SOURCES, SOURCES

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
        if who is not None and not f.is_symlink():   # drascula-spanish links 3 lines to ../en: the English cast
            by_speaker.setdefault(who, []).append(f)
    return by_speaker


def decode_als(data: bytes) -> np.ndarray:
    """A Drascula `.ALS` file (32 bytes, unsigned 8-bit samples at 11,025 Hz, 32 bytes) as int16 at 8 kHz."""
    body = np.frombuffer(data, dtype=np.uint8)[DRASCULA_PAD:max(DRASCULA_PAD, len(data) - DRASCULA_PAD)]
    return to_8k_int16((body.astype(np.float32) - 128.0) / 128.0, DRASCULA_RATE)


BASS_DIR = "usr/share/scummvm/beneath-a-steel-sky"
SKY_HEADER = 22                    # a Sky data file's header: 11 little-endian uint16 (flag at 0, size at 12)
SKY_SPEECH = range(50000, 59000)   # speech lines: 50000 + the section's first line + line number
SKY_RATE = 11025


def read_sky_index(dnr: bytes) -> dict[int, tuple[int, int, bool]]:
    """File number → (offset in sky.dsk, stored size, compressed) from Beneath a Steel Sky's `sky.dnr`.

    Layout: the entry count (uint32 little-endian), then 8 bytes per entry: the file number
    (uint16), the offset (24 bits; when its top bit is set, the other 23 bits count 16-byte
    units), and size and flags (24 bits: size in the low 22, bit 23 set = stored uncompressed).
    Raises ValueError when the table runs past the end of the file.
    """
    if len(dnr) < 4:
        raise ValueError("not a Beneath a Steel Sky index (sky.dnr too short)")
    count = struct.unpack("<I", dnr[:4])[0]
    if 4 + 8 * count > len(dnr):
        raise ValueError(f"sky.dnr: {count} entries run past the end of the file")
    index = {}
    for i in range(count):
        e = dnr[4 + 8 * i: 12 + 8 * i]
        off, flags = int.from_bytes(e[2:5], "little"), int.from_bytes(e[5:8], "little")
        index[struct.unpack("<H", e[:2])[0]] = (
            (off & 0x7FFFFF) << 4 if off >> 23 else off, flags & 0x3FFFFF, not flags >> 23)
    return index


def _crc16(data: bytes) -> int:
    """CRC-16 with the reflected polynomial 0xA001 and initial value 0 (RNC's checksum)."""
    crc = 0
    for b in data:
        crc = _CRC16[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def _crc16_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC16 = _crc16_table()


class _Bits:
    """Bits of an RNC stream, first bit lowest, read from little-endian 16-bit words. The literal
    bytes of a match-free run sit in the stream right after the word being read (`pos`)."""

    __slots__ = ("data", "pos", "buf", "n")

    def __init__(self, data: bytes):
        self.data, self.pos, self.buf, self.n = data, 0, 0, 0

    def read(self, k: int) -> int:
        while self.n < k:
            self.buf |= (self.data[self.pos] | self.data[self.pos + 1] << 8) << self.n
            self.pos += 2
            self.n += 16
        v = self.buf & ((1 << k) - 1)
        self.buf >>= k
        self.n -= k
        return v

    def peek(self, k: int) -> int:
        b, n, p = self.buf, self.n, self.pos
        while n < k:
            b |= (self.data[p] | self.data[p + 1] << 8) << n
            p += 2
            n += 16
        return b & ((1 << k) - 1)


def _rnc_table(bits: _Bits):
    """One Huffman table: a 5-bit symbol count and a 4-bit code length per symbol (0: unused),
    canonical codes, shortest first. Returns (lookup, width) where lookup[the next `width` bits]
    is (symbol, code length), or None for an empty table."""
    lengths = [bits.read(4) for _ in range(bits.read(5))]
    width = max(lengths, default=0)
    if width == 0:
        return None
    sym, ln = np.zeros(1 << width, np.int64), np.zeros(1 << width, np.int64)
    code = 0
    for length in range(1, 17):
        for s, l in enumerate(lengths):
            if l == length:
                first = int(format(code >> (16 - length), f"0{length}b")[::-1], 2)  # top bit read first
                sym[first::1 << length], ln[first::1 << length] = s, length
                code += 1 << (16 - length)
    return list(zip(sym.tolist(), ln.tolist())), width


def _rnc_value(bits: _Bits, table) -> int:
    """A number coded as a Huffman symbol s: s itself for s < 2, else s − 1 more bits below a 1."""
    lookup, width = table
    s, length = lookup[bits.peek(width)]
    bits.read(length)
    return bits.read(s - 1) | (1 << (s - 1)) if s >= 2 else s


def rnc1_unpack(data: bytes) -> bytes:
    """Unpack an RNC ProPack method-1 stream, as Beneath a Steel Sky stores its files.

    Header (18 bytes, big-endian): "RNC\\x01", unpacked and packed sizes (uint32), CRC-16 of the
    unpacked and of the packed bytes, a spare byte and the block count. Each block: three Huffman
    tables (literal run lengths, match distances, match lengths), a 16-bit count of steps, and per
    step a run of literal bytes copied from the stream, then (except after the last step) a match
    of length ≥ 2 copied from earlier output. Raises ValueError on another format or a CRC mismatch.
    """
    if data[:4] != b"RNC\x01" or len(data) < 18:
        raise ValueError("not an RNC method-1 stream")
    unpacked, packed, crc_unpacked, crc_packed = struct.unpack(">IIHH", data[4:16])
    body = data[18:18 + packed]
    if len(body) != packed or _crc16(body) != crc_packed:
        raise ValueError("RNC stream cut short or damaged (packed CRC)")
    bits = _Bits(body + bytes(4))
    bits.read(2)                                   # two flag bits (lock, key): unused here
    out = bytearray()
    tables: list = [None, None, None]
    for _ in range(data[17]):
        tables = [_rnc_table(bits) or old for old in tables]
        runs, dists, lens = tables
        for left in range(bits.read(16), 0, -1):
            n = _rnc_value(bits, runs)
            if n:
                out += body[bits.pos:bits.pos + n]
                bits.pos += n
            if left > 1:
                dist, n = _rnc_value(bits, dists) + 1, _rnc_value(bits, lens) + 2
                start = len(out) - dist
                if start < 0:
                    raise ValueError("RNC match before the start of the output")
                if dist >= n:
                    out += out[start:start + n]
                else:                              # overlapping: repeats the last `dist` bytes
                    for k in range(n):
                        out.append(out[start + k])
            if len(out) > unpacked:
                raise ValueError("RNC stream unpacks past its stated size")
    if len(out) != unpacked or _crc16(bytes(out)) != crc_unpacked:
        raise ValueError(f"RNC stream unpacked to {len(out)} bytes, not {unpacked} (or its CRC differs)")
    return bytes(out)


def find_bass(root: Path) -> dict[str, list[Recording]]:
    """'cast' → Beneath a Steel Sky's in-game speech lines, as members of `sky.dsk` (stored,
    still compressed, in memory; nothing is extracted). The lines carry no speaker, so they all
    get the one label (module doc)."""
    d = root / BASS_DIR
    if not (d / "sky.dsk").exists():
        return {}
    index, dsk = read_sky_index((d / "sky.dnr").read_bytes()), (d / "sky.dsk").read_bytes()
    lines = []
    for num in sorted(n for n in index if n in SKY_SPEECH):
        off, size, compressed = index[num]
        if off + size > len(dsk):
            raise ValueError(f"sky.dsk: file {num} ({off}+{size}) runs past the end")
        if compressed and size > SKY_HEADER:
            lines.append(Member(d / "sky.dsk", str(num), dsk[off:off + size]))
    return {"cast": lines} if lines else {}


def decode_sky_speech(data: bytes) -> np.ndarray:
    """A Beneath a Steel Sky speech file (22-byte header, then an RNC-packed body of unsigned
    8-bit samples at 11,025 Hz) as int16 at 8 kHz."""
    pcm = rnc1_unpack(data[SKY_HEADER:]) if data[SKY_HEADER:SKY_HEADER + 4] == b"RNC\x01" else data[SKY_HEADER:]
    return to_8k_int16((np.frombuffer(pcm, np.uint8).astype(np.float32) - 128.0) / 128.0, SKY_RATE)


# The clean, original read-speech files of three packages (everything else there is coded,
# radio or modem audio, tones, noise or duplicates; pocketsphinx's TIDIGITS file is LDC-licensed
# and its LibriVox excerpts are left out: LibriSpeech readers are devset speakers).
TINY_FILES = {
    "codec2": ("usr/share/codec2/raw", 8000, ("big_dog.raw", "cross.raw", "forig.raw", "morig.raw",
                                               "hts1.raw", "hts2.raw", "kristoff.raw", "mmt1.raw",
                                               "cq_ref.raw", "g3plx.raw")),
    "pocketsphinx": ("usr/share/pocketsphinx/test/data", 16000,
                     ("cards/001.wav", "cards/002.wav", "cards/003.wav", "cards/004.wav", "cards/005.wav",
                      "goforward.raw", "numbers.raw", "something.raw")),
    "alsa": ("usr/share/sounds/alsa", 48000, tuple(f"{s}.wav" for s in (
        "Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right",
        "Side_Left", "Side_Right"))),
}


def find_tiny(root: Path) -> dict[str, list[Path]]:
    """Package ('codec2', 'pocketsphinx', 'alsa') → its read-speech files (TINY_FILES) present
    under root. One label per package: their speakers are not documented."""
    found = {}
    for pkg, (folder, _, names) in TINY_FILES.items():
        files = [root / folder / n for n in names if (root / folder / n).exists()]
        if files:
            found[pkg] = files
    return found


def decode(rec: Recording) -> np.ndarray:
    """A recording (a file, or an archive member) as mono int16 at 8 kHz."""
    if isinstance(rec, Path) and rec.suffix.upper() == ".ALS":
        return decode_als(rec.read_bytes())
    if isinstance(rec, Member) and rec.archive.name == "sky.dsk":
        return decode_sky_speech(rec.data)
    if isinstance(rec, Path) and rec.suffix == ".raw":          # headerless 16-bit little-endian
        rate = next(r for _, (folder, r, _) in TINY_FILES.items() if folder in rec.as_posix())
        return to_8k_int16(np.fromfile(rec, "<i2").astype(np.float32) / 32768.0, rate)
    return decode_file(io.BytesIO(rec.data) if isinstance(rec, Member) else str(rec))


def app_of(rec: Recording) -> str:
    """The program a recording belongs to: the folder under `usr/share` (or under
    `usr/share/games` or `usr/share/scummvm`) of its file or archive."""
    f = rec.archive if isinstance(rec, Member) else rec
    parts = f.parts[f.parts.index("share") + 1:]
    return parts[1] if parts[0] in ("games", "scummvm") else parts[0]


def find_by_name(root: Path, pattern: str) -> dict[str, list[Path]]:
    """Speaker → the .wav/.flac files anywhere under root whose name matches `pattern` (a regex
    whose group 1 is the speaker), sorted by path; byte-identical copies dropped."""
    rx = re.compile(pattern)
    found = []
    for f in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".wav", ".flac") and p.is_file()):
        m = rx.fullmatch(f.name)
        if m:
            found.append((m.group(1), f))
    return group_unique(found)


# Source name (sources.SOURCES, which holds its packages, licence and hours) → how to find its
# speakers' recordings under the extracted packages, or (folder sources) under a placed folder.
FINDERS: dict[str, Callable[[Path], dict[str, list[Recording]]]] = {
    "kde": find_recordings,
    "fillets": find_fillets,
    "tuxpaint": find_tuxpaint,
    "fotaq": find_fotaq,
    "drascula": lambda root: find_drascula(root, "en"),
    "drascula-es": lambda root: find_drascula(root, "es"),
    "bass": find_bass,
    "tiny": find_tiny,
    "edinburgh56": lambda root: find_by_name(root, r"(p\d{3})_\d{3}\.(?:wav|flac)"),
    "ptdb": lambda root: find_by_name(root, r"mic_([FM]\d{2})_.+\.(?:wav|flac)"),
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
    ap.add_argument("--source", choices=sorted(FINDERS), default="kde",
                    help="; ".join(f"{n}: {SOURCES[n].title}" for n in FINDERS))
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

    source, find = SOURCES[args.source], FINDERS[args.source]
    folder = args.source in FOLDER_SOURCES
    tmp = None
    if args.root:
        root = Path(args.root)
        if not root.is_dir():
            raise SystemExit(f"error: --root {root}: no such folder")
    elif folder:
        raise SystemExit(f"error: --source {args.source} needs --root DIR, a folder holding {source.layout}: "
                         f"it cannot be downloaded here")
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f"{args.source}-voices-"))
        root = download(tmp, source.packages)
    by_lang = find(root)
    if not by_lang:
        raise SystemExit(f"error: no {source.layout if folder else ' / '.join(source.packages) + ' recordings'} "
                         f"under {root if folder else root / 'usr/share'}")
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
        apps = [args.source] if folder else sorted({app_of(f) for f in by_lang[lang]})
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
    origin = f"{source.title}, from {root}" if folder else "Debian's " + ", ".join(source.packages)
    (out / "README.md").write_text(
        f"# {args.source} voices\n\nReal recordings of {origin} ({source.licence}), joined per speaker "
        f"by training/extra_voices.py --source {args.source}.\n")
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.source} voices: {len({r[2] for r in rows})} speakers, {len(rows)} utterances, {total / SR / 3600:.2f} h "
          f"in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
