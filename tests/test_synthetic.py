"""The synthetic generator keeps its promises: widths, noise, phenotypes, stacks, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import ndimage
from skimage.measure import label as connected

from microvae.synthetic import Camera, SynthParams, generate, image_seed, psf_sigmas_um
from microvae.synthetic.camera import blur
from microvae.synthetic.geometry import Segment
from microvae.synthetic.render import render_segments

PX = 0.065


def _straight_tube(diameter_um: float, shape=(64, 96)) -> np.ndarray:
    y = shape[0] / 2 * PX
    pts = np.stack([np.full(400, y), np.linspace(0.2, (shape[1] - 1) * PX - 0.2, 400)], axis=1)
    return render_segments(
        [Segment(pts, diameter_um, 1.0, 1)], shape, (PX, PX), supersample=4
    ).density


@pytest.mark.parametrize("diameter_um", [0.15, 0.25, 0.35])
def test_tube_cross_section_is_a_projected_cylinder(diameter_um):
    density = _straight_tube(diameter_um)
    column = density[:, 48]
    r_px = diameter_um / 2 / PX
    # the integral across a projected solid cylinder normalised to 1 on its axis is pi*r/2
    assert column.sum() == pytest.approx(np.pi * r_px / 2, rel=0.05)
    assert column.max() == pytest.approx(1.0, abs=0.12)
    assert (column > 0).sum() <= 2 * r_px + 2  # nothing outside the tube


def _fwhm(profile: np.ndarray, step: float) -> float:
    half = profile.max() / 2
    above = np.flatnonzero(profile >= half)
    lo, hi = above[0], above[-1]
    # linear interpolation at both flanks
    left = lo - (profile[lo] - half) / (profile[lo] - profile[lo - 1])
    right = hi + (profile[hi] - half) / (profile[hi] - profile[hi + 1])
    return (right - left) * step


@pytest.mark.parametrize("diameter_um", [0.15, 0.3])
def test_blurred_tubule_width_matches_independent_convolution(diameter_um):
    lateral_sigma_um, _ = psf_sigmas_um(0.52, 1.4)
    image = blur(_straight_tube(diameter_um), (lateral_sigma_um / PX,) * 2)
    measured = _fwhm(image[:, 48].astype(float), PX)
    # independent: the analytic chord profile on a fine 1D grid, convolved with the Gaussian
    step = 0.001
    x = np.arange(-2, 2, step)
    r = diameter_um / 2
    chord = np.sqrt(np.clip(1 - (x / r) ** 2, 0, None))
    gauss = np.exp(-0.5 * (x / lateral_sigma_um) ** 2)
    expected = _fwhm(np.convolve(chord, gauss, mode="same"), step)
    assert measured == pytest.approx(expected, rel=0.08)
    # near the diffraction limit: within a factor 1.6 of the PSF's own FWHM (0.19 um)
    assert 0.19 <= measured <= 1.6 * 0.19 * max(1, diameter_um / 0.19)


def test_generated_tubule_widths_lie_in_the_configured_range():
    s = generate(shape=(256, 256), seed=5)
    lo, hi = (d / PX for d in s.params.tubule_diameter_um)
    width = (s.labels == 1).sum() / s.centerline.sum()  # footprint area / centre-line length
    assert 0.7 * lo < width < 1.1 * hi


def test_camera_noise_follows_poisson_gaussian_model():
    cam = Camera.for_range(
        bit_depth=12,
        dtype="uint16",
        peak_photons=100,
        full_scale_use=0.8,
        offset_fraction=0.025,
        read_noise_electrons=1.6,
    )
    photons = np.repeat(np.linspace(0, 90, 10), 20000).reshape(10, 20000)
    noisy = cam.expose(photons, np.random.default_rng(0)).astype(float)
    expected = cam.expected(photons[:, 0])
    var = noisy.var(axis=1)
    slope, intercept = np.polyfit(expected - cam.offset, var, 1)
    assert slope == pytest.approx(cam.gain, rel=0.05)
    assert intercept == pytest.approx(cam.read_noise_adu**2 + 1 / 12, rel=0.15)
    np.testing.assert_allclose(noisy.mean(axis=1), expected, atol=4 * np.sqrt(var.max() / 20000))


def test_generated_image_noise_statistics():
    s = generate(shape=(512, 512), seed=2)
    gt, im, cam = s.ground_truth.astype(float), s.image.astype(float), s.camera
    # background outside the cells: offset plus read noise only
    outside = gt == cam.offset
    assert outside.sum() > 1000
    assert im[outside].mean() == pytest.approx(cam.offset, abs=1.0)
    assert im[outside].std() == pytest.approx(cam.read_noise_adu, rel=0.1)
    # signal: the variance grows with the signal as gain * (signal - offset) + read^2
    resid = im - gt
    edges = np.linspace(cam.offset + 50, np.quantile(gt, 0.999), 9)
    centres, variances = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        sel = (gt >= a) & (gt < b)
        assert sel.sum() > 200
        centres.append(gt[sel].mean() - cam.offset)
        variances.append(resid[sel].var())
    slope, _ = np.polyfit(centres, variances, 1)  # the intercept is checked on the background
    assert slope == pytest.approx(cam.gain, rel=0.12)
    assert abs(resid[gt > cam.offset].mean()) < 1.0  # unbiased


def test_values_fit_the_bit_depth():
    s16 = generate(shape=(128, 128), seed=0)
    s8 = generate(shape=(128, 128), dtype="uint8", seed=0)
    assert s16.image.dtype == np.uint16 and s16.image.max() <= 4095
    assert s8.image.dtype == np.uint8 and s8.params.bit_depth == 8
    for s in (s16, s8):
        assert s.ground_truth.dtype == s.image.dtype
        assert s.ground_truth.min() >= s.camera.offset
        assert s.image.max() > 0.3 * (2**s.params.bit_depth - 1)  # uses the range


def test_phenotype_labels():
    tub = generate(shape=(256, 256), phenotype="tubular", seed=1)
    frag = generate(shape=(256, 256), phenotype="fragmented", seed=1)
    mix = generate(shape=(256, 256), phenotype="mixed", seed=1)
    counts = {
        name: np.bincount(s.labels.ravel(), minlength=3)
        for name, s in (("tub", tub), ("frag", frag), ("mix", mix))
    }
    assert counts["tub"][1] > 0 and counts["tub"][2] == 0
    assert counts["frag"][2] > 0 and counts["frag"][1] == 0
    assert min(counts["mix"][1:]) > 0.2 * counts["mix"][1:].sum()
    assert (tub.phenotype, frag.phenotype, mix.phenotype) == ("tubular", "fragmented", "mixed")
    # puncta are small separate objects; tubules form long connected networks
    frag_sizes = np.bincount(connected(frag.labels == 2).ravel())[1:]
    tub_sizes = np.bincount(connected(tub.labels == 1).ravel())[1:]
    assert np.median(frag_sizes) < 100 < tub_sizes.max()
    assert frag.network["n_puncta"] >= 20


def test_networks_have_branches_loops_and_the_stated_length():
    s = generate(shape=(512, 512), seed=4)
    net = s.network
    assert net["n_junctions"] > 5 and net["n_endpoints"] > 5 and net["n_loops"] > 0
    # skeleton length: 1 per orthogonal and sqrt(2) per diagonal pair of neighbouring pixels
    c = s.centerline
    ortho = (c[1:, :] & c[:-1, :]).sum() + (c[:, 1:] & c[:, :-1]).sum()
    diag = (c[1:, 1:] & c[:-1, :-1]).sum() + (c[1:, :-1] & c[:-1, 1:]).sum()
    raster_um = (ortho + np.sqrt(2) * diag) * PX
    assert raster_um == pytest.approx(net["length_um"], rel=0.15)
    # the skeleton of the noise-free structure shows the junctions (3+ neighbours)
    nbrs = ndimage.convolve(s.centerline.astype(int), np.ones((3, 3), int), mode="constant")
    assert ((nbrs - 1 >= 3) & s.centerline).sum() >= net["n_junctions"] // 2


def test_zyx_stack():
    s = generate(shape=(12, 96, 96), seed=3)
    assert s.axes == "ZYX" and s.image.shape == (12, 96, 96)
    assert s.pixel_size == pytest.approx({"Z": 0.2, "Y": PX, "X": PX})
    planes = s.ground_truth.astype(float)
    assert planes.std(axis=(1, 2)).min() > 0  # every plane has structure or haze

    # a 3D object: distant planes differ more than adjacent ones
    def corr(a, b):
        return np.corrcoef(planes[a].ravel(), planes[b].ravel())[0, 1]

    assert corr(5, 6) > corr(0, 11)


def test_reproducible_by_seed():
    a, b = generate(shape=(64, 64), seed=7), generate(shape=(64, 64), seed=7)
    for field in ("image", "ground_truth", "labels", "density"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    c = generate(shape=(64, 64), seed=8)
    assert not np.array_equal(a.image, c.image)
    d = generate(shape=(64, 64), seed=image_seed(7, 1))
    e = generate(shape=(64, 64), seed=image_seed(7, 2))
    assert not np.array_equal(d.image, e.image)


@pytest.mark.parametrize(
    "bad",
    [
        {"shape": (4, 4)},
        {"shape": (1, 2, 3, 4)},
        {"phenotype": "blobby"},
        {"dtype": "float32"},
        {"tubule_diameter_um": (0.3, 0.1)},
        {"numerical_aperture": 2.0},
        {"colour": "red"},
    ],
)
def test_bad_parameters_name_the_field(bad):
    with pytest.raises(ValidationError) as info:
        SynthParams(**bad)
    assert next(iter(bad)) in str(info.value)
