"""Fine-structure metrics against cases whose answer is known independently of the code."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.draw import line
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.morphology import dilation, disk

from microvae.metrics import (
    fidelity,
    fine_structure_metrics,
    frc,
    hf_power_ratio,
    morphology_ratios,
    network_morphology,
    psnr,
    radial_power_spectrum,
    signal_band,
    skeleton_stats,
    ssim,
)
from microvae.metrics.fidelity import NO_RANGE
from microvae.synthetic import generate


def _periodic_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur by its exact transfer function exp(-2 pi^2 sigma^2 f^2) (periodic)."""
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.fftfreq(image.shape[1])[None, :]
    otf = np.exp(-2 * math.pi**2 * sigma**2 * (fy**2 + fx**2))
    return np.fft.ifft2(np.fft.fft2(image) * otf).real


def _white(shape=(256, 256), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


# -- PSNR / SSIM ---------------------------------------------------------------------------------


def test_psnr_ssim_match_scikit_image_with_the_stated_range():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 4096, (64, 80)).astype(np.uint16)
    test = np.clip(ref + rng.normal(0, 50, ref.shape), 0, 4095).astype(np.uint16)
    r, t = ref.astype(float), test.astype(float)
    assert psnr(ref, test, data_range=4095) == pytest.approx(
        peak_signal_noise_ratio(r, t, data_range=4095), abs=1e-9
    )
    assert ssim(ref, test, data_range=4095) == pytest.approx(
        structural_similarity(r, t, data_range=4095), abs=1e-9
    )
    # the default range is the reference's max - min, and it is reported
    m = fine_structure_metrics(ref, test)
    assert m["data_range"] == float(ref.max()) - float(ref.min())


def test_an_image_against_itself_is_perfect():
    s = generate(shape=(128, 128), seed=3)
    m = fine_structure_metrics(s.image, s.image.copy(), pixel_size=0.065)
    assert m["psnr_db"] == math.inf and m["ssim"] == pytest.approx(1.0)
    assert m["frc_resolution_px"] == 2.0  # agrees up to Nyquist
    assert m["frc_resolution_um"] == pytest.approx(0.13)
    assert m["hf_ratio"] == pytest.approx(1.0)
    assert m["blur_reference"] == m["blur_test"]
    for k in ("total_length_px", "n_branches", "n_junctions", "n_end_points", "n_networks"):
        assert m[f"ratio_{k}"] == pytest.approx(1.0), k


def test_a_constant_reference_has_no_range_and_says_so():
    flat = np.full((32, 32), 100, np.uint8)
    test = flat + np.random.default_rng(0).integers(0, 3, flat.shape).astype(np.uint8)
    m = fidelity(flat, test)
    # no range to scale the error by: NaN, not a PSNR computed with a made-up range of 1
    assert math.isnan(m["data_range"]) and math.isnan(m["psnr_db"]) and math.isnan(m["ssim"])
    assert m["mse"] == pytest.approx(np.mean((test.astype(float) - 100) ** 2))
    assert m.notes == [NO_RANGE]
    assert math.isnan(psnr(flat, test)) and fine_structure_metrics(flat, test).notes[0] == NO_RANGE
    # a range given by the caller (e.g. 8-bit data) is a range: defined again
    assert psnr(flat, test, data_range=255) == pytest.approx(
        peak_signal_noise_ratio(flat.astype(float), test.astype(float), data_range=255)
    )


@pytest.mark.parametrize("side", [3, 5, 6])
def test_ssim_of_a_plane_smaller_than_its_window_uses_the_window_that_fits(side):
    rng = np.random.default_rng(side)
    ref = rng.normal(100, 20, (side, side + 4))
    test = ref + rng.normal(0, 5, ref.shape)
    m = fidelity(ref, test)
    win = side - (1 - side % 2)  # the largest odd side that fits
    rng_ref = float(ref.max() - ref.min())
    assert m["ssim"] == pytest.approx(
        structural_similarity(ref, test, data_range=rng_ref, win_size=win), abs=1e-12
    )
    assert m.notes == [f"SSIM with a {win}x{win} window: the plane is {ref.shape}"]
    # under 3 pixels no window fits: NaN and why
    m = fidelity(ref[:2], test[:2])
    assert math.isnan(m["ssim"]) and math.isfinite(m["psnr_db"])
    assert m.notes == [f"the plane {(2, side + 4)} is under 3 pixels wide: no SSIM window fits"]


