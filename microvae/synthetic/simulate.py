"""Synthetic mitochondria images with their clean ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .camera import Camera, blur, psf_sigmas_um
from .geometry import make_geometry
from .params import SynthParams
from .render import render_segments

__all__ = ["SyntheticImage", "generate", "image_seed"]


@dataclass
class SyntheticImage:
    """One synthetic image and everything known about it.

    Attributes:
        image: the noisy camera image, ``params.dtype``, shape ``params.shape``.
        ground_truth: the noise-free image in the same units and dtype (offset + gain x
            expected photons, blurred by the PSF): what a perfect denoiser returns.
        density: the object before blur and noise (float32, 0-1).
        labels: uint8, 0 background, 1 tubule, 2 punctum (where the object covers a pixel).
        centerline: bool, the tubules' centre lines (the skeleton a perfect method finds).
        phenotype: ``tubular``, ``fragmented`` or ``mixed``.
        axes: ``YX`` or ``ZYX``.
        pixel_size: um per pixel for each axis; ``unit`` is ``"um"``.
        camera: offset, gain and read noise (ADU) used for the noise.
        network: ground-truth graph statistics (junctions, end points, loops, length in um...).
    """

    image: np.ndarray
    ground_truth: np.ndarray
    density: np.ndarray
    labels: np.ndarray
    centerline: np.ndarray
    phenotype: str
    axes: str
    pixel_size: dict[str, float]
    camera: Camera
    params: SynthParams
    network: dict = field(default_factory=dict)
    unit: str = "um"


def image_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The seed of image ``index`` of a set made with ``seed``: independent of the set's size."""
    return np.random.SeedSequence(entropy=seed, spawn_key=(index,))


def generate(
    params: SynthParams | None = None,
    *,
    seed: int | np.random.SeedSequence = 0,
    **overrides,
) -> SyntheticImage:
    """Make one synthetic mitochondria image; the same seed gives the same image.

    Args:
        params: generator parameters; keyword ``overrides`` replace fields of it (or of the
            defaults), e.g. ``generate(shape=(16, 256, 256), phenotype="mixed", seed=3)``.
        seed: integer or SeedSequence.

    Example:
        >>> s = generate(shape=(64, 64), seed=1)
        >>> s.image.dtype, s.image.shape, s.axes
        (dtype('uint16'), (64, 64), 'YX')
    """
    params = SynthParams(**{**(params.model_dump() if params else {}), **overrides})
    rng = np.random.default_rng(seed)
    spacing = ((params.z_step_um,) if params.is_stack else ()) + (params.pixel_size_um,) * 2
    geometry = make_geometry(params, rng)
    rendered = render_segments(
        geometry.segments, params.shape, spacing, supersample=params.supersample
    )
    lateral, axial = psf_sigmas_um(params.wavelength_um, params.numerical_aperture)
    sigma_px = ((axial / params.z_step_um,) if params.is_stack else ()) + (
        lateral / params.pixel_size_um,
    ) * 2
    cells = _cell_mask(geometry.cells, params.shape, spacing)
    haze = blur(cells, tuple(3 * s for s in sigma_px)) * params.background_photons
    photons = blur(rendered.density, sigma_px) * params.peak_photons + haze
    camera = Camera.for_range(
        bit_depth=params.bit_depth,
        dtype=params.dtype,
        peak_photons=params.peak_photons,
        full_scale_use=params.full_scale_use,
        offset_fraction=params.offset_fraction,
        read_noise_electrons=params.read_noise_electrons,
    )
    axes = params.axes
    return SyntheticImage(
        image=camera.expose(photons, rng),
        ground_truth=camera.quantise(camera.expected(photons)),
        density=rendered.density,
        labels=rendered.labels,
        centerline=rendered.centerline,
        phenotype=params.phenotype,
        axes=axes,
        pixel_size=dict(zip(axes, spacing)),
        camera=camera,
        params=params,
        network=geometry.network,
    )


def _cell_mask(cells, shape, spacing) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    coords = np.stack(grids, axis=-1)
    mask = np.zeros(shape, np.float32)
    for centre, semi in cells:
        mask[(((coords - centre) / semi) ** 2).sum(axis=-1) <= 1.0] = 1.0
    return mask
