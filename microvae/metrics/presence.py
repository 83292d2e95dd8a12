"""How sure of each structure: network statistics over posterior draws, and branch presence.

Intervals of the network statistics over the draws, and how often each branch of the MMSE
reconstruction's skeleton is present in them.

Every draw of the posterior (:meth:`microvae.inference.TrainedModel.draws`) is a plausible
reconstruction. Measured like the reconstruction (:func:`~.morphology.network_morphology` at
the reference's threshold, so that contrast is not shape; a volume's in 3D,
:func:`~.network3d.network_3d`), the draws spread the network's length, junctions, branch
lengths (and a volume's volume) into intervals: "network length 1.00 [0.97, 1.04] of the
input's". A branch of the MMSE's skeleton is *present* in a draw where the draw's skeleton
passes within ``tolerance`` pixels of at least half of the branch's pixels; its presence is
the fraction of draws in which it is. In a volume the skeletons are 3D (those of
:func:`~.network3d.network_3d`) and the tolerance is in XY pixels, measured in physical
units over the anisotropic voxels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from .morphology import (
    MORPHOLOGY_FIELDS,
    branch_labels,
    network_mask,
    network_morphology,
    network_threshold,
)
from .network3d import (
    NETWORK3D_FIELDS,
    branch_labels_3d,
    network_3d,
    network_threshold_3d,
    skeleton_3d,
)

__all__ = ["BranchPresence", "Interval", "branch_presence", "structure_intervals"]


@dataclass(frozen=True)
class Interval:
    """A statistic of the MMSE reconstruction (``value``) with the central interval of the
    draws' (``low``, ``high``), all as ratios to the reference's."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def structure_intervals(
    reference: np.ndarray,
    mmse: np.ndarray,
    draws: Iterable[np.ndarray],
    *,
    level: float = 0.9,
    threshold: float | None = None,
    voxel: tuple[float, float, float] | None = None,
    smooth_sigma: float = 1.0,
    min_size: int = 9,
) -> dict[str, Interval]:
    """Per network statistic, the MMSE's value over the reference's (the input's) and the
    central ``level`` interval of the draws' (one intensity scale; threshold: the
    reference's Otsu unless given). 2D planes: :data:`~.morphology.MORPHOLOGY_FIELDS`
    (``smooth_sigma``, ``min_size`` as :func:`~.morphology.network_morphology`); (Z, Y, X)
    volumes: :data:`~.network3d.NETWORK3D_FIELDS`, the volume's included, with ``voxel``
    (Z, Y, X) sizes (default 1)."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    fields, measure = _measure(reference, threshold, voxel, smooth_sigma, min_size)
    ref, mid = measure(reference), measure(mmse)
    per_draw = [measure(d) for d in draws]
    if len(per_draw) < 2:
        raise ValueError("structure_intervals: needs at least 2 draws")
    tail = (1 - level) / 2
    out = {}
    for name in fields:
        base = getattr(ref, name)
        if not base:
            out[name] = Interval(float("nan"), float("nan"), float("nan"))
            continue
        values = np.array([getattr(m, name) for m in per_draw], np.float64) / base
        low, high = np.quantile(values, [tail, 1 - tail])
        out[name] = Interval(getattr(mid, name) / base, float(low), float(high))
    return out


def _measure(reference, threshold, voxel, smooth_sigma, min_size):
    """(the fields, a function image -> its network) for a plane or a volume, at the
    reference's threshold unless one is given."""
    if np.ndim(reference) == 3:
        voxel = voxel or (1.0, 1.0, 1.0)
        if threshold is None:
            threshold = network_threshold_3d(reference, voxel=voxel)
        return NETWORK3D_FIELDS, lambda v: network_3d(v, voxel=voxel, threshold=threshold)
    opts = {"smooth_sigma": smooth_sigma, "min_size": min_size}
    if threshold is None:
        threshold = network_threshold(reference, smooth_sigma=smooth_sigma)
    return MORPHOLOGY_FIELDS, lambda p: network_morphology(p, threshold=threshold, **opts)


@dataclass(frozen=True)
class BranchPresence:
    """The MMSE skeleton's branches and how often each is present in the draws: ``labels``
    (H, W) or, for a volume, (Z, Y, X) int32, branch k's pixels hold k (1..n; junction hubs
    and background 0); ``presence`` (n,) float64, the fraction of draws in which branch k+1
    is present; ``lengths`` (n,) its length in pixels (a volume's: in the voxel's unit)."""

    labels: np.ndarray
    presence: np.ndarray
    lengths: np.ndarray

    def map(self) -> np.ndarray:
        """``labels``' shape, float32: each branch pixel holds its branch's presence, NaN
        elsewhere."""
        table = np.concatenate([[np.nan], self.presence]).astype(np.float32)
        return table[self.labels]


def branch_presence(
    mmse: np.ndarray,
    draws: Iterable[np.ndarray],
    *,
    threshold: float,
    tolerance: float = 2.0,
    smooth_sigma: float = 1.0,
    min_size: int = 9,
    voxel: tuple[float, float, float] | None = None,
) -> BranchPresence:
    """For each branch of the skeleton of ``mmse`` (a 2D plane, or a (Z, Y, X) volume; its
    network at ``threshold``, e.g. the input's :func:`~.morphology.network_threshold`, or
    :func:`~.network3d.network_3d`'s for a volume), the fraction of ``draws`` whose own
    skeleton passes within ``tolerance`` pixels (XY pixels in a volume, whose ``voxel``
    (Z, Y, X) sizes default to 1) of at least half of the branch's pixels. ``smooth_sigma``
    and ``min_size``: a plane's, as :func:`~.morphology.network_morphology`'s."""
    skeleton, sampling = _skeletoniser(mmse, threshold, voxel, smooth_sigma, min_size)
    if np.ndim(mmse) == 3:
        labels, lengths = branch_labels_3d(skeleton(mmse), sampling)
        tolerance = tolerance * sampling[2]  # in the voxel's unit
    else:
        labels, lengths = branch_labels(skeleton(mmse))
    n, arms = len(lengths), labels > 0
    size = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    hits, count = np.zeros(n), 0
    for draw in draws:
        drawn = skeleton(draw)
        near = ndimage.distance_transform_edt(~drawn, sampling=sampling) <= tolerance
        covered = np.bincount(labels[near & arms], minlength=n + 1)[1:]
        hits += covered >= 0.5 * size
        count += 1
    if count == 0:
        raise ValueError("branch_presence: no draws")
    return BranchPresence(labels, hits / count, lengths)


def _skeletoniser(mmse, threshold, voxel, smooth_sigma, min_size):
    """(a function image -> its bool skeleton at ``threshold``, the pixel or voxel sizes)."""
    if np.ndim(mmse) == 3:
        voxel = tuple(float(v) for v in (voxel or (1.0, 1.0, 1.0)))
        return lambda v: skeleton_3d(v, voxel=voxel, threshold=threshold), voxel
    opts = {"smooth_sigma": smooth_sigma, "min_size": min_size}
    return lambda p: skeletonize(network_mask(p, threshold, **opts)), (1.0, 1.0)
