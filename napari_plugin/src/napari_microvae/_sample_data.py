"""Sample data: synthetic mitochondria with their ground truth (File > Open Sample)."""

from __future__ import annotations

from microvae.synthetic import generate

__all__ = ["synthetic_2d", "synthetic_stack"]


def _layers(s, name: str) -> list[tuple]:
    scale = tuple(s.pixel_size[a] for a in s.axes)
    meta = {"scale": scale, "units": ("um",) * len(scale)}
    return [
        (s.ground_truth, {**meta, "name": f"{name} ground truth", "visible": False}, "image"),
        (s.image, {**meta, "name": name}, "image"),
    ]


def synthetic_2d() -> list[tuple]:
    """A 512 x 512 12-bit image of tubular and fragmented mitochondria (65 nm pixels)."""
    return _layers(generate(shape=(512, 512), phenotype="mixed", seed=1), "synthetic mitochondria")


def synthetic_stack() -> list[tuple]:
    """A ZYX stack (16 x 256 x 256, 0.2 um steps) of tubular mitochondria."""
    s = generate(shape=(16, 256, 256), phenotype="tubular", seed=2)
    return _layers(s, "synthetic stack")
