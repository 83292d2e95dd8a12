"""The architecture of an exported model (bioimage.io packages): a VAE that maps an image to
its reconstruction, both in model units, built from plain keyword arguments.

A consumer of the package (bioimageio.core, deepImageJ through its Python bridge, ...) does
``Reconstructor(**kwargs)`` and loads the package's state dict into it; the package's pre- and
postprocessing map raw intensities to model units and back.
"""

from __future__ import annotations

from torch import Tensor, nn

from .config import LikelihoodConfig, ModelConfig

__all__ = ["Reconstructor"]


class Reconstructor(nn.Module):
    """``forward(x)``: (B, 1, H, W) float32 in model units ([-1, 1] for discrete data), or
    (B, 1, D, H, W) for a 3D model, to the reconstruction of the same shape in the same units:
    the posterior means at every level, the likelihood's mean (deterministic). H and W:
    multiples of 2**levels; D: of the product of the Z strides."""

    def __init__(self, model: dict, likelihood: dict, bit_depth: int | None):
        super().__init__()
        from . import build_vae  # the package's __init__ imports this module's neighbours

        self.vae = build_vae(
            ModelConfig(**model), LikelihoodConfig(**likelihood), bit_depth=bit_depth
        ).eval()

    def forward(self, x: Tensor) -> Tensor:
        return self.vae.reconstruct(x)
