"""The data layer: TIFFs -> planes -> normalised, augmented tiles for training."""

from .config import DataConfig
from .datasets import RandomTiles
from .normalise import Normalisation
from .prepare import PreparedData, prepare_data
from .sources import DataError, find_images
from .tile_sampler import signal_share

__all__ = [
    "DataConfig",
    "DataError",
    "find_images",
    "Normalisation",
    "prepare_data",
    "PreparedData",
    "RandomTiles",
    "signal_share",
]
