"""Do generated images look like the data? Morphology statistics of two sets of tiles.

Each tile (data or sample) is thresholded at one threshold, the data's (Otsu's over all data
tiles, lightly smoothed, as :func:`~.morphology.network_morphology` does), skeletonised and
read as a graph. Per tile: skeleton length per area (pixels of skeleton per 1,000 pixels of
tile), junction density (junctions per 10,000 pixels) and foreground fraction; pooled over the
tiles: the lengths of all branches. The distance between the data's and the samples'
distribution of each is the Wasserstein-1 distance divided by the data's mean (so 0.1 is "off
by a tenth of a typical value"), and the ``score`` is the mean of the three distances of
length, junctions and branch lengths: 0 for identical distributions, larger for less realistic
samples.

Tiles with less than ``min_foreground`` of foreground pixels can be left out of both sets
(``microvae evaluate`` scores data tiles chosen for their signal, so it compares them with the
samples that have signal, and reports the share of samples that do).

Finite sets of tiles differ by chance, so the same distances between two random halves of the
data tiles (``reference``) say what a perfect generator would score.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage
from scipy.stats import wasserstein_distance
from skimage.morphology import skeletonize

from .morphology import (
    _EIGHT,
    _arm_lengths,
    _graph,
    _otsu,
    _skeleton_length,
    _smooth,
    network_mask,
)

__all__ = [
    "TileMorphology",
    "Realism",
    "RealismReference",
    "tile_morphology",
    "realism",
    "realism_reference",
    "pooled_threshold",
]

_LENGTH_PER = 1_000.0  # skeleton length per this many pixels
_JUNCTIONS_PER = 10_000.0  # junctions per this many pixels
# the distances averaged into the score
SCORED = ("length_density", "junction_density", "branch_length")


@dataclass
class TileMorphology:
    """Per-tile statistics (N,) and each tile's branch lengths, in pixels."""

    length_density: np.ndarray  # skeleton px per 1,000 px
    junction_density: np.ndarray  # junctions per 10,000 px
    foreground_fraction: np.ndarray
    tile_branches: list[np.ndarray]

    @property
    def branch_lengths(self) -> np.ndarray:
        """(M,) the branch lengths of every tile, pooled."""
        return np.concatenate(self.tile_branches) if self.tile_branches else np.zeros(0)

    def subset(self, index: np.ndarray) -> TileMorphology:
        """The statistics of the tiles at ``index`` only."""
        return TileMorphology(
            self.length_density[index],
            self.junction_density[index],
            self.foreground_fraction[index],
            [self.tile_branches[i] for i in index],
        )

    def summary(self) -> dict:
        if len(self.length_density) == 0:
            return {"tiles": 0}
        return {
            "tiles": int(len(self.length_density)),
            "length_density": float(np.mean(self.length_density)),
            "junction_density": float(np.mean(self.junction_density)),
            "foreground_fraction": float(np.mean(self.foreground_fraction)),
            "branches": int(len(self.branch_lengths)),
            "branch_length_px": float(np.mean(self.branch_lengths))
            if len(self.branch_lengths)
            else 0.0,
        }


@dataclass
class Realism:
    """Distances (W1 / data mean) of samples to data, per statistic and their mean ``score``;
    the same between two halves of the data (``reference``); both sets' summaries."""

    distances: dict
    score: float
    reference: dict
    reference_score: float
    data: dict
    samples: dict
    threshold: float
    min_foreground: float = 0.0
    samples_kept: float = 1.0  # share of the samples with min_foreground or more

    def to_dict(self) -> dict:
        """As plain values for JSON: an infinite distance (no sample tile to compare) is
        None."""

        def finite(v):
            if isinstance(v, dict):
                return {k: finite(x) for k, x in v.items()}
            return None if isinstance(v, float) and not np.isfinite(v) else v

        return finite(asdict(self))


def pooled_threshold(tiles: np.ndarray, *, smooth_sigma: float = 1.0) -> float:
    """Otsu's threshold of the lightly smoothed tiles (N, H, W) pooled, in their units."""
    return _otsu(np.concatenate([_smooth(t, smooth_sigma).ravel() for t in tiles]))


