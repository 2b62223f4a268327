"""Packing: several corpora, engine caps, real engines never held out; the KDE voices builder."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import struct

import extra_voices
from data import read_packed_manifest
import sources

HERE = Path(__file__).resolve().parents[1]   # training/


def write_corpus(root: Path, engine: str, speakers: list[str], per: int, prefix: str, seed: int) -> Path:
    """A corpus folder: `per` tone utterances (1–2 s, 16 kHz) for each speaker."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    (root / "audio").mkdir(parents=True)
    rows = []
    for si, spk in enumerate(speakers):
        for k in range(per):
            n = int(rng.uniform(1.0, 2.0) * 16000)
            x = 0.3 * np.sin(2 * np.pi * (120 + 30 * si) * np.arange(n) / 16000)
            uid = f"{prefix}{si}_{k}"
            sf.write(root / "audio" / f"{uid}.wav", x, 16000, subtype="PCM_16")
            rows.append([uid, engine, spk, spk, f"{n / 16000:.3f}", ""])
    with open(root / "manifest.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["id", "engine", "speaker", "voice", "seconds", "text"])
        w.writerows(rows)
    return root


def run_prepare(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HERE / "prepare_data.py"), "--devset", "", "--out",
                           str(tmp / "out"), "--cache", str(tmp / "cache"), "--chunks", "2", *args],
                          capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("opusenc") is None, reason="needs opusenc")
def test_two_corpora_caps_and_real_speakers_kept(tmp_path):
    a = write_corpus(tmp_path / "a", "kokoro", [f"kokoro:v{i}" for i in range(12)], 3, "k", 1)
    b = write_corpus(tmp_path / "b", "kde", ["kde:fr", "kde:de", "kde:it"], 3, "d", 2)
    r = run_prepare(tmp_path, "--corpus", str(a), "--corpus", str(b), "--max-hours", "kokoro=0.005",
                    "--heldout-frac", "0.2")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "out/data/manifest.tsv").exists()
    rows = read_packed_manifest(tmp_path / "out/data")
    import gzip
    old = tmp_path / "old"                                  # an older packing's plain manifest.tsv
    old.mkdir()
    (old / "manifest.tsv").write_bytes(gzip.decompress((tmp_path / "out/data/manifest.tsv.gz").read_bytes()))
    assert read_packed_manifest(old) == rows
    kde = [x for x in rows if x["engine"] == "kde"]
    kok = [x for x in rows if x["engine"] == "kokoro"]
    assert len(kde) == 9 and all(x["split"] == "train" for x in kde)   # real voices: all kept, none held out
    assert 0 < len(kok) < 36                                            # capped at 18 s of 36 utterances
    assert sum(float(x["seconds"]) for x in kok) <= 0.005 * 3600 + 0.5
    info = json.loads((tmp_path / "out/data/info.json").read_text())
    assert info["corpus"] == [str(a), str(b)] and info["max_hours"] == {"kokoro": 0.005}
    te = info["train_engines"]
    assert te["kde"]["speakers"] == 3 and te["kde"]["utterances"] == 9 and te["kde"]["real"]
    assert abs(te["kde"]["hours"] - sum(float(x["seconds"]) for x in kde) / 3600) < 1e-3
    assert not te["kokoro"]["real"] and te["kokoro"]["utterances"] == sum(x["split"] == "train" for x in kok)
    assert "; human 0.00 h of 3 speaker labels" in r.stderr


@pytest.mark.skipif(shutil.which("opusenc") is None, reason="needs opusenc")
def test_duplicate_ids_and_bad_caps_are_errors(tmp_path):
    a = write_corpus(tmp_path / "a", "kokoro", ["kokoro:v0", "kokoro:v1"], 1, "x", 1)
    b = write_corpus(tmp_path / "b", "kde", ["kde:fr", "kde:de"], 1, "x", 2)
    r = run_prepare(tmp_path, "--corpus", str(a), "--corpus", str(b))
    assert r.returncode != 0 and "ids also in an earlier corpus" in r.stderr
    r = run_prepare(tmp_path, "--corpus", str(a), "--max-hours", "kokoro")
    assert r.returncode != 0 and "--max-hours" in r.stderr


