"""The error to the noise-free signal, estimated by binomial thinning, against the known truth
of synthetic images (camera and photon-count data)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from microvae.metrics import (
    SPLIT_KEYS,
    estimate_camera,
    split_noise_error,
    split_noise_values,
    thin,
)
from microvae.synthetic import generate


class _Blur:
    """A denoiser of known behaviour that remembers what it returned."""

    def __init__(self, sigma: float):
        self.sigma, self.out = sigma, None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.out = gaussian_filter(x.astype(np.float64), self.sigma)
        return self.out


def test_thinning_splits_counts_into_independent_poisson_halves():
    rng = np.random.default_rng(0)
    counts = rng.poisson(40.0, size=200_000)
    a, b = thin(counts, rng)
    assert np.array_equal(a + b, counts)
    for half in (a, b):  # Poisson(20): mean = variance
        assert half.mean() == pytest.approx(20.0, rel=0.01)
        assert half.var() == pytest.approx(20.0, rel=0.02)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.01
    with pytest.raises(ValueError, match="non-negative integers"):
        thin(np.array([1.5, 2.0]), rng)


def test_camera_gain_is_found_from_the_image_alone():
    s = generate(shape=(256, 256), phenotype="mixed", seed=3)
    cam = estimate_camera(s.image)
    assert cam.gain == pytest.approx(s.camera.gain, rel=0.05)
    blanked = s.image.copy()
    blanked[:, :128] = blanked.min()  # outside the cell set to one value, as MitoGraph does
    # the blanked half adds nothing and takes nothing: the estimate of the other half alone
    half = estimate_camera(s.image[:, 128:])
    assert estimate_camera(blanked).gain == pytest.approx(half.gain, rel=0.01)
    with pytest.raises(ValueError, match="too small or constant"):
        estimate_camera(np.full((64, 64), 100, np.uint16))


def test_camera_gain_is_not_biased_by_bright_structure():
    """Diffraction-limited tubules reach a 2x2 Haar detail (10% of its variance in the
    brightest pixels was structure, and gains came out up to 1.2x the generator's); the
    second difference, binned by an independent mean, gives them within a few % and without
    bias over the images."""
    ratios = []
    for seed in range(1000, 1006):
        s = generate(shape=(256, 256), seed=seed)
        ratios.append(estimate_camera(s.image).gain / s.camera.gain)
    assert max(abs(r - 1) for r in ratios) < 0.06
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.025)


@pytest.mark.parametrize("phenotype,seed", [("tubular", 1), ("mixed", 3)])
@pytest.mark.parametrize("sigma", [1.2, 2.0])
def test_split_estimate_matches_the_true_error_on_camera_data(phenotype, seed, sigma):
    s = generate(shape=(256, 256), phenotype=phenotype, seed=seed)
    denoise = _Blur(sigma)
    est = split_noise_error(s.image, denoise)
    true = float(np.mean((denoise.out - s.ground_truth.astype(np.float64)) ** 2))
    assert est.mse == pytest.approx(true, rel=0.10)
    assert est.gain == pytest.approx(s.camera.gain, rel=0.05) and est.psnr_db is not None


def test_split_estimate_on_photon_counts():
    s = generate(shape=(256, 256), phenotype="tubular", seed=5)
    signal = (s.ground_truth.astype(np.float64) - s.camera.offset) / s.camera.gain
    counts = np.random.default_rng(1).poisson(np.clip(signal, 0, None)).astype(np.float32)
    denoise = _Blur(1.5)
    est = split_noise_error(counts, denoise)
    true = float(np.mean((denoise.out - signal) ** 2))
    assert est.gain == pytest.approx(1.0, rel=0.10)
    assert est.mse == pytest.approx(true, rel=0.10)


def test_a_naive_score_against_the_noisy_input_would_be_far_off():
    # what the estimate corrects: scoring against the noisy image counts its noise as error
    s = generate(shape=(256, 256), phenotype="mixed", seed=3)
    denoise = _Blur(1.2)
    est = split_noise_error(s.image, denoise)
    true = float(np.mean((denoise.out - s.ground_truth.astype(np.float64)) ** 2))
    naive = float(np.mean((gaussian_filter(s.image.astype(float), 1.2) - s.image) ** 2))
    assert abs(naive - true) > 0.3 * true and abs(est.mse - true) < 0.1 * true


def test_split_values_are_a_metrics_row_or_nan_with_the_reason():
    s = generate(shape=(256, 256), phenotype="tubular", seed=7)
    denoise = _Blur(1.0)
    values, why = split_noise_values(s.image, denoise, seed=3)
    assert why is None and set(values) == set(SPLIT_KEYS)
    true = float(np.mean((denoise.out - s.ground_truth.astype(np.float64)) ** 2))
    assert values["split_mse"] == pytest.approx(true, rel=0.10)
    assert values["split_rmse"] == pytest.approx(np.sqrt(values["split_mse"]))
    flat = np.full((64, 64), 500, np.uint16)  # no noise to measure
    values, why = split_noise_values(flat, denoise)
    assert why and all(np.isnan(v) for v in values.values())


def test_split_estimate_of_a_volume_matches_the_true_error():
    """A volume split and reconstructed as a whole (a 3D denoiser here: a 3D blur), scored
    over all its planes: the estimate still matches the error to the ground truth."""
    s = generate(shape=(12, 128, 128), phenotype="tubular", seed=4)

    def denoise(v):
        denoise.out = gaussian_filter(v.astype(np.float64), (0.7, 1.2, 1.2))
        return denoise.out

    est = split_noise_error(s.image, denoise)
    true = float(np.mean((denoise.out - s.ground_truth.astype(np.float64)) ** 2))
    assert est.pixels == s.image.size
    assert est.mse == pytest.approx(true, rel=0.10)
    assert est.gain == pytest.approx(s.camera.gain, rel=0.05)