def tile_morphology(
    tiles: np.ndarray, threshold: float, *, smooth_sigma: float = 1.0, min_size: int = 9
) -> TileMorphology:
    """Morphology statistics of each tile of ``tiles`` (N, H, W) at ``threshold``."""
    tiles = np.asarray(tiles)
    if tiles.ndim != 3 or len(tiles) == 0:
        raise ValueError(f"expected tiles (N, H, W) with N >= 1, got shape {tiles.shape}")
    area = tiles.shape[1] * tiles.shape[2]
    length, junctions, fg, branches = [], [], [], []
    for t in tiles:
        mask = network_mask(t, threshold, smooth_sigma=smooth_sigma, min_size=min_size)
        sk = skeletonize(mask)
        _, junction_px, hub = _graph(sk)
        length.append(_skeleton_length(sk) / area * _LENGTH_PER)
        junctions.append(ndimage.label(junction_px, structure=_EIGHT)[1] / area * _JUNCTIONS_PER)
        fg.append(mask.mean())
        branches.append(_arm_lengths(sk & ~hub))
    return TileMorphology(np.asarray(length), np.asarray(junctions), np.asarray(fg), branches)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """W1(a, b) / mean(a); 0 where both are empty or all zero, inf where only b is empty."""
    if len(a) == 0 and len(b) == 0:
        return 0.0
    if len(a) == 0 or len(b) == 0:
        return float("inf")
    scale = float(np.mean(a))
    w = float(wasserstein_distance(a, b))
    if scale == 0:
        return 0.0 if w == 0 else float("inf")
    return w / scale


def _distances(a: TileMorphology, b: TileMorphology) -> dict:
    return {
        "length_density": _distance(a.length_density, b.length_density),
        "junction_density": _distance(a.junction_density, b.junction_density),
        "branch_length": _distance(a.branch_lengths, b.branch_lengths),
        "foreground_fraction": _distance(a.foreground_fraction, b.foreground_fraction),
    }


@dataclass
class RealismReference:
    """The data side of :func:`realism`, measured once: the threshold, the data tiles'
    statistics (those with ``min_foreground`` or more) and the two-halves reference; compare
    any number of sample sets with :meth:`compare`."""

    threshold: float
    min_foreground: float
    data: TileMorphology
    reference: dict
    options: dict

    def compare(self, sample_tiles: np.ndarray) -> Realism:
        """The realism of ``sample_tiles`` (N, H, W) in the data's intensity units."""
        gen = tile_morphology(np.asarray(sample_tiles), self.threshold, **self.options)
        kept = np.flatnonzero(gen.foreground_fraction >= self.min_foreground)
        samples_kept = len(kept) / len(gen.length_density)
        gen = gen.subset(kept)
        dist = _distances(self.data, gen)
        return Realism(
            distances=dist,
            score=float(np.mean([dist[k] for k in SCORED])),
            reference=self.reference,
            reference_score=float(np.mean([self.reference[k] for k in SCORED])),
            data=self.data.summary(),
            samples=gen.summary(),
            threshold=float(self.threshold),
            min_foreground=float(self.min_foreground),
            samples_kept=float(samples_kept),
        )


def realism_reference(
    data_tiles: np.ndarray,
    *,
    threshold: float | None = None,
    min_foreground: float = 0.0,
    seed: int = 0,
    **options,
) -> RealismReference:
    """The data side of :func:`realism` (same arguments), to compare several sample sets."""
    data_tiles = np.asarray(data_tiles)
    if len(data_tiles) < 2:
        raise ValueError(f"need at least 2 data tiles, got {len(data_tiles)}")
    if threshold is None:
        threshold = pooled_threshold(data_tiles, smooth_sigma=options.get("smooth_sigma", 1.0))
    data = tile_morphology(data_tiles, threshold, **options)
    data = data.subset(np.flatnonzero(data.foreground_fraction >= min_foreground))
    if len(data.length_density) < 2:
        raise ValueError(
            f"fewer than 2 data tiles have {min_foreground:.0%} foreground or more; "
            "lower min_foreground"
        )
    order = np.random.default_rng(seed).permutation(len(data.length_density))
    half = len(order) // 2
    ref = _distances(data.subset(order[:half]), data.subset(order[half:]))
    return RealismReference(float(threshold), float(min_foreground), data, ref, options)


def realism(
    data_tiles: np.ndarray,
    sample_tiles: np.ndarray,
    *,
    threshold: float | None = None,
    min_foreground: float = 0.0,
    seed: int = 0,
    **options,
) -> Realism:
    """How far the morphology of ``sample_tiles`` (N, H, W) lies from that of ``data_tiles``
    (M, H', W'), both in the data's intensity units, at the data's threshold (see the module
    docstring), over the tiles of each with at least ``min_foreground`` of foreground pixels.
    ``options`` are ``smooth_sigma`` and ``min_size``."""
    ref = realism_reference(
        data_tiles, threshold=threshold, min_foreground=min_foreground, seed=seed, **options
    )
    return ref.compare(sample_tiles)
