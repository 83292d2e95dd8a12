"""Low-density "holes" of the aggregate posterior between clusters of embeddings.

The aggregate posterior (the embeddings of many tiles) is estimated by k nearest neighbours:
at a point x, density ~ 1 / r_k(x)**d, with r_k the distance to the k-th nearest embedding
and d the data's intrinsic dimension (the Levina-Bickel maximum-likelihood estimate from the
same distances; the embedding's nominal dimension would exaggerate every difference). Densities
are reported relative to the typical embedding's: ``log_density = d * log(r_med / r_k(x))``,
0 at a typical data point, negative away from the data.

Between every pair of groups (given labels, or k-means clusters) the straight path from one
group's medoid to the other's is sampled; its lowest-density point in the middle three fifths
(t from 0.2 to 0.8) is the *hole*: a
latent the decoder was never trained to produce, and often an image between the two states
that the data do not contain (or an unrealistic one). Decode the points with
:func:`microvae.latent.decode_top`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.spatial import cKDTree

__all__ = ["KNNDensity", "Hole", "find_holes", "clusters", "hole_groups", "MAX_GROUPS", "MIN_TILES"]

INNER = (0.2, 0.8)  # the part of a path searched for its hole
MAX_GROUPS = 4  # holes between labels up to this many; k-means clusters beyond
MIN_TILES = 12  # fewer tiles make no density worth the name


class KNNDensity:
    """k-nearest-neighbour density of embeddings (N, D), relative to the typical one."""

    def __init__(self, embeddings: np.ndarray, k: int = 10):
        x = np.asarray(embeddings, np.float64)
        if x.ndim != 2 or len(x) < k + 2:
            raise ValueError(
                f"need embeddings (N, D) with N > k + 1 = {k + 1}, got shape {x.shape}"
            )
        self.k, self.tree = k, cKDTree(x)
        # neighbours of data points: the first is the point itself
        dist, _ = self.tree.query(x, k=k + 1)
        dist = np.maximum(dist[:, 1:], 1e-12)
        logs = np.log(dist[:, -1:] / dist[:, :-1])
        self.dimension = float(1.0 / max(np.mean(logs.sum(axis=1) / (k - 1)), 1e-12))
        self.typical_radius = float(np.median(dist[:, -1]))

    def radius(self, points: np.ndarray) -> np.ndarray:
        """Distance from each point (M, D) to its k-th nearest embedding, (M,)."""
        dist, _ = self.tree.query(np.atleast_2d(points), k=self.k)
        return np.maximum(dist[:, -1], 1e-12)

    def log_density(self, points: np.ndarray) -> np.ndarray:
        """log(density / the typical embedding's density) at points (M, D), (M,)."""
        return self.dimension * np.log(self.typical_radius / self.radius(points))


@dataclass
class Hole:
    """The lowest-density point on the path between two groups' medoids.

    Attributes:
        groups: the two groups' names.
        path: (n_points, D) points from the first medoid to the second.
        path_log_density: (n_points,) relative log density along it.
        index: the hole's index in ``path`` (t between 0.2 and 0.8).
    """

    groups: tuple[str, str]
    path: np.ndarray
    path_log_density: np.ndarray
    index: int

    @property
    def point(self) -> np.ndarray:
        return self.path[self.index]

    @property
    def log_density(self) -> float:
        return float(self.path_log_density[self.index])

    @property
    def t(self) -> float:
        """Position of the hole along the path, 0 to 1."""
        return self.index / (len(self.path) - 1)

    def to_dict(self) -> dict:
        return {
            "groups": list(self.groups),
            "t": self.t,
            "log_density": self.log_density,
            "path_log_density": [float(v) for v in self.path_log_density],
        }


def clusters(embeddings: np.ndarray, k: int = 2, *, seed: int = 0) -> np.ndarray:
    """k-means labels (N,) of embeddings (N, D) (k-means++ start, seeded)."""
    x = np.asarray(embeddings, np.float64)
    with warnings.catch_warnings():  # an empty cluster is fine: it is simply not a group
        warnings.filterwarnings("ignore", message="One of the clusters is empty")
        _, labels = kmeans2(x, k, minit="++", seed=seed)
    return labels


def hole_groups(labels: list | np.ndarray, max_groups: int = MAX_GROUPS) -> list[str] | None:
    """The groups to seek holes between: ``labels`` (N,) when they name 2 to ``max_groups``
    groups (files, phenotypes), else None (then :func:`find_holes` makes k-means clusters:
    one group has no path between groups, and many make more pairs than anyone reads)."""
    names = set(str(v) for v in labels)
    return [str(v) for v in labels] if 2 <= len(names) <= max_groups else None


def _medoid(x: np.ndarray) -> np.ndarray:
    centre = x.mean(axis=0)
    return x[np.argmin(((x - centre) ** 2).sum(axis=1))]


def find_holes(
    embeddings: np.ndarray,
    labels: list | np.ndarray | None = None,
    *,
    n_clusters: int = 2,
    k: int = 10,
    n_points: int = 21,
    seed: int = 0,
) -> tuple[list[Hole], KNNDensity]:
    """Holes between every pair of groups of ``embeddings`` (N, D) (flat latents that decode;
    see :func:`microvae.latent.embed`). Groups are ``labels`` (N,) when given, else
    ``n_clusters`` k-means clusters. Returns the holes and the density estimate."""
    x = np.asarray(embeddings, np.float64)
    if labels is None:
        labels = [f"cluster {c}" for c in clusters(x, n_clusters, seed=seed)]
    labels = np.asarray([str(v) for v in labels])
    if len(labels) != len(x):
        raise ValueError(f"{len(labels)} labels for {len(x)} embeddings")
    if n_points < 3:
        raise ValueError(f"n_points must be at least 3, got {n_points}")
    density = KNNDensity(x, k=k)
    names = sorted(set(labels))
    t = np.linspace(0, 1, n_points)[:, None]
    holes = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            start, end = _medoid(x[labels == a]), _medoid(x[labels == b])
            path = start + t * (end - start)
            logd = density.log_density(path)
            # between the groups: the outer fifths of the path belong to the groups' own
            # (possibly sparse) surroundings
            inner = np.nonzero((t[:, 0] >= INNER[0]) & (t[:, 0] <= INNER[1]))[0]
            index = int(inner[np.argmin(logd[inner])])
            holes.append(Hole((a, b), path, logd, index))
    return holes, density
