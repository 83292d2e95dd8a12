"""Sample realism by morphology statistics: branch lengths against drawn skeletons, the
distances against hand-made sets of tiles whose difference is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.draw import disk as draw_disk
from skimage.draw import line

from microvae.metrics import branch_lengths, realism, skeleton_stats
from microvae.synthetic import generate


def test_branch_lengths_of_drawn_skeletons():
    sk = np.zeros((40, 40), bool)
    sk[5, 3:23] = True  # a straight branch: 19 steps
    rr, cc = line(10, 5, 20, 15)  # a diagonal: 10 diagonal steps
    sk[rr, cc] = True
    assert sorted(branch_lengths(sk)) == pytest.approx(sorted([19.0, 10 * math.sqrt(2)]))
    # a plus: 4 arms of 10 px from a centre; the junction and its 4 neighbours are the hub,
    # so each arm keeps 9 pixels: 8 steps
    plus = np.zeros((40, 40), bool)
    plus[20, 10:31] = plus[10:31, 20] = True
    lengths = branch_lengths(plus)
    assert len(lengths) == skeleton_stats(plus)["n_branches"] == 4
    assert lengths == pytest.approx([8.0] * 4)
    assert branch_lengths(np.zeros((8, 8), bool)).shape == (0,)
    with pytest.raises(ValueError, match="2D"):
        branch_lengths(np.zeros((2, 8, 8), bool))


def _tubules(n: int, seed: int) -> np.ndarray:
    return np.stack([generate(shape=(64, 64), seed=seed + i).ground_truth for i in range(n)])


def _blobs(n: int, seed: int, like: np.ndarray) -> np.ndarray:
    """Round spots of the tubules' brightness: no skeleton branches, few junctions."""
    rng = np.random.default_rng(seed)
    lo, hi = float(like.min()), float(np.percentile(like, 99))
    out = np.full((n, 64, 64), lo, np.float32)
    for t in out:
        for _ in range(4):
            rr, cc = draw_disk(tuple(rng.integers(8, 56, 2)), 6, shape=t.shape)
            t[rr, cc] = hi
    return out


def test_realism_of_the_data_against_itself_and_against_blobs():
    data = _tubules(24, seed=0)
    same = realism(data, data)
    assert same.score == 0.0 and all(v == 0.0 for v in same.distances.values())
    # new images of the same kind: close, about as close as two halves of the data
    fresh = realism(data, _tubules(24, seed=100))
    blobs = realism(data, _blobs(24, seed=0, like=data))
    assert fresh.score < 0.5 * blobs.score
    assert fresh.score < 3 * max(fresh.reference_score, 0.05)
    # round blobs skeletonise to short stubs: far shorter branches, fewer junctions
    assert blobs.samples["branch_length_px"] < 0.5 * blobs.data["branch_length_px"]
    assert blobs.distances["junction_density"] > 0.5
    assert blobs.threshold == fresh.threshold  # the data's threshold, for every sample set


def test_empty_samples_are_as_far_as_the_data_mean():
    data = _tubules(8, seed=0)
    flat = np.full_like(data, data.min())
    r = realism(data, flat)
    # W1 to all zeros is the mean of the data's values: a distance of exactly 1
    assert r.distances["length_density"] == pytest.approx(1.0)
    assert r.distances["branch_length"] == math.inf and r.samples["branches"] == 0
    with pytest.raises(ValueError, match="2 data tiles"):
        realism(data[:1], data)