def test_join_utterances_uses_every_clip_once_within_the_limit():
    rng = np.random.default_rng(0)
    clips = [np.full(int(rng.integers(800, 9000)), i + 1, np.int16) for i in range(40)]
    out = extra_voices.join_utterances(clips, np.random.default_rng(1), max_samples=24000)
    assert all(len(o) <= 24000 for o in out)
    used = np.concatenate(out)
    for i, c in enumerate(clips):
        assert (used == i + 1).sum() == len(c)       # each clip exactly once, whole
    long = extra_voices.join_utterances([np.ones(50000, np.int16)], np.random.default_rng(1), 24000)
    assert [len(o) for o in long] == [24000]         # a too-long clip is cut


def test_find_recordings_merges_variants_and_drops_duplicates(tmp_path):
    import soundfile as sf

    share = tmp_path / "usr/share"
    x = (0.2 * np.sin(np.arange(4000) / 5)).astype(np.float32)
    for rel in ("klettres/fr/alpha/a.ogg", "klettres/fr/syllab/ba.ogg", "ktuberling/sounds/fr/eye.ogg",
                "ktuberling/sounds/sr/nose.ogg", "ktuberling/sounds/sr@latin/nose.ogg"):
        (share / rel).parent.mkdir(parents=True, exist_ok=True)
        y = x * (1 + len(rel) % 3) if "sr" not in rel else x    # the two Serbian files are identical
        sf.write(share / rel, y, 8000, format="OGG", subtype="VORBIS")
    (share / "ktuberling/sounds/sr@latin/nose.ogg").write_bytes((share / "ktuberling/sounds/sr/nose.ogg").read_bytes())
    found = extra_voices.find_recordings(tmp_path)
    assert sorted(found) == ["fr", "sr"]
    assert len(found["fr"]) == 3 and len(found["sr"]) == 1
    assert sorted({extra_voices.app_of(f) for f in found["fr"]}) == ["klettres", "ktuberling"]


def test_find_fillets_keeps_the_two_fish_per_language(tmp_path):
    snd = tmp_path / "usr/share/games/fillets-ng/sound"
    for rel in ("city/cs/vit-m-hello.ogg", "city/cs/vit-v-bye.ogg", "city/nl/vit-m-hello.ogg",
                "city/cs/vit-hs-parrot.ogg", "city/cs/vit-m.ogg", "city/cs/vit-m-notes.txt",
                "bar/cs/bar-v-1.ogg"):
        (snd / rel).parent.mkdir(parents=True, exist_ok=True)
        (snd / rel).write_bytes(b"x")
    found = extra_voices.find_fillets(tmp_path)
    assert {k: sorted(f.name for f in v) for k, v in found.items()} == {
        "cs-m": ["vit-m-hello.ogg"], "cs-v": ["bar-v-1.ogg", "vit-v-bye.ogg"], "nl-m": ["vit-m-hello.ogg"]}
    assert {"fillets", "tuxpaint"} <= sources.REAL_SOURCES
    assert {extra_voices.app_of(f) for v in found.values() for f in v} == {"fillets-ng"}


def test_find_tuxpaint_groups_descriptions_by_language(tmp_path):
    st = tmp_path / "usr/share/tuxpaint/stamps"
    for rel, data in (("animals/frog_desc_fr.ogg", b"a"), ("animals/frog_desc_ru.ogg", b"b"),
                      ("food/pear_desc_fr.ogg", b"c"), ("food/pear-2_desc_fr.ogg", b"c"),  # duplicate
                      ("food/pear_desc.ogg", b"d"), ("food/pear.ogg", b"e"), ("food/pear_desc_fr.txt", b"f")):
        (st / rel).parent.mkdir(parents=True, exist_ok=True)
        (st / rel).write_bytes(data)
    found = extra_voices.find_tuxpaint(tmp_path)
    assert {k: [f.name for f in v] for k, v in found.items()} == {
        "fr": ["frog_desc_fr.ogg", "pear-2_desc_fr.ogg"], "ru": ["frog_desc_ru.ogg"]}
    assert extra_voices.app_of(found["ru"][0]) == "tuxpaint"


