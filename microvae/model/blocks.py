"""Convolutional building blocks: residual blocks, strided down and up sampling, in 2D or 3D.

Every block takes ``dims`` (2: (B, C, H, W); 3: (B, C, D, H, W)): the model's dimension is a
parameter of its blocks, not a second model.

No BatchNorm: microscopy batches are small, so normalisation is GroupNorm or none. The last
convolution of each residual branch starts scaled down (by ``residual_scale``), so that a deep
stack of blocks starts close to the identity, as in VDVAE.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["ResBlock", "Down", "Up", "conv", "make_norm", "make_activation"]

Norm = Literal["group", "none"]
Activation = Literal["silu", "gelu"]


Kernel = int | tuple[int, ...]


def conv(dims: int, in_channels: int, out_channels: int, kernel: Kernel = 3, **kw) -> nn.Module:
    """A ``kernel``-wide convolution in ``dims`` (2 or 3) dimensions, padded to keep the size
    (at stride 1). ``kernel``: one width, or one per axis, e.g. (1, 3, 3) to see one plane."""
    cls = {2: nn.Conv2d, 3: nn.Conv3d}[dims]
    padding = kernel // 2 if isinstance(kernel, int) else tuple(k // 2 for k in kernel)
    return cls(in_channels, out_channels, kernel, padding=padding, **kw)


def make_norm(kind: Norm, channels: int) -> nn.Module:
    """GroupNorm with up to 8 groups (a divisor of ``channels``), or the identity."""
    if kind == "none":
        return nn.Identity()
    groups = max(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def make_activation(kind: Activation) -> nn.Module:
    return nn.SiLU() if kind == "silu" else nn.GELU()


class ResBlock(nn.Module):
    """skip(x) + conv3(act(norm(conv3(act(norm(x)))))): (B, C_in, *S) -> (B, C_out, *S)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        norm: Norm = "group",
        activation: Activation = "silu",
        residual_scale: float = 1.0,
        dims: int = 2,
        kernel: Kernel = 3,
    ):
        super().__init__()
        out_channels = out_channels or in_channels
        self.branch = nn.Sequential(
            make_norm(norm, in_channels),
            make_activation(activation),
            conv(dims, in_channels, out_channels, kernel),
            make_norm(norm, out_channels),
            make_activation(activation),
            conv(dims, out_channels, out_channels, kernel),
        )
        last = self.branch[-1]
        with torch.no_grad():
            last.weight.mul_(residual_scale)
            last.bias.zero_()
        self.skip = (
            nn.Identity()
            if in_channels == out_channels
            else conv(dims, in_channels, out_channels, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.branch(x)


class Down(nn.Module):
    """Strided 3-wide convolution: (B, C_in, *S) -> (B, C_out, *S / stride); ``stride`` per
    axis, e.g. (2, 2), or (1, 2, 2) for a level where Z keeps its size. ``kernel``: the
    widths where the stride is 1 (an axis that halves is always seen 3 wide)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: tuple[int, ...] = (2, 2),
        kernel: Kernel = 3,
    ):
        super().__init__()
        widths = (kernel,) * len(stride) if isinstance(kernel, int) else tuple(kernel)
        widths = tuple(3 if s == 2 else k for s, k in zip(stride, widths))
        self.conv = conv(len(stride), in_channels, out_channels, widths, stride=tuple(stride))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Up(nn.Module):
    """Nearest upsampling by ``scale`` per axis, then a 3-wide conv (no checkerboard):
    (B, C_in, *S) -> (B, C_out, *S * scale); ``kernel`` as the output resolution's."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale: tuple[int, ...] = (2, 2),
        kernel: Kernel = 3,
    ):
        super().__init__()
        self.up = nn.Upsample(scale_factor=tuple(float(s) for s in scale), mode="nearest")
        self.conv = conv(len(scale), in_channels, out_channels, kernel)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.up(x))
