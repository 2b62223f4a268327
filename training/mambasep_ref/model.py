"""DPMamba: encoder, dual-path masker (Mamba or S4D mixers per path), decoder.

The forward pass is specified number for number in docs/MODEL.md ("Forward pass").

Glossary: B batch, T samples, Tp padded samples, N encoder filters (model width), L encoder
frames, K chunk length, H chunk hop (K // 2), S number of chunks, Lp padded frames,
C speakers, B' sequences seen by a path layer (B·S intra, B·K inter).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig
from .mamba import BiMamba
from .s4d import BiS4D

__all__ = ["DPMamba", "RMSNorm", "PathLayer", "DualPathBlock", "chunk", "overlap_add",
           "padded_length"]


# MARK: - Chunking (SpeechBrain's _Segmentation and its inverse)


def padded_length(T: int, kernel_size: int, stride: int) -> int:
    """Tp = max(T, kernel_size) rounded up so (Tp - kernel_size) % stride == 0."""
    tp = max(T, kernel_size)
    return tp + (-(tp - kernel_size)) % stride


def chunk(x: Tensor, K: int) -> Tensor:
    """x [B, N, L] → [B, N, K, S]: chunk j is frames [j·H, j·H + K) of [H zeros | x | gap + H zeros].

    gap = K - (H + L % K) % K (a whole extra chunk of padding when that is K, as SpeechBrain).
    """
    H = K // 2
    L = x.shape[-1]
    gap = K - (H + L % K) % K
    xp = F.pad(x, (H, gap + H))                                             # [B, N, Lp]
    S = 2 * (xp.shape[-1] - H) // K
    return xp.unfold(-1, K, H)[:, :, :S].transpose(2, 3)                   # [B, N, K, S]


def overlap_add(x: Tensor, L: int) -> Tensor:
    """x [B, N, K, S] → [B, N, L]: sum chunk j into frames [j·H, j·H+K), keep [H, H+L).

    A plain sum (no division), the inverse of `chunk` up to the overlap count (2 for even K).
    """
    b, n, K, S = x.shape
    H = K // 2
    lp = (S - 1) * H + K
    cols = x.reshape(b, n * K, S)                                           # [B, N·K, S]
    y = F.fold(cols, output_size=(1, lp), kernel_size=(1, K), stride=(1, H))  # [B, N, 1, Lp]
    return y[:, :, 0, H:H + L]                                              # [B, N, L]


# MARK: - Layers


class RMSNorm(nn.Module):
    """x / sqrt(mean(x², last dim) + eps) · weight (no bias)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))                         # .weight [N]

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class PathLayer(nn.Module):
    """y = norm_out(x + mixer(norm_in(x))) on x [B', L', N]."""

    def __init__(self, cfg: ModelConfig, mixer: str):
        super().__init__()
        self.norm_in = RMSNorm(cfg.n_filters, cfg.rms_eps)                  # norm_in.weight [N]
        self.mixer = BiMamba(cfg) if mixer == "mamba" else BiS4D(cfg)      # mixer.*
        self.norm_out = RMSNorm(cfg.n_filters, cfg.rms_eps)                 # norm_out.weight [N]

    def forward(self, x: Tensor) -> Tensor:
        return self.norm_out(x + self.mixer(self.norm_in(x)))


