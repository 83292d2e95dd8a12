"""Mitochondrial network morphology, as MiNA (Valente et al. 2017) reports it.

Smooth lightly (Gaussian, 1 px), threshold (Otsu unless given), drop objects under
``min_size`` pixels, skeletonise (scikit-image), then read the skeleton as a graph:

- end points: skeleton pixels with exactly one neighbour;
- junctions: clusters of touching skeleton pixels from which three or more branches leave
  (crossing number >= 3: the number of background-to-skeleton steps around the 8 neighbours);
- branches: the pieces left when the junction pixels and their neighbours are taken out (a
  closed loop without a junction is one branch; an isolated pixel is a branch of length 0);
- total length: 1 per step to a 4-neighbour, sqrt(2) per diagonal step (a diagonal that a
  pair of 4-steps already covers is not counted twice), in pixels and in physical units;
- individuals: connected skeleton pieces; networks: individuals with at least one junction;
- mean branch length = total length / branches; branches per network.

To compare a reconstruction with a reference, both are thresholded at the *reference's*
threshold (same intensity units), so that a change of contrast is not a change of shape.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.morphology import skeletonize

__all__ = [
    "Morphology",
    "MORPHOLOGY_FIELDS",
    "skeleton_stats",
    "branch_lengths",
    "branch_labels",
    "network_morphology",
    "network_threshold",
    "network_mask",
    "morphology_ratios",
]

_EIGHT = np.ones((3, 3), bool)
# the 8 neighbours in circular order, as (dy, dx)
_RING = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]


@dataclass
class Morphology:
    """Skeleton statistics of one image; lengths in pixels and, with a pixel size, in unit."""

    total_length_px: float
    n_branches: int
    n_junctions: int
    n_end_points: int
    n_individuals: int
    n_networks: int
    mean_branch_length_px: float
    branches_per_network: float
    foreground_fraction: float
    threshold: float
    pixel_size: float | None = None
    unit: str | None = None

    @property
    def total_length(self) -> float | None:
        return None if self.pixel_size is None else self.total_length_px * self.pixel_size

    @property
    def mean_branch_length(self) -> float | None:
        return None if self.pixel_size is None else self.mean_branch_length_px * self.pixel_size

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.pixel_size is not None:
            d[f"total_length_{self.unit}"] = self.total_length
            d[f"mean_branch_length_{self.unit}"] = self.mean_branch_length
        return d


# the counts compared between a reconstruction and its reference
MORPHOLOGY_FIELDS = (
    "total_length_px",
    "n_branches",
    "n_junctions",
    "n_end_points",
    "n_individuals",
    "n_networks",
    "mean_branch_length_px",
)


def _shifted(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``mask`` moved so that out[y, x] = mask[y + dy, x + dx] (False outside)."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)] = mask[
        max(dy, 0) : h - max(-dy, 0), max(dx, 0) : w - max(-dx, 0)
    ]
    return out


def _skeleton_length(sk: np.ndarray) -> float:
    right, down = _shifted(sk, 0, 1), _shifted(sk, 1, 0)
    n4 = int(np.sum(sk & right)) + int(np.sum(sk & down))
    # a diagonal step counts only where no 4-neighbour path of two steps joins the same pixels
    dr, dl, left = _shifted(sk, 1, 1), _shifted(sk, 1, -1), _shifted(sk, 0, -1)
    nd = int(np.sum(sk & dr & ~right & ~down)) + int(np.sum(sk & dl & ~left & ~down))
    return n4 + math.sqrt(2) * nd


def _graph(sk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour counts, junction pixels and the hub (junctions with their skeleton
    neighbours) of a bool skeleton."""
    neigh = [_shifted(sk, dy, dx) for dy, dx in _RING]
    n_neigh = np.sum(neigh, axis=0)
    crossings = np.sum([~neigh[i] & neigh[(i + 1) % 8] for i in range(8)], axis=0)
    junction_px = sk & (crossings >= 3)
    # with the junction pixels alone taken out, arms would still touch diagonally around them
    hub = ndimage.binary_dilation(junction_px, structure=_EIGHT) & sk
    return n_neigh, junction_px, hub


def branch_lengths(skeleton: np.ndarray) -> np.ndarray:
    """Length of every branch of a 2D bool skeleton, in pixels (float64, one per branch, in
    label order): the branches of :func:`skeleton_stats`, measured as its total length is (1
    per 4-step, sqrt(2) per diagonal step not covered by two 4-steps), without the hub pixels
    around junctions; an isolated pixel is a branch of length 0."""
    return branch_labels(skeleton)[1]


