"""Applying trained models to images."""

from .model import TrainedModel, load_model

__all__ = ["TrainedModel", "load_model"]
