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

from .diagnostics import diagnose, format_diagnostics, likelihood_bounds
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
    "available_projections",
    "clusters",
    "collect_tiles",
    "COLOUR_BY",
    "decode_top",
    "diagnose",
    "embed",
    "find_holes",
    "fit_projection",
    "format_diagnostics",
    "Hole",
    "hole_groups",
    "interpolate",
    "KNNDensity",
    "latent_maps",
    "LatentMap",
    "likelihood_bounds",
    "linear_probe",
    "majority_label",
    "map_latents",
    "MAX_GROUPS",
    "MIN_TILES",
    "move_channels",
    "pca",
    "Projection",
    "prototype",
    "samples",
    "split_by_group",
    "spread_planes",
    "tiles_from_array",
    "tiles_from_planes",
    "TileSet",
    "traverse",
]