def queen_file(entries: list[tuple[str, bytes]]) -> bytes:
    """A ScummVM Queen resource file (`queen.1c` layout) holding these entries."""
    import struct

    head = b"QTBL" + b"CEM10\0\0\0" + bytes([1]) + struct.pack(">H", len(entries))
    off = len(head) + 21 * len(entries)
    table, blobs = b"", b""
    for name, data in entries:
        table += name.encode().ljust(12, b"\0") + b"\1" + struct.pack(">II", off + len(blobs), len(data))
        blobs += data
    return head + table + blobs


def dog(key: int) -> bytes:
    """The start of a dialogue file: its AmBk header, then the conversation key at byte 22."""
    import struct

    return b"AmBk\0\x0f\0\x01\x80\0\x09\xbe" + b"Datas   " + struct.pack(">HH", 2, key) + b"\0" * 8


def test_find_fotaq_labels_lines_by_conversation_character(tmp_path):
    entries = [("SPARKY1.DOG", dog(51)), ("SPARKY2.DOG", dog(52)), ("ZOMBIE1.DOG", dog(61)),
               ("330001P1.SB", b"s1"), ("340002P2.SB", b"s2"), ("3300B3J1.SB", b"j1"),   # key 33: no .DOG
               ("510001P1.SB", b"a"), ("520006P3.SB", b"b"), ("52XXXXP1.SB", b"c"),
               ("610001P1.SB", b"z"), ("610001J2.SB", b"j2"), ("JOE01121.SB", b"j3"),
               ("C103F242.SB", b"cut"), ("106SSSSS.SB", b"?"), ("ROOM.PCX", b"img")]
    res = tmp_path / extra_voices.FOTAQ_DIR / "queen.1c"
    res.parent.mkdir(parents=True)
    res.write_bytes(queen_file(entries))
    found = extra_voices.find_fotaq(tmp_path)
    assert {k: sorted(f.name for f in v) for k, v in found.items()} == {
        "JOE": ["3300B3J1.SB", "610001J2.SB", "JOE01121.SB"],
        "SPARKY": ["510001P1.SB", "520006P3.SB", "52XXXXP1.SB"], "ZOMBIE": ["610001P1.SB"]}
    assert found["ZOMBIE"][0].data == b"z"
    assert sorted(p.name for p in res.parent.iterdir()) == ["queen.1c"]     # nothing extracted
    import io

    import soundfile as sf
    wav = io.BytesIO()
    sf.write(wav, np.full(1600, 0.25), 16000, format="WAV", subtype="PCM_16")
    clip = extra_voices.decode(extra_voices.Member(res, "X.SB", wav.getvalue()))
    assert clip.dtype == np.int16 and len(clip) == 800 and abs(int(clip[400]) - 8192) <= 2
    assert extra_voices.app_of(found["JOE"][0]) == "flight-of-the-amazon-queen"
    assert "fotaq" in sources.REAL_SOURCES
    assert "Amazon Queen" in sources.describe(["fotaq:JOE"])[1]
    assert extra_voices.find_fotaq(tmp_path / "elsewhere") == {}


def test_queen_table_rejects_other_files():
    with pytest.raises(ValueError, match="QTBL"):
        extra_voices.read_queen_table(b"RIFF" + b"\0" * 40)
    good = queen_file([("A.SB", b"abc")])
    assert extra_voices.read_queen_table(good) == {"A.SB": b"abc"}
    with pytest.raises(ValueError, match="A.SB"):
        extra_voices.read_queen_table(good[:-1])                 # the entry runs past the end
    with pytest.raises(ValueError, match="past the end"):
        extra_voices.read_queen_table(good[:20])                 # the table itself is cut


