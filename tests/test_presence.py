"""How sure of each structure: intervals of network statistics over draws and the presence of
each branch, on images whose draws are known by construction, and through a model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, gaussian_filter1d

from microvae.errors import MicrovaeError
from microvae.inference import load_model
from microvae.metrics import (
    branch_labels_3d,
    branch_presence,
    network_threshold,
    structure_intervals,
)
from microvae.report import structure_uncertainty
from microvae.synthetic import generate


def _lines(*rows: int, shape=(64, 96)) -> np.ndarray:
    """Blurred horizontal lines at ``rows`` (columns 20-70), peak about 100."""
    img = np.zeros(shape)
    for r in rows:
        img[r, 20:70] = 1.0
    img = gaussian_filter(img, 1.2)
    return 100 * img / img.max()


def _tubes(*rows: int) -> np.ndarray:
    """The lines of :func:`_lines` as tubes in the middle of a 9-plane volume."""
    v = np.zeros((9, 64, 96))
    v[4] = _lines(*rows)
    return 4 * gaussian_filter1d(v, 1.0, axis=0)


def test_branch_presence_counts_the_draws_that_hold_each_branch():
    mmse = _lines(16, 44)
    # line 16 in every draw (moved by a pixel in some: within the tolerance); line 44 in 3 of
    # 10; a line at 30, in no MMSE branch, changes nothing
    draws = [_lines(16 + (k % 2), 44, 30) if k < 3 else _lines(16 - (k % 2)) for k in range(10)]
    p = branch_presence(mmse, draws, threshold=30.0)
    assert len(p.presence) == 2
    by_row = {
        int(np.argwhere(p.labels == k + 1)[:, 0].mean().round()): v
        for k, v in enumerate(p.presence)
    }
    assert by_row == {16: pytest.approx(1.0), 44: pytest.approx(0.3)}
    assert np.all(p.lengths > 40)
    m = p.map()
    assert np.isnan(m[0, 0]) and m[44, 45] == pytest.approx(0.3)
    # moved by 5 pixels, beyond the tolerance of 2: absent
    assert branch_presence(mmse, [_lines(21, 49)], threshold=30.0).presence.tolist() == [0, 0]


def test_intervals_span_the_draws_and_value_is_the_mmse():
    ref = _lines(16, 44)
    draws = [_lines(16, 44)] * 5 + [_lines(16)] * 5  # half the draws lose a line
    iv = structure_intervals(ref, ref, draws, threshold=30.0)
    length = iv["total_length_px"]
    assert length.value == pytest.approx(1.0)
    assert length.low == pytest.approx(0.5, rel=0.05) and length.high == pytest.approx(1.0)
    assert iv["n_individuals"].low == pytest.approx(0.5) and iv["n_individuals"].high == 1.0
    assert str(length).startswith("1.00 [0.")
    with pytest.raises(ValueError, match="at least 2 draws"):
        structure_intervals(ref, ref, [ref], threshold=30.0)


def test_structure_uncertainty_through_a_model(tiny_model_path, tiny_deterministic_path):
    model = load_model(tiny_model_path)
    plane = generate(shape=(96, 96), seed=11).image
    u = structure_uncertainty(model, plane, samples=4, seed=2)
    draws = np.stack([d.astype(np.float32) for d in model.draws(plane, samples=4, seed=2)])
    np.testing.assert_allclose(u.mmse, draws.mean(0), rtol=1e-6)
    assert np.all(np.isfinite(u.std)) and u.std.max() > 0  # the draws differ
    length = u.intervals["total_length_px"]
    assert length.low <= length.high and np.isfinite(length.value)
    assert u.presence.labels.shape == plane.shape
    assert np.all((u.presence.presence >= 0) & (u.presence.presence <= 1))
    # a calibrated model's draws are widened about their mean by its scale before they are
    # measured; calibrated=False gives the draws' own
    model.calibration = {"scale": 3.0}
    wide = structure_uncertainty(model, plane, samples=4, seed=2)
    assert wide.scale == 3.0 and u.scale == 1.0
    np.testing.assert_allclose(wide.mmse, u.mmse, rtol=1e-6)
    np.testing.assert_allclose(wide.std, 3 * u.std, rtol=1e-4, atol=1e-3)
    widened = u.mmse + 3 * (draws - u.mmse)
    expected = structure_intervals(plane, u.mmse, widened, threshold=network_threshold(plane))
    assert wide.intervals["total_length_px"] == expected["total_length_px"]
    own = structure_uncertainty(model, plane, samples=4, seed=2, calibrated=False)
    np.testing.assert_allclose(own.std, u.std, rtol=1e-6)
    with pytest.raises(MicrovaeError, match="cannot sample"):
        structure_uncertainty(load_model(tiny_deterministic_path), plane, samples=3)


def test_intervals_of_a_volume_include_its_volume(tiny_3d_model_path):
    """In 3D the draws' network (metrics.network_3d) gives the intervals, the volume's
    included: half the draws lose one of two tubes."""
    both, one = _tubes(16, 44), _tubes(16)
    iv = structure_intervals(both, both, [both] * 5 + [one] * 5, voxel=(0.2, 0.05, 0.05))
    assert iv["volume"].value == pytest.approx(1.0)
    assert iv["volume"].low == pytest.approx(0.5, rel=0.1) and iv["volume"].high == 1.0
    assert iv["total_length"].low == pytest.approx(0.5, rel=0.1)
    # through a 3D model: its draws of a volume, with the presence of its 3D branches
    model = load_model(tiny_3d_model_path)
    stack = generate(shape=(16, 64, 64), seed=3, z_step_um=0.2, pixel_size_um=0.05).image
    u = structure_uncertainty(model, stack, samples=3, voxel=(0.2, 0.05, 0.05))
    assert u.mmse.shape == stack.shape and u.presence.labels.shape == stack.shape
    assert np.all((u.presence.presence >= 0) & (u.presence.presence <= 1))
    assert set(u.intervals) >= {"total_length", "n_junctions", "volume"}
    with pytest.raises(ValueError, match="volume"):
        structure_uncertainty(model, stack[0], samples=3)


def test_branch_presence_in_a_volume_counts_the_draws_that_hold_each_tube():
    """A volume's branches are its 3D skeleton's; a tube in 3 of 10 draws has presence 0.3,
    one moved by a pixel (0.05 um, within 2 XY pixels) stays present, one moved by 5 is not."""
    voxel = (0.2, 0.05, 0.05)
    mmse = _tubes(16, 44)
    draws = [_tubes(16 + (k % 2), 44) if k < 3 else _tubes(16 - (k % 2)) for k in range(10)]
    p = branch_presence(mmse, draws, threshold=0.5, voxel=voxel)
    assert len(p.presence) == 2 and p.labels.shape == mmse.shape
    by_row = {
        int(np.argwhere(p.labels == k + 1)[:, 1].mean().round()): v
        for k, v in enumerate(p.presence)
    }
    assert by_row == {16: pytest.approx(1.0), 44: pytest.approx(0.3)}
    # the tubes run 50 pixels along X: about 2.5 um of skeleton each (its ends are trimmed)
    assert np.all((p.lengths > 1.5) & (p.lengths < 2.5))
    moved = branch_presence(mmse, [_tubes(21, 49)], threshold=0.5, voxel=voxel)
    assert moved.presence.tolist() == [0, 0]


def test_branch_labels_3d_measures_each_branch_in_the_voxels_unit():
    """Lengths in um over anisotropic voxels, against the steps counted by hand."""
    sk = np.zeros((12, 30, 60), bool)
    sk[2, 5, 10:60] = True  # 50 voxels along X: 49 steps of 0.05 um
    sk[1:11, 20, 5] = True  # 10 voxels along Z: 9 steps of 0.2 um
    for k in range(8):  # a diagonal in (Z, X): 7 steps of sqrt(0.2^2 + 0.05^2)
        sk[2 + k, 25, 30 + k] = True
    labels, lengths = branch_labels_3d(sk, (0.2, 0.05, 0.05))
    assert labels.shape == sk.shape and labels.max() == 3
    assert sorted(lengths) == pytest.approx(sorted([49 * 0.05, 9 * 0.2, 7 * np.hypot(0.2, 0.05)]))
    assert set(np.unique(labels[sk])) == {1, 2, 3} and not labels[~sk].any()