def test_metrics_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        psnr(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError, match="one shape"):
        frc(np.zeros((8, 8)), np.zeros((9, 8)))


# -- FRC -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma,snr", [(2.0, 100.0), (3.0, 100.0), (2.0, 10.0)])
def test_frc_resolution_of_a_blurred_noisy_copy_is_as_predicted(sigma, snr):
    # reference s: white signal of variance S; test = G*s + white noise of variance N.
    # Per ring FRC = G sqrt(S) / sqrt(G^2 S + N); it is 1/7 where G^2 = N / (48 S), i.e. at
    # f = sqrt(ln(48 S / N) / (4 pi^2 sigma^2)).
    s = _white((512, 512), seed=0)
    noise = _white((512, 512), seed=1) / math.sqrt(snr)
    test = _periodic_blur(s, sigma) + noise
    f_pred = math.sqrt(math.log(48 * snr) / (4 * math.pi**2 * sigma**2))
    result = frc(s, test, pixel_size=0.1, window=False)
    assert result.crossed
    assert 1 / result.resolution_px == pytest.approx(f_pred, rel=0.05)
    assert result.resolution == pytest.approx(result.resolution_px * 0.1)
    # the Tukey window (the default) changes little
    assert frc(s, test).resolution_px == pytest.approx(result.resolution_px, rel=0.06)


def test_frc_falls_to_zero_for_unrelated_images():
    result = frc(_white(seed=0), _white(seed=1))
    assert np.nanmean(np.abs(result.curve[5:])) < 0.05
    assert result.resolution_px > 50  # crosses at the first rings


# -- high-frequency power ratio --------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_hf_ratio_of_a_gaussian_blur_is_the_mean_squared_transfer_in_the_band(sigma):
    ref = _white((256, 256))
    band = (0.1, 0.2)
    got = hf_power_ratio(ref, _periodic_blur(ref, sigma), band=band)
    # flat spectrum: the ratio is the average of G(f)^2 over the FFT coefficients in the band
    fy = np.fft.fftfreq(256)[:, None]
    fx = np.fft.fftfreq(256)[None, :]
    f = np.sqrt(fy**2 + fx**2)
    inside = (f >= band[0]) & (f <= band[1])
    predicted = np.mean(np.exp(-4 * math.pi**2 * sigma**2 * f[inside] ** 2))
    assert got.ratio == pytest.approx(predicted, rel=0.05)
    assert got.band == band and not got.auto


def test_signal_band_ends_where_signal_meets_ten_times_the_noise_floor():
    # signal power S0 G^2 (sigma 2 px) over white noise N: S0 G^2 + N = 10 N at
    # G^2 = 9 N / S0
    s0_over_n, sigma = 1e4, 2.0
    s = _periodic_blur(_white((512, 512), seed=0), sigma)
    s *= math.sqrt(s0_over_n) / 1.0
    noisy = s + _white((512, 512), seed=1)
    _, power = radial_power_spectrum(noisy, window=False)
    f_pred = math.sqrt(math.log(s0_over_n / 9) / (4 * math.pi**2 * sigma**2))
    low, high = signal_band(noisy, window=False)
    assert low < 0.01 and high == pytest.approx(f_pred, abs=0.012)
    # pure noise has no signal band, and the ratio is then undefined
    assert signal_band(_white()) is None
    assert math.isnan(hf_power_ratio(_white(), _white(seed=2)).ratio)


