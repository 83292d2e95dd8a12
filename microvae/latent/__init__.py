"""What the latent space says: prototype, samples, interpolation, traversals, embeddings, holes.

- :mod:`.tiles`: training-sized tiles with most signal from files or arrays (:class:`TileSet`);
- :mod:`.embed`: posterior means per tile, pooled or flat, and a PCA map;
- :mod:`.generate`: prototype (z = 0), samples at a temperature, interpolation, traversals,
  decoding of top-level latents;
- :mod:`.holes`: k-NN density of the aggregate posterior and its low-density points between
  clusters;
- :mod:`.probe`: a linear probe: how well embeddings separate labels on held-out images.

Images come back in the training data's raw intensities and dtype.
"""

from .embed import embed, latent_maps, pca
from .generate import decode_top, interpolate, prototype, samples, traverse
from .holes import Hole, KNNDensity, clusters, find_holes
from .probe import linear_probe, split_by_group
from .tiles import TileSet, collect_tiles, tiles_from_planes

__all__ = [
    "Hole",
    "KNNDensity",
    "TileSet",
    "clusters",
    "collect_tiles",
    "decode_top",
    "embed",
    "find_holes",
    "interpolate",
    "latent_maps",
    "linear_probe",
    "pca",
    "prototype",
    "samples",
    "split_by_group",
    "tiles_from_planes",
    "traverse",
]
