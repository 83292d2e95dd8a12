"""What the latent space says: prototype, samples, interpolation, traversals, embeddings, holes.

- :mod:`.tiles`: training-sized tiles with most signal from files or arrays (:class:`TileSet`),
  labelled by source or by a labels image;
- :mod:`.embed`: posterior means per tile, pooled or flat;
- :mod:`.projection`: 2D maps of embeddings that place new points too (PCA; UMAP if installed);
- :mod:`.generate`: prototype (z = 0), samples at a temperature, interpolation, traversals,
  channels moved at once, decoding of top-level latents;
- :mod:`.holes`: k-NN density of the aggregate posterior and its low-density points between
  clusters;
- :mod:`.explore`: a tile set's map: tiles, holes decoded, channels ranked by KL (the napari
  explorer);
- :mod:`.probe`: a linear probe: how well embeddings separate labels on held-out images.

Images come back in the training data's raw intensities and dtype.
"""

from .embed import embed, latent_maps
from .explore import COLOUR_BY, LatentMap, map_latents
from .generate import decode_top, interpolate, move_channels, prototype, samples, traverse
from .holes import MAX_GROUPS, MIN_TILES, Hole, KNNDensity, clusters, find_holes, hole_groups
from .probe import linear_probe, split_by_group
from .projection import Projection, available_projections, fit_projection, pca
from .tiles import (
    TileSet,
    collect_tiles,
    majority_label,
    spread_planes,
    tiles_from_array,
    tiles_from_planes,
)

__all__ = [
    "COLOUR_BY",
    "MAX_GROUPS",
    "MIN_TILES",
    "Hole",
    "KNNDensity",
    "LatentMap",
    "Projection",
    "available_projections",
    "TileSet",
    "clusters",
    "collect_tiles",
    "decode_top",
    "embed",
    "find_holes",
    "fit_projection",
    "hole_groups",
    "interpolate",
    "latent_maps",
    "linear_probe",
    "majority_label",
    "map_latents",
    "move_channels",
    "pca",
    "prototype",
    "samples",
    "split_by_group",
    "spread_planes",
    "tiles_from_array",
    "tiles_from_planes",
    "traverse",
]
