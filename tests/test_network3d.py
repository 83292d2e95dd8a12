"""The 3D network against geometry whose answer is known: straight and tilted tubes, a
three-armed junction, anisotropic voxels, and the synthetic generator's own ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from microvae.metrics.network3d import network_3d, network_3d_ratios, network_threshold_3d
from microvae.synthetic import generate


def _tube(shape, points, radius=1.5):
    """A bright tube (float32) along the polyline ``points`` (voxel coordinates)."""
    line = np.zeros(shape, bool)
    for a, b in zip(points[:-1], points[1:]):
        n = int(np.ceil(np.max(np.abs(np.subtract(b, a))))) * 4 + 1
        for t in np.linspace(0, 1, n):
            line[tuple(np.round(np.add(a, t * np.subtract(b, a))).astype(int))] = True
    dist = ndimage.distance_transform_edt(~line)
    return (dist <= radius).astype(np.float32) * 100 + 10


def test_a_straight_tube_has_its_length_and_two_ends():
    v = _tube((12, 40, 80), [(6, 20, 10), (6, 20, 69)])
    net = network_3d(v, smooth=0)
    assert net.total_length == pytest.approx(59, rel=0.1)
    assert (net.n_end_points, net.n_junctions, net.n_branches, net.n_components) == (2, 0, 1, 1)


def test_the_threshold_alone_is_the_one_the_network_takes():
    v = _tube((12, 40, 80), [(6, 20, 10), (6, 20, 69)])
    # unsmoothed, a two-level volume splits between its levels (10 and 110)
    assert 10 <= network_threshold_3d(v, smooth=0) < 110
    voxel = (0.3, 0.1, 0.1)  # smoothed as network_3d smooths, anisotropic voxels
    assert network_threshold_3d(v, voxel=voxel) == network_3d(v, voxel=voxel).threshold


def test_lengths_follow_the_voxel_size_along_z():
    # a tube along Z of 30 planes: 30 * 0.3 um with 0.3 um steps, whatever the XY pixel
    v = _tube((40, 24, 24), [(5, 12, 12), (35, 12, 12)], radius=2)
    net = network_3d(v, voxel=(0.3, 0.1, 0.1), smooth=0)
    assert net.total_length == pytest.approx(30 * 0.3, rel=0.1)
    assert net.volume > 0 and net.unit == "um"


def test_a_diagonal_tube_is_not_counted_twice():
    v = _tube((40, 40, 40), [(5, 5, 5), (34, 34, 34)])
    net = network_3d(v, smooth=0)
    assert net.total_length == pytest.approx(29 * np.sqrt(3), rel=0.1)


def test_three_arms_meet_in_one_junction():
    v = _tube((16, 60, 60), [(8, 30, 5), (8, 30, 30), (8, 5, 30)]) + _tube(
        (16, 60, 60), [(8, 30, 30), (8, 55, 55)]
    )
    net = network_3d(v, smooth=0)
    assert (net.n_junctions, net.n_end_points, net.n_networks) == (1, 3, 1)
    assert net.n_branches == 3


def test_a_copy_matches_its_reference_and_a_blur_does_not():
    v = _tube((16, 60, 60), [(8, 30, 5), (8, 30, 55)])
    _, _, same = network_3d_ratios(v, v.copy(), smooth=0)
    assert all(r == pytest.approx(1.0) for r in same.values() if np.isfinite(r))
    _, _, blurred = network_3d_ratios(v, ndimage.gaussian_filter(v, 4), smooth=0)
    assert blurred["volume"] > 1.5 or blurred["total_length"] < 0.8


def test_synthetic_networks_match_their_ground_truth():
    """On the generator's noise-free volumes, the 3D skeleton's length is the ground-truth
    network's within 10% (its centre lines, in um); its junctions within 35% each and 15%
    on average (a 3D skeleton adds branch points that merging does not all remove)."""
    junctions = []
    for seed in range(6):
        s = generate(shape=(24, 128, 128), phenotype="tubular", seed=seed, z_step_um=0.2)
        voxel = (s.pixel_size["Z"], s.pixel_size["Y"], s.pixel_size["X"])
        net = network_3d(s.ground_truth, voxel=voxel)
        assert net.total_length == pytest.approx(s.network["length_um"], rel=0.10)
        junctions.append(net.n_junctions / s.network["n_junctions"])
    assert all(0.65 <= r <= 1.35 for r in junctions), junctions
    assert np.mean(junctions) == pytest.approx(1.0, abs=0.15)
