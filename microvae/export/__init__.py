"""Models out of microvae: bioimage.io packages (spec 0.5)."""

from .bioimageio import BioimageioError, export_bioimageio

__all__ = ["BioimageioError", "export_bioimageio"]
