"""WAV reading/writing (soundfile) and resampling (scipy's polyphase resampler)."""

from __future__ import annotations

import math
import os

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

__all__ = ["read_audio", "write_wav", "resample", "to_mono"]


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """(samples float32 [T] mono or [T, channels], sample rate); ValueError if unreadable."""
    try:
        data, rate = sf.read(os.fspath(path), dtype="float32", always_2d=False)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise ValueError(f"{os.fspath(path)}: cannot read audio: {e}") from None
    return data, int(rate)


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average the channels of [T, channels] audio; [T] passes through."""
    return x if x.ndim == 1 else x.mean(axis=1, dtype=np.float32)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample along axis 0 from rate_in to rate_out (identity when equal); float32 out."""
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} and {rate_out}")
    if rate_in == rate_out:
        return x.astype(np.float32, copy=False)
    g = math.gcd(rate_in, rate_out)
    return resample_poly(x, rate_out // g, rate_in // g, axis=0).astype(np.float32)


def write_wav(path: str | os.PathLike, x: np.ndarray, rate: int, subtype: str = "PCM_16") -> None:
    """Write [T] or [T, channels] audio; values are clipped to [-1, 1] for integer formats."""
    if subtype.startswith("PCM"):
        x = np.clip(x, -1.0, 1.0)
    sf.write(os.fspath(path), x, rate, subtype=subtype)
