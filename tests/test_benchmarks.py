"""The benchmark scripts' own logic: the report regenerates BENCHMARKS.md from results/, and the
noise floor's exact camera model is a distribution that matches the camera's samples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from microvae.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


@pytest.fixture(scope="module")
def noise_floor():
    sys.path.insert(0, str(BENCH))
    try:
        import noise_floor
    finally:
        sys.path.remove(str(BENCH))
    return noise_floor


def test_benchmarks_md_is_regenerated_from_the_results(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    subprocess.run([sys.executable, str(BENCH / "report.py"), "--out", str(out)], check=True)
    assert out.read_text() == (ROOT / "BENCHMARKS.md").read_text(), (
        "BENCHMARKS.md is out of date with benchmarks/results/: run python benchmarks/report.py"
    )


@pytest.mark.parametrize("photons", [0.0, 3.0, 40.0, 125.0])
def test_camera_model_is_a_distribution_that_matches_its_samples(noise_floor, photons):
    cam = generate(shape=(16, 16), seed=0).camera  # the synthetic images' camera
    levels = torch.arange(4096)
    clean = torch.full((4096,), float(cam.expected(np.float64(photons))), dtype=torch.float64)
    log_p = noise_floor.camera_log_prob(levels, clean, cam)
    assert float(log_p.exp().sum()) == pytest.approx(1.0, abs=1e-6)
    # an independent computation: the camera's own sampler
    samples = cam.expose(np.full(100_000, photons), np.random.default_rng(0)).astype(np.int64)
    nll_samples = -float(log_p[torch.from_numpy(samples)].mean())
    entropy = -float((log_p.exp() * log_p).sum())
    assert nll_samples == pytest.approx(entropy, abs=0.01)  # nats; MC error ~0.003
    hist = np.bincount(samples // 32, minlength=128) / len(samples)  # 32-level bins
    model = log_p.exp().view(128, 32).sum(1).numpy()
    assert 0.5 * np.abs(hist - model).sum() < 0.02
    # 125 photons reach the top of the range: the edge level keeps the clipped mass
    if photons == 125.0:
        assert float(log_p[-1].exp()) > 0.05
        assert float(log_p[-1].exp()) == pytest.approx((samples == 4095).mean(), abs=0.005)
