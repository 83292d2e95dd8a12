"""Synthetic mitochondria: tubular networks, fragmented puncta and mixtures, with ground truth.

``generate(...)`` makes one image (2D or ZYX, uint16 12-bit or uint8) with its noise-free ground
truth, object density, labels, centre lines and network statistics.
"""

from .camera import Camera, psf_sigmas_um
from .params import PHENOTYPES, SynthParams
from .sets import MANIFEST, write_synthetic_set
from .simulate import SyntheticImage, generate, image_seed

__all__ = [
    "MANIFEST",
    "PHENOTYPES",
    "Camera",
    "SynthParams",
    "SyntheticImage",
    "generate",
    "image_seed",
    "psf_sigmas_um",
    "write_synthetic_set",
]