def branch_labels(skeleton: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The branches of a 2D bool skeleton (those of :func:`skeleton_stats`): (H, W) int32
    labels, branch k's pixels holding k (1..n; hub pixels around junctions and background 0),
    and their lengths as :func:`branch_lengths` gives them."""
    sk = np.asarray(skeleton, bool)
    if sk.ndim != 2:
        raise ValueError(f"expected a 2D skeleton, got shape {sk.shape}")
    arms = sk & ~_graph(sk)[2]
    labels, _ = ndimage.label(arms, structure=_EIGHT)
    return labels.astype(np.int32), _arm_lengths(arms)


def _arm_lengths(arms: np.ndarray) -> np.ndarray:
    """:func:`branch_lengths` of a skeleton whose hub pixels are already taken out."""
    labels, n = ndimage.label(arms, structure=_EIGHT)
    right, down = _shifted(arms, 0, 1), _shifted(arms, 1, 0)
    dr, dl, left = _shifted(arms, 1, 1), _shifted(arms, 1, -1), _shifted(arms, 0, -1)
    # pixels and their neighbours on one arm share its label (the arms are 8-connected)
    steps = np.bincount(labels[arms & right], minlength=n + 1).astype(np.float64)
    steps += np.bincount(labels[arms & down], minlength=n + 1)
    diag = np.bincount(labels[arms & dr & ~right & ~down], minlength=n + 1)
    diag += np.bincount(labels[arms & dl & ~left & ~down], minlength=n + 1)
    return (steps + math.sqrt(2) * diag)[1:]


def skeleton_stats(skeleton: np.ndarray) -> dict:
    """Graph statistics of a one-pixel-wide 2D skeleton (bool): see the module docstring."""
    sk = np.asarray(skeleton, bool)
    if sk.ndim != 2:
        raise ValueError(f"expected a 2D skeleton, got shape {sk.shape}")
    n_neigh, junction_px, hub = _graph(sk)
    end_points = sk & (n_neigh == 1)
    _, n_junctions = ndimage.label(junction_px, structure=_EIGHT)
    _, n_branches = ndimage.label(sk & ~hub, structure=_EIGHT)
    individuals, n_individuals = ndimage.label(sk, structure=_EIGHT)
    with_junction = np.unique(individuals[junction_px])
    n_networks = int(np.count_nonzero(with_junction))
    length = _skeleton_length(sk)
    return {
        "total_length_px": length,
        "n_branches": int(n_branches),
        "n_junctions": int(n_junctions),
        "n_end_points": int(end_points.sum()),
        "n_individuals": int(n_individuals),
        "n_networks": n_networks,
        "mean_branch_length_px": length / n_branches if n_branches else 0.0,
        "branches_per_network": (
            float(np.sum([_branches_in(individuals == i, hub) for i in with_junction])) / n_networks
            if n_networks
            else 0.0
        ),
    }


def _branches_in(component: np.ndarray, hub: np.ndarray) -> int:
    return ndimage.label(component & ~hub, structure=_EIGHT)[1]


def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    x = image.astype(np.float32)
    return ndimage.gaussian_filter(x, sigma) if sigma > 0 else x


def network_threshold(image: np.ndarray, *, smooth_sigma: float = 1.0) -> float:
    """Otsu's threshold of the lightly smoothed image, in the image's intensity units."""
    return _otsu(_smooth(image, smooth_sigma))


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of ``values``; their one value where all are equal."""
    if float(values.min()) == float(values.max()):
        return float(values.max())
    return float(threshold_otsu(values))


def network_mask(
    image: np.ndarray, threshold: float, *, smooth_sigma: float = 1.0, min_size: int = 9
) -> np.ndarray:
    """Foreground (H, W) bool: the smoothed image above ``threshold``, objects under
    ``min_size`` pixels dropped."""
    mask = _smooth(image, smooth_sigma) > threshold
    if min_size > 1:  # by hand: remove_small_objects changed its arguments in skimage 0.26
        labels, _ = ndimage.label(mask, structure=_EIGHT)
        sizes = np.bincount(labels.ravel())
        mask = (sizes >= min_size)[labels] & mask
    return mask


def network_morphology(
    image: np.ndarray,
    *,
    threshold: float | None = None,
    smooth_sigma: float = 1.0,
    min_size: int = 9,
    pixel_size: float | None = None,
    unit: str | None = "um",
) -> Morphology:
    """Network morphology of a 2D image of mitochondria (any dtype).

    Args:
        threshold: foreground = smoothed image > threshold; default Otsu's.
        smooth_sigma: Gaussian smoothing before thresholding, in pixels (0 for none).
        min_size: objects smaller than this many pixels are dropped (noise specks).
        pixel_size: physical size of a pixel, for lengths in ``unit``.
    """
    if image.ndim != 2:
        raise ValueError(f"network_morphology expects a 2D image, got shape {image.shape}")
    if threshold is None:
        threshold = network_threshold(image, smooth_sigma=smooth_sigma)
    mask = network_mask(image, threshold, smooth_sigma=smooth_sigma, min_size=min_size)
    stats = skeleton_stats(skeletonize(mask))
    return Morphology(
        **stats,
        foreground_fraction=float(mask.mean()),
        threshold=float(threshold),
        pixel_size=pixel_size,
        unit=unit if pixel_size is not None else None,
    )


def morphology_ratios(
    reference: np.ndarray, test: np.ndarray, **options
) -> tuple[Morphology, Morphology, dict[str, float]]:
    """Morphology of both images at the reference's threshold, and test / reference for each
    of :data:`MORPHOLOGY_FIELDS` (NaN where the reference has none; 1 is a perfect match).
    ``options`` are those of :func:`network_morphology`."""
    if options.get("threshold") is None:
        options["threshold"] = network_threshold(
            reference, smooth_sigma=options.get("smooth_sigma", 1.0)
        )
    ref = network_morphology(reference, **options)
    tst = network_morphology(test, **options)
    ratios = {}
    for name in MORPHOLOGY_FIELDS:
        a, b = getattr(ref, name), getattr(tst, name)
        ratios[name] = b / a if a else float("nan")
    return ref, tst, ratios
