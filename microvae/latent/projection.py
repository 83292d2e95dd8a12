"""2D maps of embeddings that place new points too: PCA always, UMAP where it is installed.

A map is fitted on the tiles' embeddings and then places other points of the same space (the
holes and the paths between groups, a latent moved by the traversal sliders) with
:meth:`Projection.transform`, so that they are drawn where they lie among the tiles. PCA is
linear and exact; UMAP (``umap-learn``, optional: ``pip install umap-learn``) keeps
neighbourhoods, and places new points by their neighbours among the fitted ones.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

__all__ = ["PROJECTIONS", "Projection", "available_projections", "fit_projection", "pca"]

PROJECTIONS = ("pca", "umap")


def available_projections() -> list[str]:
    """The map methods this environment can fit: ``pca``, and ``umap`` where installed."""
    return ["pca"] + (["umap"] if importlib.util.find_spec("umap") is not None else [])


@dataclass
class Projection:
    """A fitted 2D (or k-D) map of rows of one embedding space.

    Attributes:
        method: ``pca`` or ``umap``.
        mean, scale: (D,) the centring and (PCA with ``standardise``) the per-column scale.
        components: (k, D) PCA axes; None for UMAP.
        explained: (k,) share of variance per PCA axis; None for UMAP.
    """

    method: str
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray | None = None
    explained: np.ndarray | None = None
    reducer: object | None = None  # the fitted umap.UMAP

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Map coordinates (M, k) float64 of rows ``x`` (M, D) of the fitted space."""
        x = np.atleast_2d(np.asarray(x, np.float64))
        if x.shape[1] != len(self.mean):
            raise ValueError(f"the map was fitted on {len(self.mean)}-D rows, got {x.shape[1]}-D")
        z = (x - self.mean) / self.scale
        if self.method == "pca":
            return z @ self.components.T
        return np.asarray(self.reducer.transform(z), np.float64)


def fit_projection(
    x: np.ndarray,
    method: str = "pca",
    *,
    n_components: int = 2,
    standardise: bool = True,
    seed: int = 0,
) -> tuple[Projection, np.ndarray]:
    """Fit a map on rows ``x`` (N, D); returns it and the rows' coordinates (N, n_components).

    ``standardise`` scales every column to unit variance first, so that a few high-variance
    channels (brightness) do not fill the map. UMAP needs ``umap-learn`` installed."""
    if method not in PROJECTIONS:
        raise ValueError(f"method must be one of {', '.join(PROJECTIONS)}, got {method!r}")
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"need rows (N, D) to fit a map, got shape {x.shape}")
    mean = x.mean(axis=0)
    sd = x.std(axis=0) if standardise else np.ones(x.shape[1])
    scale = np.where(sd > 0, sd, 1.0)
    z = (x - mean) / scale
    if method == "umap":
        if "umap" not in available_projections():
            raise ValueError("method 'umap' needs umap-learn: pip install umap-learn, or use 'pca'")
        if len(x) < 4:
            raise ValueError(f"UMAP needs at least 4 rows, got {len(x)}: use 'pca'")
        import umap

        # a few neighbours for small tile sets: UMAP refuses more neighbours than points
        reducer = umap.UMAP(
            n_components=n_components, n_neighbors=max(2, min(15, len(x) - 1)), random_state=seed
        )
        coords = np.asarray(reducer.fit_transform(z), np.float64)
        return Projection("umap", mean, scale, reducer=reducer), coords
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    k = min(n_components, vt.shape[0])
    var = s**2
    share = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    components = vt[:k]
    if k < n_components:  # fewer samples or dimensions than components asked for
        components = np.pad(components, ((0, n_components - k), (0, 0)))
        share = np.pad(share, (0, n_components - k))
    proj = Projection("pca", mean, scale, components=components, explained=share)
    return proj, proj.transform(x)


def pca(
    x: np.ndarray, n_components: int = 2, *, standardise: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of rows ``x`` (N, D): coordinates (N, n_components) and the share
    of variance each explains (n_components,) (see :func:`fit_projection`)."""
    proj, coords = fit_projection(x, "pca", n_components=n_components, standardise=standardise)
    return coords, proj.explained