def test_default_band_does_not_reward_reproducing_noise():
    # reference = noisy image; a perfect denoiser returns the clean signal
    sigma = 2.0
    clean = _periodic_blur(_white((256, 256), seed=0), sigma) * 100
    noisy = clean + _white((256, 256), seed=1)
    auto = hf_power_ratio(noisy, clean)
    assert auto.auto and auto.band[1] < 0.3
    assert auto.ratio > 0.9  # in the signal band the clean image holds the reference's power
    # a band reaching into the noise would call the denoised image blurry
    assert hf_power_ratio(noisy, clean, band=(0.35, 0.5)).ratio < 0.1
    # and a blurred reconstruction scores below the sharp one
    assert hf_power_ratio(noisy, _periodic_blur(clean, 1.5)).ratio < 0.5 * auto.ratio


# -- morphology ------------------------------------------------------------------------------------


def _drawn_network() -> tuple[np.ndarray, dict]:
    """A straight line, a plus-shaped cross and an H, 3 px thick: known length and graph."""
    centre = np.zeros((120, 200), bool)
    segments = [
        ((20, 10), (20, 70)),  # line: 60 px
        ((70, 25), (70, 55)),  # cross: 2 x 30 px
        ((55, 40), (85, 40)),
        ((20, 100), (60, 100)),  # H: 3 x 40 px
        ((20, 140), (60, 140)),
        ((40, 100), (40, 140)),
    ]
    for (r0, c0), (r1, c1) in segments:
        rr, cc = line(r0, c0, r1, c1)
        centre[rr, cc] = True
    image = dilation(centre, disk(1)).astype(np.uint16) * 1000 + 100
    known = dict(
        total_length_px=60 + 60 + 120,
        n_junctions=3,
        n_end_points=2 + 4 + 4,
        n_branches=1 + 4 + 5,
        n_individuals=3,
        n_networks=2,
    )
    return image, known


def test_skeleton_of_a_drawn_network_has_its_known_length_and_graph():
    image, known = _drawn_network()
    m = network_morphology(image, pixel_size=0.05)
    for k in ("n_junctions", "n_end_points", "n_branches", "n_individuals", "n_networks"):
        assert getattr(m, k) == known[k], k
    # thresholding the 3 px wide lines shortens each end by up to about a pixel
    assert m.total_length_px == pytest.approx(known["total_length_px"], rel=0.06)
    assert m.total_length == pytest.approx(m.total_length_px * 0.05)
    assert m.mean_branch_length_px == pytest.approx(m.total_length_px / 10)
    assert m.branches_per_network == pytest.approx((4 + 5) / 2)


def test_skeleton_length_counts_diagonal_steps_once():
    sk = np.zeros((20, 20), bool)
    rr, cc = line(2, 2, 12, 12)  # 10 diagonal steps
    sk[rr, cc] = True
    stats = skeleton_stats(sk)
    assert stats["total_length_px"] == pytest.approx(10 * math.sqrt(2))
    assert stats["n_end_points"] == 2 and stats["n_junctions"] == 0
    ring = np.zeros((20, 20), bool)
    ring[5, 5:15] = ring[14, 5:15] = ring[5:15, 5] = ring[5:15, 14] = True
    stats = skeleton_stats(ring)
    assert stats["total_length_px"] == pytest.approx(36)
    assert (stats["n_branches"], stats["n_end_points"], stats["n_junctions"]) == (1, 0, 0)


def test_morphology_ratios_use_the_reference_threshold():
    image, _ = _drawn_network()
    # a dimmer copy keeps its shape at its own Otsu threshold but loses it at the reference's
    dim = (image.astype(np.float64) * 0.05).astype(np.float32)
    ref, test, ratios = morphology_ratios(image.astype(np.float32), dim)
    assert test.threshold == ref.threshold
    assert ratios["total_length_px"] < 0.1
    # cutting the H's bridge in the middle leaves two T shapes: the same 3 junctions, 2 more
    # end points, one more branch, individual and network
    broken = image.copy()
    broken[35:46, 118:123] = 100
    _, _, ratios = morphology_ratios(image, broken)
    assert ratios["n_junctions"] == 1.0
    assert ratios["n_end_points"] == pytest.approx(12 / 10)
    assert ratios["n_branches"] == pytest.approx(11 / 10)
    assert ratios["n_individuals"] == pytest.approx(4 / 3)
    assert ratios["n_networks"] == pytest.approx(3 / 2)
