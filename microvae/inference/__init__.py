"""Applying trained models to images."""

from .model import TrainedModel, load_model
from .tiled import TileOptions

__all__ = ["TileOptions", "TrainedModel", "load_model"]