def als(x: np.ndarray) -> bytes:
    """A Drascula .ALS file: 32 bytes, unsigned 8-bit samples (x in ±1 at 11,025 Hz), 32 bytes."""
    body = np.clip(np.round(x * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    return b"\x80" * 32 + body + b"\x80" * 32


def test_drascula_speakers_from_file_names_and_raw_8bit_decoding(tmp_path):
    sp = extra_voices.drascula_speaker
    assert [sp(n) for n in ["12.ALS", "VB3.ALS", "vb3.als", "I1.ALS", "BJ2.ALS", "L9.ALS", "T4.ALS",
                            "E1.ALS", "B2.ALS", "P7.ALS"]] == [
        "hacker", "vonbraun", "vonbraun", "igor", "bj", "werewolf", "bartender", "musician", "drunk", "pianist"]
    assert [sp(n) for n in ["D1.ALS", "D40.ALS", "D57.ALS", "D67.ALS", "D68.ALS", "D81.ALS", "D82.ALS"]] == [
        "drascula", "drascula", "hacker", "hacker", "blind", "blind", "bartender"]
    assert [sp(n) for n in ["S3.ALS", "F1.ALS", "D56.ALS", "D83.ALS", "13.ALD", "SV.ALG"]] == [None] * 6
    t = np.arange(11025 * 2) / 11025                    # 2 s of a 200 Hz tone with a pause
    tone = 0.5 * np.sin(2 * np.pi * 200 * t) * (t < 1.5)
    for lang in ("en", "es"):
        d = tmp_path / extra_voices.DRASCULA_DIR / lang
        d.mkdir(parents=True)
        for name in ["1.ALS", "2.ALS", "VB1.ALS", "D2.ALS", "D70.ALS", "S1.ALS", "13.ALD"]:
            (d / name).write_bytes(als(tone))
    found = extra_voices.find_drascula(tmp_path, "es")
    assert {k: sorted(f.name for f in v) for k, v in found.items()} == {
        "hacker": ["1.ALS", "2.ALS"], "vonbraun": ["VB1.ALS"], "drascula": ["D2.ALS"], "blind": ["D70.ALS"]}
    clip = extra_voices.decode(found["hacker"][0])
    assert clip.dtype == np.int16 and abs(len(clip) - 16000) <= 1     # header and trailer dropped
    y = clip[2000:10000] / 32768.0
    assert abs(np.sqrt((y ** 2).mean()) - 0.5 / np.sqrt(2)) < 0.01    # level kept (8-bit: ±1/256)
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 8000 / len(y) - 200) <= 1            # 11,025 Hz read as such
    out = tmp_path / "corpus"
    assert extra_voices.main(["--source", "drascula-es", "--root", str(tmp_path), "--out", str(out)]) == 0
    import csv
    rows = list(csv.DictReader(open(out / "manifest.tsv"), delimiter="\t"))
    assert {r["speaker"] for r in rows} == {"drascula-es:hacker", "drascula-es:vonbraun",
                                            "drascula-es:drascula", "drascula-es:blind"}
    assert {r["engine"] for r in rows} == {"drascula-es"} and {r["voice"] for r in rows} == {"drascula"}
    assert {"drascula", "drascula-es"} <= sources.REAL_SOURCES
    src = sources.SOURCES["drascula"]
    assert src.packages == ("drascula",) and "Drascula licence" in src.licence and src.hours > 0
    assert sources.SOURCES["drascula-es"].packages == ("drascula-spanish",)


# MARK: - Beneath a Steel Sky (sky.dnr index, sky.dsk files, RNC method-1 packing)


class RncWriter:
    """A minimal RNC method-1 packer for tests: bits first-lowest into little-endian 16-bit words,
    literal bytes right after the word being filled, every table 16 symbols of 4-bit codes."""

    def __init__(self):
        self.out, self.word, self.nbits = bytearray(), -1, 16

    def bits(self, value: int, k: int):
        for i in range(k):
            if self.nbits == 16:
                self.word, self.nbits = len(self.out), 0
                self.out += b"\0\0"
            self.out[self.word + self.nbits // 8] |= ((value >> i) & 1) << (self.nbits % 8)
            self.nbits += 1

    def code(self, symbol: int):                   # a 4-bit canonical code, its top bit first
        for i in (3, 2, 1, 0):
            self.bits((symbol >> i) & 1, 1)

    def value(self, v: int):                       # symbol s = bit length, then s − 1 low bits
        s = v.bit_length()
        self.code(s)
        if s >= 2:
            self.bits(v - (1 << (s - 1)), s - 1)


def rnc_pack(data: bytes, blocks: int = 2) -> bytes:
    """data as an RNC method-1 stream: greedy matches (distance ≤ 64, overlapping allowed)."""
    tokens, i = [], 0                              # (literal bytes, match distance, match length)
    lit = bytearray()
    while i < len(data):
        best = (0, 0)
        for d in range(1, min(64, i) + 1):
            n = 0
            while i + n < len(data) and n < 200 and data[i + n - d] == data[i + n]:
                n += 1
            best = max(best, (n, d))
        if best[0] >= 3:
            tokens.append((bytes(lit), best[1], best[0]))
            lit, i = bytearray(), i + best[0]
        else:
            lit.append(data[i])
            i += 1
    tokens.append((bytes(lit), 0, 0))              # the last step has no match
    w = RncWriter()
    w.bits(0, 2)
    per = -(-len(tokens) // blocks)
    groups = [tokens[k:k + per] for k in range(0, len(tokens), per)]
    for g in range(len(groups) - 1):               # a block's last step has no match: move it on
        lit, dist, n = groups[g][-1]
        groups[g][-1] = (lit, 0, 0)
        groups[g + 1].insert(0, (b"", dist, n))
    for g, group in enumerate(groups):
        for _ in range(3):
            w.bits(16, 5)
            for _ in range(16):
                w.bits(4, 4)
        w.bits(len(group), 16)
        for t, (lit, dist, n) in enumerate(group):
            w.value(len(lit))
            w.out += lit
            if t < len(group) - 1:
                w.value(dist - 1)
                w.value(n - 2)
    body = bytes(w.out)
    crc = extra_voices._crc16
    return b"RNC\x01" + struct.pack(">IIHH", len(data), len(body), crc(data), crc(body)) + bytes([0, len(groups)]) + body


def test_crc16_is_crc16_arc():
    assert extra_voices._crc16(b"123456789") == 0xBB3D


def test_rnc1_unpack_round_trip_and_damage():
    rng = np.random.default_rng(3)
    tone = (128 + 60 * np.sin(np.arange(3000) * 0.07)).astype(np.uint8).tobytes()
    data = tone + bytes([128]) * 700 + rng.integers(0, 256, 500, dtype=np.uint8).tobytes() + tone[:900]
    packed = rnc_pack(data, blocks=1)
    assert len(packed) < len(data) - 600                 # matches were used (the 128s overlap)
    assert extra_voices.rnc1_unpack(packed) == data
    assert extra_voices.rnc1_unpack(rnc_pack(data, blocks=3)) == data
    with pytest.raises(ValueError, match="packed CRC"):
        extra_voices.rnc1_unpack(packed[:40] + bytes([packed[40] ^ 1]) + packed[41:])
    with pytest.raises(ValueError, match="RNC method-1"):
        extra_voices.rnc1_unpack(b"RNC\x02" + packed[4:])


def sky_files(root: Path, files: list[tuple[int, bytes, bool, bool]]) -> Path:
    """sky.dnr + sky.dsk under root's BASS_DIR: (file number, stored bytes, compressed, offset in
    16-byte units) per file."""
    d = root / extra_voices.BASS_DIR
    d.mkdir(parents=True)
    dsk, dnr = bytearray(b"\0" * 5), struct.pack("<I", len(files))
    for num, data, compressed, shifted in files:
        if shifted:
            dsk += bytes(-len(dsk) % 16)
            off = (len(dsk) >> 4) | 1 << 23
        else:
            off = len(dsk)
        flags = len(data) | (0 if compressed else 1 << 23)
        dnr += struct.pack("<H", num) + off.to_bytes(3, "little") + flags.to_bytes(3, "little")
        dsk += data
    (d / "sky.dnr").write_bytes(dnr)
    (d / "sky.dsk").write_bytes(bytes(dsk))
    return d


def sky_speech(samples: np.ndarray) -> bytes:
    """A speech file as the game stores it: 22-byte header (flag 0x81 = packed, size at byte 12),
    then the unsigned 8-bit samples RNC-packed."""
    pcm = samples.tobytes()
    head = struct.pack("<11H", 0x81, 0, 0, 0, 0, 0, (len(pcm) + 22) & 0xFFFF, 0, 0, 0, 0)
    return head + rnc_pack(pcm)


def test_find_bass_reads_speech_lines_from_sky_dsk(tmp_path):
    t = np.arange(int(11025 * 1.2)) / 11025                 # 1.2 s: 1 s of a 300 Hz tone, then silence
    tone = np.round(128 + 90 * np.sin(2 * np.pi * 300 * t) * (t < 1.0)).astype(np.uint8)
    sky_files(tmp_path, [(60203, b"sound driver", False, False),        # not speech
                         (50011, sky_speech(tone[::-1].copy()), True, True),
                         (50007, sky_speech(tone), True, False),
                         (50020, b"\x80" * 400, False, True),           # stored uncompressed: not a line
                         (59500, sky_speech(tone), True, True)])        # the intro's voices: skipped
    found = extra_voices.find_bass(tmp_path)
    assert list(found) == ["cast"] and [m.name for m in found["cast"]] == ["50007", "50011"]
    assert extra_voices.app_of(found["cast"][0]) == "beneath-a-steel-sky"
    clip = extra_voices.decode(found["cast"][0])
    assert clip.dtype == np.int16 and abs(len(clip) - 9600) <= 1    # 1.2 s at 8 kHz, header dropped
    y = clip[800:7200] / 32768.0
    assert abs(np.sqrt((y ** 2).mean()) - 90 / 128 / np.sqrt(2)) < 0.01
    assert abs(np.argmax(np.abs(np.fft.rfft(y))) * 8000 / len(y) - 300) <= 1.5   # 11,025 Hz read as such
    assert np.abs(extra_voices.decode(found["cast"][1])[:1400]).max() < 100      # the reversed line starts silent
    out = tmp_path / "corpus"
    assert extra_voices.main(["--source", "bass", "--root", str(tmp_path), "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "manifest.tsv"), delimiter="\t"))
    assert {r["speaker"] for r in rows} == {"bass:cast"} and {r["engine"] for r in rows} == {"bass"}
    assert "bass" in sources.REAL_SOURCES
    assert "Steel Sky" in sources.describe(["bass:cast"])[1]
    assert extra_voices.find_bass(tmp_path / "elsewhere") == {}


def test_sky_index_rejects_a_cut_table(tmp_path):
    d = sky_files(tmp_path, [(50007, b"x" * 30, True, False)])
    assert extra_voices.read_sky_index((d / "sky.dnr").read_bytes()) == {50007: (5, 30, True)}
    with pytest.raises(ValueError, match="past the end"):
        extra_voices.read_sky_index((d / "sky.dnr").read_bytes()[:-1])


def test_tiny_read_speech_sets_one_label_per_package(tmp_path):
    import soundfile as sf

    c2 = tmp_path / "usr/share/codec2/raw"
    c2.mkdir(parents=True)
    tone = (0.3 * np.sin(2 * np.pi * 200 * np.arange(8000) / 8000) * 32767).astype("<i2")
    for name in ("hts1.raw", "forig.raw", "f2400.raw", "ve9qrp.raw"):     # coded and radio files: skipped
        tone.tofile(c2 / name)
    ps = tmp_path / "usr/share/pocketsphinx/test/data"
    (ps / "tidigits").mkdir(parents=True)
    np.repeat(tone, 2).tofile(ps / "goforward.raw")                      # 16 kHz
    np.repeat(tone, 2).tofile(ps / "tidigits/dhd.2934z.raw")             # LDC: skipped
    alsa = tmp_path / "usr/share/sounds/alsa"
    alsa.mkdir(parents=True)
    for name in ("Front_Left.wav", "Noise.wav"):
        sf.write(alsa / name, np.repeat(tone, 6) / 32768, 48000, subtype="PCM_16")
    found = extra_voices.find_tiny(tmp_path)
    assert {k: sorted(f.name for f in v) for k, v in found.items()} == {
        "codec2": ["forig.raw", "hts1.raw"], "pocketsphinx": ["goforward.raw"], "alsa": ["Front_Left.wav"]}
    for files in found.values():                       # each at its own rate: 1 s at 8 kHz, 200 Hz
        clip = extra_voices.decode(files[0])
        assert abs(len(clip) - 8000) <= 1
        assert abs(np.argmax(np.abs(np.fft.rfft(clip[1000:7000]))) * 8000 / 6000 - 200) <= 1.5
    assert "tiny" in sources.REAL_SOURCES


def test_folder_sources_pack_a_placed_folder_by_the_speaker_in_each_file_name(tmp_path, capsys):
    """Edinburgh 56 (pNNN_MMM.wav) and PTDB-TUG (mic_F01_*.wav) at any depth, at their own
    rates, one label per speaker; other files and copies are left out; without --root, or with
    a folder that holds none of them, a clear error."""
    import soundfile as sf

    t = np.arange(16000 * 2) / 16000
    root = tmp_path / "ms-snsd"
    for rel, f0 in (("clean_speech/p234_001.wav", 150), ("clean_speech/p234_002.wav", 160),
                    ("deep/er/p300_017.wav", 220), ("clean_speech/noise_001.wav", 300),
                    ("ptdb/FEMALE/mic_F01_sa1.wav", 210), ("ptdb/MALE/mic_M03_si453.wav", 110),
                    ("ptdb/MALE/lar_M03_si453.wav", 110)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, 0.3 * np.sin(2 * np.pi * f0 * t), 16000, subtype="PCM_16")
    shutil.copy(root / "clean_speech/p234_001.wav", root / "deep/p234_999.wav")     # a copy
    found = extra_voices.FINDERS["edinburgh56"](root)
    assert {k: [f.name for f in v] for k, v in found.items()} == {
        "p234": ["p234_001.wav", "p234_002.wav"], "p300": ["p300_017.wav"]}
    assert {k: [f.name for f in v] for k, v in extra_voices.FINDERS["ptdb"](root).items()} == {
        "F01": ["mic_F01_sa1.wav"], "M03": ["mic_M03_si453.wav"]}
    out = tmp_path / "corpus"
    assert extra_voices.main(["--source", "edinburgh56", "--root", str(root), "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "manifest.tsv"), delimiter="\t"))
    assert {r["speaker"] for r in rows} == {"edinburgh56:p234", "edinburgh56:p300"}
    assert {r["engine"] for r in rows} == {"edinburgh56"} and {r["voice"] for r in rows} == {"edinburgh56"}
    y, sr = sf.read(out / "audio" / f"{rows[0]['id']}.flac")
    assert sr == 8000 and abs(len(y) / sr - float(rows[0]["seconds"])) < 1e-3
    assert "CC BY 4.0" in (out / "README.md").read_text()
    assert "edinburgh56" in sources.REAL_SOURCES
    with pytest.raises(SystemExit, match="needs --root DIR, a folder holding pNNN_MMM.wav"):
        extra_voices.main(["--source", "edinburgh56", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="no such folder"):
        extra_voices.main(["--source", "ptdb", "--root", str(tmp_path / "none"), "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="no mic_F01_"):
        extra_voices.main(["--source", "ptdb", "--root", str(root / "clean_speech"), "--out", str(tmp_path / "x")])
