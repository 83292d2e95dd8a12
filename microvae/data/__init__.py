"""The data layer: TIFFs -> planes -> normalised, augmented tiles for training."""

from .config import DataConfig
from .normalise import Normalisation
from .prepare import PreparedData, prepare_data
from .sources import DataError, find_images

__all__ = [
    "DataConfig",
    "DataError",
    "Normalisation",
    "PreparedData",
    "find_images",
    "prepare_data",
]
