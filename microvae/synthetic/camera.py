"""Optics and camera: a Gaussian PSF at the diffraction limit, Poisson-Gaussian noise, offset.

Camera model, in ADU (the camera's integer counts):
``image = round(offset + gain * Poisson(photons) + Normal(0, read_noise_adu))`` clipped to the
bit depth's range. Hence ``Var(image | expected) = gain * (expected - offset) + read_noise_adu**2``
(plus 1/12 from rounding): the line that a noise test can check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Camera", "psf_sigmas_um", "blur", "IMMERSION_INDEX"]

IMMERSION_INDEX = 1.515  # immersion oil
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def psf_sigmas_um(wavelength_um: float, numerical_aperture: float) -> tuple[float, float]:
    """Lateral and axial sigma (um) of a Gaussian approximating a widefield PSF.

    Lateral FWHM 0.51 lambda/NA; axial FWHM 0.88 lambda / (n - sqrt(n^2 - NA^2)).
    """
    n = IMMERSION_INDEX
    lateral = 0.51 * wavelength_um / numerical_aperture
    axial = 0.88 * wavelength_um / (n - np.sqrt(n**2 - numerical_aperture**2))
    return lateral * FWHM_TO_SIGMA, axial * FWHM_TO_SIGMA


def blur(image: np.ndarray, sigma_px: tuple[float, ...]) -> np.ndarray:
    """Gaussian blur with one sigma (pixels) per axis; the edges reflect."""
    return ndimage.gaussian_filter(image.astype(np.float32), sigma_px, mode="reflect")


@dataclass(frozen=True)
class Camera:
    """A camera: offset and gain in ADU, read noise in ADU, bit depth and storage dtype."""

    offset: float
    gain: float
    read_noise_adu: float
    bit_depth: int
    dtype: str

    @classmethod
    def for_range(
        cls,
        *,
        bit_depth: int,
        dtype: str,
        peak_photons: float,
        full_scale_use: float,
        offset_fraction: float,
        read_noise_electrons: float,
    ) -> Camera:
        """A camera whose unblurred peak signal reaches ``full_scale_use`` of the range."""
        full = 2**bit_depth - 1
        offset = round(offset_fraction * full)
        gain = (full_scale_use * full - offset) / peak_photons
        return cls(offset, gain, read_noise_electrons * gain, bit_depth, dtype)

    def quantise(self, adu: np.ndarray) -> np.ndarray:
        return np.clip(np.round(adu), 0, 2**self.bit_depth - 1).astype(self.dtype)

    def expected(self, photons: np.ndarray) -> np.ndarray:
        """Noise-free image (ADU, float64) for an expected photon count per pixel."""
        return self.offset + self.gain * photons

    def expose(self, photons: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy image in the camera's dtype for an expected photon count per pixel."""
        counts = rng.poisson(np.maximum(photons, 0.0))
        read = rng.normal(0.0, self.read_noise_adu, photons.shape) if self.read_noise_adu else 0
        return self.quantise(self.offset + self.gain * counts + read)
