"""mambasep_ref: the PyTorch reference DPMamba speech separator (see docs/MODEL.md)."""

from .config import ModelConfig
from .model import DPMamba

__all__ = ["ModelConfig", "DPMamba"]
