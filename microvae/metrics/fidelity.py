"""Pixel fidelity and sharpness: PSNR, SSIM and scikit-image's blur effect.

Every function takes plain 2D arrays (any real dtype, in the image's own intensity units) and
states the data range it used: PSNR and SSIM depend on it, and "the reference's max - min" is
the convention here unless a range is passed (e.g. 4095 for 12-bit data).
"""

from __future__ import annotations

import numpy as np
from skimage.measure import blur_effect

from ..batch.stacks import image_metrics

__all__ = ["psnr", "ssim", "blur", "data_range_of", "fidelity"]


def data_range_of(reference: np.ndarray) -> float:
    """The default data range: ``reference.max() - reference.min()`` (1.0 for a flat image)."""
    return float(reference.max()) - float(reference.min()) or 1.0


def _check_pair(reference: np.ndarray, test: np.ndarray) -> None:
    if reference.ndim != 2 or reference.shape != test.shape:
        raise ValueError(
            f"reference and test must be 2D arrays of one shape, got {reference.shape} and "
            f"{test.shape}"
        )


def fidelity(
    reference: np.ndarray, test: np.ndarray, *, data_range: float | None = None
) -> dict[str, float]:
    """``data_range``, ``mse`` (intensity units squared), ``psnr_db`` and ``ssim`` (7x7
    window, scikit-image's) of ``test`` against ``reference``, both (H, W)."""
    _check_pair(reference, test)
    return image_metrics(reference, test, data_range=data_range or data_range_of(reference))


def psnr(reference: np.ndarray, test: np.ndarray, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB: 10 log10(data_range**2 / MSE); inf when identical.

    Example:
        >>> a = np.zeros((8, 8)); b = a.copy(); b[0, 0] = 1
        >>> round(psnr(a, b, data_range=1.0), 2)  # MSE = 1/64
        18.06
    """
    return fidelity(reference, test, data_range=data_range)["psnr_db"]


def ssim(reference: np.ndarray, test: np.ndarray, *, data_range: float | None = None) -> float:
    """Mean structural similarity (scikit-image, 7x7 uniform window), in [-1, 1]."""
    return fidelity(reference, test, data_range=data_range)["ssim"]


def blur(image: np.ndarray) -> float:
    """scikit-image's ``blur_effect`` (Crete et al. 2007): 0 for a sharp image, 1 for a
    completely blurred one; compare it between images of the same content."""
    if image.ndim != 2:
        raise ValueError(f"blur expects a 2D image, got shape {image.shape}")
    return float(blur_effect(image.astype(np.float64)))
