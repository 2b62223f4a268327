"""Model configuration: the hyperparameters stored as JSON in a weights file's metadata.

The JSON keys, their order and their meaning are fixed by docs/MODEL.md ("Config").
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["ModelConfig", "PRESETS", "MIXERS", "S4D_INITS", "parse_overrides"]

MIXERS = ("mamba", "s4d")
S4D_INITS = ("lin", "legs")

# Preset name -> the fields that differ from the dataclass defaults (which are the XS model).
PRESETS: dict[str, dict[str, Any]] = {
    "xs": {"n_filters": 128, "num_blocks": 8},
    "s": {"n_filters": 256, "num_blocks": 8},
    "m": {"n_filters": 256, "num_blocks": 16},
}


def parse_overrides(items: list[str], flag: str = "--set") -> dict[str, Any]:
    """KEY=VALUE command-line items → {key: value}; values parse as JSON, else stay strings.

    ValueError naming `flag` for an item without "=".
    """
    out: dict[str, Any] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise ValueError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass
class ModelConfig:
    """Every hyperparameter of a DPMamba model; field names are the config JSON keys.

    Construction validates the values and raises ValueError naming the bad field.
    Use `ModelConfig.preset("xs")` for the published sizes; `dt_rank` must be given explicitly
    when constructing directly (presets derive it as ceil(n_filters / 16)).
    """

    architecture: str = "dpmamba"
    version: int = 1
    sample_rate: int = 8000
    num_speakers: int = 2
    n_filters: int = 128
    kernel_size: int = 16
    stride: int = 8
    chunk_size: int = 250
    hop_size: int = 125
    num_blocks: int = 8
    intra_mixer: str = "mamba"
    inter_mixer: str = "mamba"
    skip_around_intra: bool = True
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int = 8
    s4d_state: int = 64
    s4d_init: str = "lin"
    rms_eps: float = 1e-5
    gn_eps: float = 1e-8

    # MARK: - Validation

    def __post_init__(self) -> None:
        if self.architecture != "dpmamba":
            raise ValueError(f"config.architecture must be 'dpmamba', got {self.architecture!r}")
        if self.version != 1 or not _is_int(self.version):
            raise ValueError(f"config.version must be 1, got {self.version!r}")
        positive = ["sample_rate", "num_speakers", "n_filters", "kernel_size", "stride",
                    "chunk_size", "num_blocks", "d_state", "d_conv", "expand", "dt_rank",
                    "s4d_state"]
        for name in positive + ["hop_size"]:
            v = getattr(self, name)
            if not _is_int(v):
                raise ValueError(f"config.{name} must be an integer, got {v!r}")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"config.{name} must be >= 1, got {getattr(self, name)}")
        if self.stride > self.kernel_size:
            raise ValueError(f"config.stride ({self.stride}) must not exceed "
                             f"kernel_size ({self.kernel_size})")
        if self.chunk_size < 2 or self.chunk_size % 2 != 0:
            # With an odd K, chunks at j·(K // 2) leave the last frames uncovered.
            raise ValueError(f"config.chunk_size must be even and >= 2, got {self.chunk_size}")
        if self.hop_size != self.chunk_size // 2:
            raise ValueError(f"config.hop_size must be chunk_size // 2 = {self.chunk_size // 2}, "
                             f"got {self.hop_size}")
        for name in ("intra_mixer", "inter_mixer"):
            if getattr(self, name) not in MIXERS:
                raise ValueError(f"config.{name} must be one of {MIXERS}, got {getattr(self, name)!r}")
        if not isinstance(self.skip_around_intra, bool):
            raise ValueError(f"config.skip_around_intra must be a boolean, "
                             f"got {self.skip_around_intra!r}")
        if self.s4d_state % 2 != 0:
            raise ValueError(f"config.s4d_state must be even (complex conjugate pairs), "
                             f"got {self.s4d_state}")
        if self.s4d_init not in S4D_INITS:
            raise ValueError(f"config.s4d_init must be one of {S4D_INITS}, got {self.s4d_init!r}")
        for name in ("rms_eps", "gn_eps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"config.{name} must be a positive finite number, got {v!r}")
            setattr(self, name, float(v))

    # MARK: - Derived sizes

    @property
    def d_inner(self) -> int:
        """Mamba inner width E = expand · N."""
        return self.expand * self.n_filters

    @property
    def uses_mamba(self) -> bool:
        return "mamba" in (self.intra_mixer, self.inter_mixer)

    # MARK: - Presets and JSON

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "ModelConfig":
        """The published size `name` ("xs", "s", "m") with `overrides` applied.

        `dt_rank` follows ceil(n_filters / 16) and `hop_size` follows chunk_size // 2 unless
        overridden themselves. Unknown preset or field names raise ValueError.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        values: dict[str, Any] = dict(PRESETS[name])
        values.update(overrides)
        n = values.get("n_filters", cls.n_filters)
        values.setdefault("dt_rank", math.ceil(n / 16))
        values.setdefault("hop_size", values.get("chunk_size", cls.chunk_size) // 2)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The config as a compact JSON object with the keys in docs/MODEL.md order."""
        return json.dumps(self.to_dict(), separators=(", ", ": "))

    @classmethod
    def from_dict(cls, d: Any) -> "ModelConfig":
        """Strict: every key required, unknown keys rejected (as the Swift loader does)."""
        if not isinstance(d, dict):
            raise ValueError(f"config must be a JSON object, got {type(d).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
        missing = [k for k in known if k not in d]
        if missing:
            raise ValueError(f"missing config key(s): {', '.join(missing)}")
        return cls(**d)

    @classmethod
    def from_json(cls, s: str) -> "ModelConfig":
        """Parse and validate a config JSON string (strict, see `from_dict`)."""
        try:
            d = json.loads(s)
        except (TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"config is not valid JSON: {e}") from None
        return cls.from_dict(d)
