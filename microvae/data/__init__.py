"""The data layer: TIFFs -> planes -> normalised, augmented tiles for training."""

from .config import DataConfig
from .normalise import Normalisation
from .prepare import PreparedData, prepare_data
from .sources import DataError, find_tiffs

__all__ = ["DataConfig", "DataError", "Normalisation", "PreparedData", "find_tiffs", "prepare_data"]