class DualPathBlock(nn.Module):
    """Intra-chunk path on [B·S, K, N], then inter-chunk path on [B·K, S, N]; out = inter + intra."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        n = cfg.n_filters
        self.skip_around_intra = cfg.skip_around_intra
        self.intra = PathLayer(cfg, cfg.intra_mixer)
        self.intra_norm = nn.GroupNorm(1, n, eps=cfg.gn_eps)                # intra_norm.weight/.bias [N]
        self.inter = PathLayer(cfg, cfg.inter_mixer)
        self.inter_norm = nn.GroupNorm(1, n, eps=cfg.gn_eps)                # inter_norm.weight/.bias [N]

    def forward(self, u: Tensor) -> Tensor:
        """u [B, N, K, S] → [B, N, K, S]."""
        b, n, k, s = u.shape
        a = u.permute(0, 3, 2, 1).reshape(b * s, k, n)                      # [B·S, K, N]
        a = self.intra(a).view(b, s, k, n).permute(0, 3, 2, 1)             # [B, N, K, S]
        a = self.intra_norm(a)
        if self.skip_around_intra:
            a = a + u
        e = a.permute(0, 2, 3, 1).reshape(b * k, s, n)                      # [B·K, S, N]
        e = self.inter(e).view(b, k, s, n).permute(0, 3, 1, 2)             # [B, N, K, S]
        e = self.inter_norm(e)
        return e + a


class Masker(nn.Module):
    """Encoded mixture w [B, N, L] → masks [B, C, N, L]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        n, c = cfg.n_filters, cfg.num_speakers
        self.num_speakers, self.chunk_size = c, cfg.chunk_size
        self.norm = nn.GroupNorm(1, n, eps=cfg.gn_eps)                      # norm.weight/.bias [N]
        self.conv_in = nn.Conv1d(n, n, 1, bias=False)                       # conv_in.weight [N, N, 1]
        self.blocks = nn.ModuleList(DualPathBlock(cfg) for _ in range(cfg.num_blocks))
        self.prelu = nn.PReLU(1)                                            # prelu.weight [1]
        self.conv_out = nn.Conv1d(n, c * n, 1, bias=True)                   # conv_out.weight [C·N, N, 1], .bias [C·N]
        self.output = nn.Conv1d(n, n, 1, bias=True)                         # output.weight [N, N, 1], .bias [N]
        self.output_gate = nn.Conv1d(n, n, 1, bias=True)                    # output_gate.weight [N, N, 1], .bias [N]
        self.end_conv = nn.Conv1d(n, n, 1, bias=False)                      # end_conv.weight [N, N, 1]

    def forward(self, w: Tensor, record: dict[str, Tensor] | None = None) -> Tensor:
        b, n, L = w.shape
        c = self.num_speakers
        x = self.conv_in(self.norm(w))                                      # [B, N, L]
        x = chunk(x, self.chunk_size)                                       # [B, N, K, S]
        if record is not None:
            record["io.chunked"] = x
        for i, block in enumerate(self.blocks):
            x = block(x)                                                    # [B, N, K, S]
            if record is not None:
                record[f"io.block{i}"] = x
        x = self.prelu(x)
        k, s = x.shape[2], x.shape[3]
        x = self.conv_out(x.reshape(b, n, k * s))                           # [B, C·N, K·S]
        x = x.view(b * c, n, k, s)                                          # [B·C, N, K, S]
        x = overlap_add(x, L)                                               # [B·C, N, L]
        x = torch.tanh(self.output(x)) * torch.sigmoid(self.output_gate(x))
        x = F.relu(self.end_conv(x))                                        # [B·C, N, L]
        return x.view(b, c, n, L)                                           # [B, C, N, L]


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.conv = nn.Conv1d(1, cfg.n_filters, cfg.kernel_size, cfg.stride,
                              bias=False)                                   # conv.weight [N, 1, kernel]

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x[:, None, :]))                             # [B, N, L]


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.conv = nn.ConvTranspose1d(cfg.n_filters, 1, cfg.kernel_size, cfg.stride,
                                       bias=False)                          # conv.weight [N, 1, kernel]

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)[:, 0]                                           # [B·C, Tp]


# MARK: - Model


class DPMamba(nn.Module):
    """Dual-path Mamba speech separator: mixture [B, T] → estimates [B, C, T].

    Any T ≥ 1 works (short inputs are zero-padded to one encoder frame); inputs must be
    2-D float tensors, else ValueError.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.masker = Masker(cfg)
        self.decoder = Decoder(cfg)

    def _run(self, mix: Tensor, record: dict[str, Tensor] | None) -> Tensor:
        if mix.dim() != 2:
            raise ValueError(f"DPMamba expects a mixture [B, T], got shape {tuple(mix.shape)}")
        if not mix.is_floating_point():
            raise ValueError(f"DPMamba expects a float tensor, got {mix.dtype}")
        b, T = mix.shape
        if T < 1 or b < 1:
            raise ValueError(f"DPMamba needs B ≥ 1 and T ≥ 1, got shape {tuple(mix.shape)}")
        cfg = self.cfg
        tp = padded_length(T, cfg.kernel_size, cfg.stride)
        x = F.pad(mix, (0, tp - T))                                         # [B, Tp]
        w = self.encoder(x)                                                 # [B, N, L]
        masks = self.masker(w, record)                                      # [B, C, N, L]
        c, n, L = masks.shape[1:]
        est = self.decoder((masks * w[:, None]).reshape(b * c, n, L))      # [B·C, Tp]
        est = est.view(b, c, -1)[..., :T]                                   # [B, C, T]
        if record is not None:
            record["io.input"] = mix
            record["io.encoder"] = w
            record["io.masks"] = masks
            record["io.output"] = est
        return est

    def forward(self, mix: Tensor) -> Tensor:
        """mix [B, T] → [B, C, T]."""
        return self._run(mix, None)

    def forward_intermediates(self, mix: Tensor) -> dict[str, Tensor]:
        """The `io.*` tensors of docs/MODEL.md: input, encoder, chunked, block{i}, masks, output."""
        record: dict[str, Tensor] = {}
        self._run(mix, record)
        order = ["io.input", "io.encoder", "io.chunked"] + \
            [f"io.block{i}" for i in range(self.cfg.num_blocks)] + ["io.masks", "io.output"]
        return {k: record[k] for k in order}
