"""Weights files: .safetensors with the config JSON in `__metadata__["config"]`."""

from __future__ import annotations

import json
import math
import os
import struct
from typing import Mapping

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from .config import ModelConfig
from .model import DPMamba

__all__ = ["save_model", "load_model", "load_weights", "load_state", "load_checkpoint",
           "read_metadata", "save_tensors", "scale_output", "WeightsError"]


class WeightsError(ValueError):
    """A weights file that cannot be read as a DPMamba model (the message says why)."""


def save_tensors(tensors: Mapping[str, Tensor], path: str | os.PathLike,
                 metadata: Mapping[str, str]) -> None:
    """Write tensors (contiguous, on CPU, dtype kept) and string metadata to `path`.

    The file is written next to `path` under a temporary name and renamed into place, so an
    interrupted write never leaves a truncated file at `path`; it gets the usual permissions
    (0666 less the umask; safetensors alone would create it 0600).
    """
    bad = [k for k, v in metadata.items() if not isinstance(v, str)]
    if bad:
        raise ValueError(f"metadata values must be strings: {', '.join(bad)}")
    data = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    path = os.fspath(path)
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        save_file(data, tmp, metadata=dict(metadata))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_model(model: DPMamba, path: str | os.PathLike,
               extra_metadata: Mapping[str, str] | None = None,
               dtype: torch.dtype = torch.float32) -> None:
    """Write the model's state dict (F32 by default) with metadata {"config", "format": "pt", …}.

    `extra_metadata` may add e.g. "name", "trained_on", "license"; it may not replace "config".
    `dtype` float16/bfloat16 halves the file (readers widen to F32).
    """
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"save_model: dtype must be float32, float16 or bfloat16, got {dtype}")
    meta = {"config": model.cfg.to_json(), "format": "pt"}
    for k, v in (extra_metadata or {}).items():
        if k == "config":
            raise ValueError("extra_metadata may not override 'config'")
        meta[k] = v
    state = {k: v.to(dtype) for k, v in model.state_dict().items()}
    save_tensors(state, path, meta)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The `__metadata__` of a safetensors file ({} when absent); WeightsError if unreadable."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise WeightsError(f"{path}: too short to be a safetensors file")
            (n,) = struct.unpack("<Q", head)
            size = os.fstat(f.fileno()).st_size
            if n > size - 8 or n > 100_000_000:
                raise WeightsError(f"{path}: header length {n} exceeds the file size {size}")
            header = json.loads(f.read(n))
    except OSError as e:
        raise WeightsError(f"{path}: cannot read: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path}: header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: header is not a JSON object")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise WeightsError(f"{path}: __metadata__ is not an object")
    return meta


def load_state(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, Tensor], dict[str, str]]:
    """(config, all tensors widened to float32, metadata) of a safetensors file."""
    path = os.fspath(path)
    meta = read_metadata(path)
    if "config" not in meta:
        raise WeightsError(f"{path}: no 'config' in __metadata__")
    try:
        cfg = ModelConfig.from_json(meta["config"])
    except ValueError as e:
        raise WeightsError(f"{path}: bad config: {e}") from None
    tensors: dict[str, Tensor] = {}
    try:
        with safe_open(path, framework="pt") as f:
            for k in f.keys():
                t = f.get_tensor(k)
                if t.dtype not in (torch.float32, torch.float16, torch.bfloat16):
                    raise WeightsError(f"{path}: tensor {k} has dtype {t.dtype}; "
                                       f"expected F32, F16 or BF16")
                tensors[k] = t.float()
    except WeightsError:
        raise
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise WeightsError(f"{path}: cannot read tensors: {e}") from None
    return cfg, tensors, meta


def load_model(path: str | os.PathLike) -> DPMamba:
    """Build the model described by the file's config and load its weights strictly.

    Every state-dict key must be present with its exact shape and no other tensor may be in
    the file (fixture `io.*` tensors are ignored); errors name the offending tensor.
    """
    return _load_model(path)[0]


def load_weights(path: str | os.PathLike) -> tuple[DPMamba, dict[str, str]]:
    """A model and its metadata from an exported `.safetensors` file (`load_model`, read once),
    or from a training checkpoint (`load_checkpoint`; metadata `{}`): whatever a run starts from."""
    if os.fspath(path).endswith(".safetensors"):
        return _load_model(path)
    return load_checkpoint(path), {}


def _load_model(path: str | os.PathLike) -> tuple[DPMamba, dict[str, str]]:
    cfg, tensors, meta = load_state(path)
    model = DPMamba(cfg)
    expected = model.state_dict()
    weights = {k: v for k, v in tensors.items() if not k.startswith("io.")}
    missing = [k for k in expected if k not in weights]
    unknown = [k for k in weights if k not in expected]
    if missing:
        raise WeightsError(f"{os.fspath(path)}: missing tensor(s): {', '.join(missing[:5])}"
                           + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
    if unknown:
        raise WeightsError(f"{os.fspath(path)}: unknown tensor(s): {', '.join(unknown[:5])}"
                           + (f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""))
    for k, v in expected.items():
        if tuple(weights[k].shape) != tuple(v.shape):
            raise WeightsError(f"{os.fspath(path)}: tensor {k} has shape "
                               f"{tuple(weights[k].shape)}, expected {tuple(v.shape)}")
    model.load_state_dict(weights, strict=True)
    model.eval()
    return model, meta


# MARK: - Training checkpoints and output level


def load_checkpoint(path: str | os.PathLike) -> DPMamba:
    """A training checkpoint {"model": state_dict, "config": json, ...} → model (strict, float32).

    Prefixes "module." (DDP) and "_orig_mod." (torch.compile) are stripped; float16 weights
    (`last16.pt`) are widened. A checkpoint is a pickle that also holds RNG states, so it is
    loaded with `weights_only=False`: load only files you trust (your own training runs).
    """
    path = os.fspath(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise WeightsError(f"{path}: cannot load checkpoint: {e}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise WeightsError(f"{path}: a checkpoint must be a dict with keys 'model' and 'config'")
    config = ckpt["config"]
    try:
        cfg = ModelConfig.from_dict(config) if isinstance(config, dict) else ModelConfig.from_json(config)
    except ValueError as e:
        raise WeightsError(f"{path}: {e}") from None
    state = {}
    for k, v in ckpt["model"].items():
        for prefix in ("module.", "_orig_mod."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        state[k] = v.float()
    model = DPMamba(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{path}: checkpoint does not match its config: {e}") from None
    return model.eval()


def scale_output(model: DPMamba, gain: float) -> None:
    """Multiply `decoder.conv.weight` by `gain`, a positive power of two, in place.

    Every output sample then scales by exactly `gain` (and `scale_output(model, 1 / gain)` undoes
    it exactly); SI-SNR is unchanged. Models trained with SI-SNR put out an arbitrary level, so
    exported files record the gain they carry as metadata `output_gain`. ValueError otherwise.
    """
    if not (gain > 0 and math.isfinite(gain) and math.frexp(gain)[0] == 0.5):
        raise ValueError(f"output gain must be a positive power of two, got {gain}")
    with torch.no_grad():
        model.decoder.conv.weight.mul_(gain)
