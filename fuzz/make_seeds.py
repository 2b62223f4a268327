#!/usr/bin/env python3
"""Writes the small seed corpora of the fuzz harnesses (fuzz/corpus/NAME/), deterministically.

safetensors: two real small models (one Mamba block, one S4D block, F16 weights) cut from the
parity fixtures, plus edge cases; wavstream: a mode byte + WAV streams of each encoding and
layout the reader handles; audioreader: small files in several containers (sox writes the ones
Python cannot). Run from the repository root: python3 fuzz/make_seeds.py
"""
import json
import os
import struct
import subprocess

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(name, data):
    path = os.path.join(ROOT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def read_safetensors(path):
    d = open(path, "rb").read()
    h = struct.unpack("<Q", d[:8])[0]
    header = json.loads(d[8:8 + h])
    data = d[8 + h:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for k, v in header.items():
        b, e = v["data_offsets"]
        tensors[k] = np.frombuffer(data[b:e], dtype="<f4").reshape(v["shape"])
    return meta, tensors


def safetensors_bytes(meta, tensors, dtype="F16"):
    header, body = {"__metadata__": meta}, b""
    for k in sorted(tensors):
        a = tensors[k].astype("<f2" if dtype == "F16" else "<f4")
        header[k] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [len(body), len(body) + a.nbytes]}
        body += a.tobytes()
    j = json.dumps(header, separators=(",", ":")).encode()
    j += b" " * (-len(j) % 8)
    return struct.pack("<Q", len(j)) + j + body


def one_block(fixture):
    meta, t = read_safetensors(fixture)
    cfg = json.loads(meta["config"])
    cfg["num_blocks"] = 1
    keep = {k: v for k, v in t.items() if not k.startswith("io.") and not k.startswith("masker.blocks.1.")}
    return {"config": json.dumps(cfg), "name": "fuzz-seed"}, keep


def safetensors_seeds():
    fx = os.path.join(os.path.dirname(ROOT), "..", "audio-fixtures", "parity")
    for name in ["small_mamba", "small_s4d"]:
        meta, t = one_block(os.path.join(fx, name + ".safetensors"))
        write(f"safetensors/{name}_1block_f16", safetensors_bytes(meta, t))
    write("safetensors/one_f32", safetensors_bytes({"k": "v"}, {"a": np.array([1.0, 2.0], dtype="<f4")}, "F32"))
    write("safetensors/empty_header", struct.pack("<Q", 2) + b"{}")
    bf16 = b'{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}'
    write("safetensors/bf16", struct.pack("<Q", len(bf16)) + bf16 + b"\x80\x3f\x00\x40")


def wav_header(tag, channels, rate, bits, data_size=0xFFFFFFFF, extensible=False, extra=b""):
    align = channels * bits // 8
    if extensible:
        guid = struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * align, align, bits, 22, bits, 0) + guid
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + extra + b"data" + struct.pack("<I", data_size))


def wavstream_seeds():
    rng = np.random.default_rng(1)
    x = (0.5 * np.sin(np.arange(64) * 0.3)).astype(np.float32)
    s16 = (x * 32767).astype("<i2").tobytes()
    write("wavstream/s16_mono", b"\x00" + wav_header(1, 1, 8000, 16) + s16)
    write("wavstream/s16_stereo_len", b"\x41" + wav_header(1, 2, 16000, 16, data_size=len(s16)) + s16)
    write("wavstream/u8", b"\x02" + wav_header(1, 1, 8000, 8) + bytes((x * 127 + 128).astype(np.uint8)))
    write("wavstream/s24_ext", b"\x03" + wav_header(1, 1, 44100, 24, extensible=True)
          + b"".join(struct.pack("<i", int(v * 8388607))[:3] for v in x))
    write("wavstream/s32", b"\x04" + wav_header(1, 1, 48000, 32) + (x * 2147483647).astype("<i4").tobytes())
    write("wavstream/f32_list", b"\x05" + wav_header(3, 1, 8000, 32, extra=b"LIST" + struct.pack("<I", 5) + b"abcde\x00")
          + x.astype("<f4").tobytes())
    write("wavstream/f64_zero_len", b"\x06" + wav_header(3, 2, 22050, 64, data_size=0) + np.repeat(x, 2).astype("<f8").tobytes()[:300])
    write("wavstream/raw_s16", b"\x81" + s16)
    write("wavstream/raw_f32_stereo", b"\x92" + rng.standard_normal(40).astype("<f4").tobytes())
    write("wavstream/truncated_header", b"\x07" + wav_header(1, 1, 8000, 16)[:30])


def audioreader_seeds():
    tmp = os.path.join(ROOT, "..", "seed.tmp.wav")
    x = (0.4 * np.sin(np.arange(200) * 0.2))
    s16 = (x * 32767).astype("<i2").tobytes()
    hdr = (b"RIFF" + struct.pack("<I", 36 + len(s16)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
           + b"data" + struct.pack("<I", len(s16)))
    write("audioreader/wav16", hdr + s16)
    with open(tmp, "wb") as f:
        f.write(hdr + s16)
    for ext, args in [("flac", []), ("aiff", []), ("au", ["-e", "u-law"]), ("caf", []), ("w64", []), ("ogg", [])]:
        out = os.path.join(ROOT, "audioreader", "sox_" + ext)
        subprocess.run(["sox", tmp, *args, "-t", ext, out], check=True)
    os.remove(tmp)


if __name__ == "__main__":
    safetensors_seeds()
    wavstream_seeds()
    audioreader_seeds()
    for d in sorted(os.listdir(ROOT)):
        files = os.listdir(os.path.join(ROOT, d))
        print(d, len(files), "files", sum(os.path.getsize(os.path.join(ROOT, d, f)) for f in files), "bytes")
