"""Convolutional building blocks: residual blocks, stride-2 down and up sampling.

No BatchNorm: microscopy batches are small, so normalisation is GroupNorm or none. The last
convolution of each residual branch starts scaled down (by ``residual_scale``), so that a deep
stack of blocks starts close to the identity, as in VDVAE.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["ResBlock", "Down", "Up", "make_norm", "make_activation"]

Norm = Literal["group", "none"]
Activation = Literal["silu", "gelu"]


def make_norm(kind: Norm, channels: int) -> nn.Module:
    """GroupNorm with up to 8 groups (a divisor of ``channels``), or the identity."""
    if kind == "none":
        return nn.Identity()
    groups = max(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def make_activation(kind: Activation) -> nn.Module:
    return nn.SiLU() if kind == "silu" else nn.GELU()


class ResBlock(nn.Module):
    """skip(x) + conv3x3(act(norm(conv3x3(act(norm(x)))))): (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        norm: Norm = "group",
        activation: Activation = "silu",
        residual_scale: float = 1.0,
    ):
        super().__init__()
        out_channels = out_channels or in_channels
        self.branch = nn.Sequential(
            make_norm(norm, in_channels),
            make_activation(activation),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            make_norm(norm, out_channels),
            make_activation(activation),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        last = self.branch[-1]
        with torch.no_grad():
            last.weight.mul_(residual_scale)
            last.bias.zero_()
        self.skip = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.branch(x)


class Down(nn.Module):
    """Stride-2 3x3 convolution: (B, C_in, H, W) -> (B, C_out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Up(nn.Module):
    """Nearest x2 then 3x3 conv (no checkerboard): (B, C_in, H, W) -> (B, C_out, 2H, 2W)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.up(x))
