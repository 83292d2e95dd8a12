"""A map of a tile set's latent space: the tiles placed in 2D, the holes between their groups
decoded, and the top-level channels ranked by use; what the napari explorer draws.

Everything lies in one space, the flat top-level posterior means (:func:`.embed` ``flat``):
the space that decodes (:func:`.decode_top`) and in which the density and its holes are
computed (:mod:`.holes`), so that the holes and the paths between groups are drawn where they
lie among the tiles (:meth:`~.projection.Projection.transform`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..inference import TrainedModel
from .diagnostics import diagnose
from .embed import embed
from .generate import decode_top
from .holes import MIN_TILES, Hole, KNNDensity, clusters, find_holes, hole_groups
from .projection import Projection, fit_projection
from .tiles import TileSet

__all__ = ["COLOUR_BY", "LatentMap", "map_latents"]

COLOUR_BY = ("source", "label", "cluster")


@dataclass
class LatentMap:
    """The tiles of a :class:`~.tiles.TileSet` in their latent space.

    Attributes:
        tiles: the tiles mapped.
        flat: (N, D) float32 flat top-level posterior means.
        projection: the fitted 2D map; ``coords`` (N, 2) float64 the tiles' places on it.
        colours: per tile, the group it is coloured by (source, label or k-means cluster).
        grouping: what the holes are between, in words.
        holes: the lowest-density point between every pair of groups (generative models with
            at least :data:`~.holes.MIN_TILES` tiles; else empty, ``notes`` says why).
        density: the k-NN density the holes come from, or None.
        hole_images: (n_holes, T, T) the holes decoded, raw intensities.
        channel_kl: (C,) mean KL of each top-level channel to its prior over the tiles
            (nats per element), or None for a model that does not generate.
        verdict: the collapse verdict on these tiles, or None.
        notes: what could not be computed, and why.
    """

    tiles: TileSet
    flat: np.ndarray
    projection: Projection
    coords: np.ndarray
    colours: list[str]
    grouping: str
    holes: list[Hole] = field(default_factory=list)
    density: KNNDensity | None = None
    hole_images: np.ndarray | None = None
    channel_kl: np.ndarray | None = None
    verdict: str | None = None
    notes: list[str] = field(default_factory=list)

    def hole_coords(self) -> np.ndarray:
        """(n_holes, 2) the holes' places on the map."""
        if not self.holes:
            return np.zeros((0, 2))
        return self.projection.transform(np.stack([h.point for h in self.holes]))

    def path_coords(self, i: int) -> np.ndarray:
        """(n_points, 2) the path of hole ``i`` (medoid to medoid) on the map."""
        return self.projection.transform(self.holes[i].path)

    def informative_channels(self, n: int) -> list[int]:
        """The ``n`` top-level channels with most KL, most first (empty without KL)."""
        if self.channel_kl is None:
            return []
        return [int(c) for c in np.argsort(-self.channel_kl, kind="stable")[:n]]


def map_latents(
    model: TrainedModel,
    tiles: TileSet,
    *,
    colour_by: str = "source",
    n_clusters: int = 3,
    method: str = "pca",
    k: int = 10,
    seed: int = 0,
    diagnostics: dict | None = None,
) -> LatentMap:
    """Map ``tiles`` (of the model's training size) in the model's latent space.

    ``colour_by``: ``source`` (the file or layer), ``label`` (``tiles.labels``) or ``cluster``
    (``n_clusters`` k-means clusters of the flat latents). The holes are sought between the
    colour groups where there are 2 to :data:`~.holes.MAX_GROUPS` of them, else between
    ``n_clusters`` k-means clusters. ``method``: ``pca``, or ``umap`` where installed.
    ``diagnostics``: :func:`~.diagnostics.diagnose` of these tiles where the caller has it
    already (else computed here)."""
    model.require_2d("the latent tools")
    if colour_by not in COLOUR_BY:
        raise ValueError(f"colour_by must be one of {', '.join(COLOUR_BY)}, got {colour_by!r}")
    if n_clusters < 2:
        raise ValueError(f"n_clusters must be at least 2, got {n_clusters}")
    if not len(tiles):
        raise ValueError("no tiles to map")
    flat = embed(model, tiles, how="flat")
    projection, coords = fit_projection(flat, method, seed=seed)
    if colour_by == "cluster":
        colours = [f"cluster {c}" for c in clusters(flat, n_clusters, seed=seed)]
    else:
        colours = list(tiles.sources if colour_by == "source" else tiles.labels)
    out = LatentMap(tiles, flat, projection, coords, colours, grouping="")
    groups = hole_groups(colours)
    out.grouping = f"{colour_by}s" if groups is not None else f"k-means clusters ({n_clusters})"
    if not model.vae.can_generate:
        out.notes.append(
            f"skip_mode '{model.config.model.skip_mode}' does not generate: no holes decoded, "
            "no traversals (train a 'ladder' model for them)"
        )
        return out

    diag = diagnostics or diagnose(model, tiles, max_tiles=len(tiles), seed=seed)
    out.channel_kl = np.asarray(diag["kl_per_channel_nats_per_element"][0], float)
    out.verdict = diag["verdict"]
    if len(flat) < MIN_TILES:
        out.notes.append(
            f"only {len(flat)} tiles: the density and its holes need at least {MIN_TILES} "
            "(add images or planes, or lower the tile size)"
        )
        return out
    holes, density = find_holes(
        flat, groups, n_clusters=n_clusters, k=min(k, len(flat) - 2), seed=seed
    )
    out.holes, out.density = holes, density
    if holes:
        out.hole_images = decode_top(model, np.stack([h.point for h in holes]))
    else:
        out.notes.append("the latents form a single group: no path between groups, no hole")
    return out
